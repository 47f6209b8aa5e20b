// dfx VPU path: every vector instruction of the ISA on the vector unit dfx_vpu.
//
// for i < rows, c0 < cols step V: one VPU beat = a[i, c0 ..] (buffer port A) and operand b
// (port B) by its broadcast: none b[i, c0 ..], row b[c0 ..], col b[i] in every lane, imm the
// binary32 imm. Lanes past cols are masked. The buffer addresses are presented one cycle before
// the beat enters the VPU, which never stalls (its output goes straight to the write port), so
// the path takes one beat per cycle. Element-wise results are written to d[i, c0 ..]; a
// reduction (vsum, vsumsq, vrmax) gives one word per row at d + i*max(1, ds).
`default_nettype none
`include "dfx_isa.vh"
`include "dfx_kernel.vh"
`include "dfx_numerics.vh"

module dfx_vpu_path #(
    parameter integer VWIDTH = 8,
    parameter integer MUL_LAT = 5,
    parameter integer ADD_LAT = 7,
    parameter integer RECIP_LAT = 2,
    parameter integer RSQRT_LAT = 2,
    parameter integer NB = 8,
    parameter integer AW = 24,
    parameter integer VBUF_WORDS = 1048576,
    parameter [63:0] HBM_CAP = 64'd1 << 30
) (
    input  wire                clk,
    input  wire                rst,
    input  wire                start,
    input  wire [511:0]        ins,
    input  wire [31:0]         cnt0,
    input  wire [31:0]         cnt1,
    output reg                 busy,
    output reg                 done,
    output reg                 err,
    output reg  [7:0]          err_code,
    output wire                use_a,      // buffer ports this unit holds this cycle (it has priority)
    output wire                use_b,
    output wire [AW-1:0]       ra_addr,
    input  wire [16*NB-1:0]    ra_data,
    output wire [AW-1:0]       rb_addr,
    input  wire [16*NB-1:0]    rb_data,
    output reg                 bw_en,
    output reg  [AW-1:0]       bw_addr,
    output reg  [16*NB-1:0]    bw_data,
    output reg  [NB-1:0]       bw_mask
);
    `include "dfx_core_fn.vh"
    localparam integer V = VWIDTH;
    localparam integer LV = $clog2(V);
    localparam integer OPW = `DFX_VPU_OP_BITS;

    reg [511:0] I;
    reg [5:0] op;
    reg [31:0] rows, cols, CT;
    wire [1:0]  f_bcast = I[`DFX_VEC_BCAST_LSB +: 2];
    wire [23:0] f_d  = I[`DFX_VEC_D_LSB +: 24];
    wire [15:0] f_ds = I[`DFX_VEC_DS_LSB +: 16];
    wire [23:0] f_a  = I[`DFX_VEC_A_LSB +: 24];
    wire [15:0] f_as = I[`DFX_VEC_AS_LSB +: 16];
    wire [23:0] f_b  = I[`DFX_VEC_B_LSB +: 24];
    wire [15:0] f_bs = I[`DFX_VEC_BS_LSB +: 16];
    wire [31:0] f_imm = I[`DFX_VEC_IMM_LSB +: 32];
    reg [OPW-1:0] vop;
    always @* begin
        case (op)
            `DFX_OP_VADD:   vop = `DFX_VOP_ADD;
            `DFX_OP_VSUB:   vop = `DFX_VOP_SUB;
            `DFX_OP_VMUL:   vop = `DFX_VOP_MUL;
            `DFX_OP_VMAX:   vop = `DFX_VOP_MAX;
            `DFX_OP_VEXP:   vop = `DFX_VOP_EXP;
            `DFX_OP_VRECIP: vop = `DFX_VOP_RECIP;
            `DFX_OP_VRSQRT: vop = `DFX_VOP_RSQRT;
            `DFX_OP_VSUM:   vop = `DFX_VOP_SUM;
            `DFX_OP_VSUMSQ: vop = `DFX_VOP_SUMSQ;
            `DFX_OP_VRMAX:  vop = `DFX_VOP_RMAX;
            default:        vop = `DFX_VOP_COPY;
        endcase
    end
    wire binary = (op == `DFX_OP_VADD) || (op == `DFX_OP_VSUB) || (op == `DFX_OP_VMUL) || (op == `DFX_OP_VMAX);
    wire reduce = (op == `DFX_OP_VSUM) || (op == `DFX_OP_VSUMSQ) || (op == `DFX_OP_VRMAX);
    wire [31:0] bs1 = (f_bs == 16'd0) ? 32'd1 : {16'd0, f_bs};
    wire [31:0] ds1 = (f_ds == 16'd0) ? 32'd1 : {16'd0, f_ds};

    reg [1:0] ck;
    always @* begin
        ck = vb_check({24'd0, f_a}, rows, cols, {16'd0, f_as});
        if (ck == 2'b00 && binary) begin
            case (f_bcast)
                `DFX_BCAST_NONE: ck = vb_check({24'd0, f_b}, rows, cols, {16'd0, f_bs});
                `DFX_BCAST_ROW:  ck = vb_check({24'd0, f_b}, 32'd1, cols, cols);
                `DFX_BCAST_COL:  ck = vb_check({24'd0, f_b}, rows, 32'd1, bs1);
                default: ;
            endcase
        end
        if (ck == 2'b00) ck = reduce ? vb_check({24'd0, f_d}, rows, 32'd1, ds1)
                                     : vb_check({24'd0, f_d}, rows, cols, {16'd0, f_ds});
    end

    localparam [1:0] S_IDLE = 0, S_CHECK = 1, S_RUN = 2, S_ERR = 3;
    reg [1:0] st;

    // feeder: P presents the addresses of beat (pi, pc); the beat enters the VPU next cycle
    reg p_v, f_v;
    reg [31:0] pi_, pc;
    reg f_first, f_last;
    reg [V-1:0] f_mask;
    wire [47:0] p_aa = {24'd0, f_a} + {16'd0, pi_} * {32'd0, f_as} + {16'd0, pc};
    reg  [47:0] p_ba;
    always @* begin
        case (f_bcast)
            `DFX_BCAST_ROW: p_ba = {24'd0, f_b} + {16'd0, pc};
            `DFX_BCAST_COL: p_ba = {24'd0, f_b} + {16'd0, pi_} * {16'd0, bs1};
            default:        p_ba = {24'd0, f_b} + {16'd0, pi_} * {32'd0, f_bs} + {16'd0, pc};
        endcase
    end
    assign ra_addr = p_aa[AW-1:0];
    assign use_a = (st == S_RUN) && p_v;
    assign use_b = use_a && binary && (f_bcast != `DFX_BCAST_IMM);
    assign rb_addr = p_ba[AW-1:0];
    reg f_col;
    integer q;
    reg [V-1:0] p_mask;
    always @* for (q = 0; q < V; q = q + 1) p_mask[q] = (pc + q) < cols;
    wire [16*V-1:0] b_lanes = f_col ? {V{rb_data[15:0]}} : rb_data[16*V-1:0];

    always @(posedge clk) begin
        if (rst || st != S_RUN) begin
            p_v <= 1'b1;
            f_v <= 1'b0;
            pi_ <= 0;
            pc <= 0;
        end else begin
            f_v <= p_v;
            f_first <= (pc == 0);
            f_last <= (pc + V >= cols);
            f_mask <= p_mask;
            f_col <= (f_bcast == `DFX_BCAST_COL);
            if (p_v) begin
                if (pc + V < cols) pc <= pc + V;
                else begin
                    pc <= 0;
                    if (pi_ + 1 < rows) pi_ <= pi_ + 1;
                    else p_v <= 1'b0;
                end
            end
        end
    end

    wire o_valid;
    wire [OPW-1:0] o_op;
    // always high here: out_ready is 1, an instruction feeds one op, and the next instruction
    // starts after the last result of this one is written (dfx_vpu's order rule never waits)
    wire vpu_in_ready;
    wire [16*V-1:0] o_y;
    dfx_vpu #(.VWIDTH(V), .MUL_LAT(MUL_LAT), .ADD_LAT(ADD_LAT), .RECIP_LAT(RECIP_LAT), .RSQRT_LAT(RSQRT_LAT)) u_vpu (
        .clk(clk), .rst(rst), .in_valid(f_v), .in_ready(vpu_in_ready),
        .in_op(vop), .in_a(ra_data[16*V-1:0]), .in_b(b_lanes), .in_mask(f_mask),
        .in_first(f_first), .in_last(f_last), .in_imm(f_imm), .in_imm_b(binary && f_bcast == `DFX_BCAST_IMM),
        .out_valid(o_valid), .out_ready(1'b1), .out_op(o_op), .out_y(o_y));

    // writer
    wire [16*NB-1:0] o_y_ext;
    generate
        if (NB > V) begin : g_ext
            assign o_y_ext = {{(16*(NB-V)){1'b0}}, o_y};
        end else begin : g_same
            assign o_y_ext = o_y;
        end
    endgenerate
    reg [31:0] wi, wc, left;
    wire [47:0] w_ew = {24'd0, f_d} + {16'd0, wi} * {32'd0, f_ds} + {16'd0, wc};
    wire [47:0] w_rd = {24'd0, f_d} + {16'd0, wi} * {16'd0, ds1};
    reg [NB-1:0] w_mask;
    always @* begin
        w_mask = {NB{1'b0}};
        for (q = 0; q < V; q = q + 1) w_mask[q] = reduce ? (q == 0) : ((wc + q) < cols);
    end

    always @(posedge clk) begin
        done <= 1'b0;
        err <= 1'b0;
        bw_en <= 1'b0;
        if (rst) begin
            st <= S_IDLE;
            busy <= 1'b0;
        end else begin
            case (st)
                S_IDLE: if (start) begin
                    I <= ins;
                    op <= ins[5:0];
                    rows <= cnt0;
                    cols <= cnt1;
                    CT <= (cnt1 + V - 1) >> LV;
                    busy <= 1'b1;
                    st <= S_CHECK;
                end
                S_CHECK: begin
                    wi <= 0;
                    wc <= 0;
                    left <= reduce ? rows : rows * CT;
                    if (rows == 0 || cols == 0) begin
                        busy <= 1'b0;
                        done <= 1'b1;
                        st <= S_IDLE;
                    end else if (ck != 2'b00) begin
                        err_code <= (ck == 2'b01) ? `DFX_ERR_ILLEGAL_INSTRUCTION : `DFX_ERR_ADDRESS;
                        st <= S_ERR;
                    end else st <= S_RUN;
                end
                S_RUN: if (o_valid) begin
                    bw_en <= 1'b1;
                    bw_addr <= reduce ? w_rd[AW-1:0] : w_ew[AW-1:0];
                    bw_data <= o_y_ext;
                    bw_mask <= w_mask;
                    if (reduce || wc + V >= cols) begin
                        wc <= 0;
                        wi <= wi + 1;
                    end else wc <= wc + V;
                    left <= left - 1;
                    if (left == 1) begin
                        busy <= 1'b0;
                        done <= 1'b1;
                        st <= S_IDLE;
                    end
                end
                S_ERR: begin
                    busy <= 1'b0;
                    err <= 1'b1;
                    st <= S_IDLE;
                end
                default: st <= S_IDLE;
            endcase
        end
    end
    // bits no logic reads: instruction bits of other formats, buffer addresses past AW bits
    // (checked before the op starts), the VPU's in_ready and out_op (the path tracks its own op)
    wire _unused_ok = &{1'b0, I, p_aa[47:AW], p_ba[47:AW], w_ew[47:AW], w_rd[47:AW], vpu_in_ready, o_op, 1'b0};
endmodule

`default_nettype wire
