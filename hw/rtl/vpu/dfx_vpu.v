// dfx vector unit: VWIDTH FP16 lanes, one beat per cycle, valid/ready in and out.
//
// in beat : op (DFX_VOP_*), a[V], b[V] (FP16), mask[V] (reductions: lanes that hold real
//           elements; others read as +0 for sums, -inf for the max), first/last (the first
//           and last chunk of a reduced row), imm (binary32 bits): the scale of sum and sumsq
//           (0 = none) and, with imm_b set, operand b of every lane (add/sub/mul: the FP32 value;
//           max: rne16(imm)).
// out beat: element-wise ops: y[V]; reductions: one beat per row, on its last chunk, with
//           the result in lane 0 (other lanes 0). op is echoed.
// Element-wise: add/sub/mul = rne16(f32(a) op f32(b)); max = nx.max16; copy; exp, recip,
// rsqrt = the nx.*_alg table algorithms (GELU is the MPU's, fused into its products: no
// vector op of the ISA takes it, so the VPU has none). Reductions: sum = nx.block_sum(a, V)
// (a dfx_dot_tile of a x 1.0, then dfx_dot_acc), sumsq = nx.block_sum(a, V, square=True), then
// (scale) * f32(scale), rne16; rmax = nx.chunked_max(a, V). Each op has its own latency, exit_of (docs/hw.md); outputs leave
// in input order (a faster op waits for the slower ones in flight).
`default_nettype none
`include "dfx_numerics.vh"

module dfx_vpu #(
    parameter integer VWIDTH = 8,
    parameter integer MUL_LAT = 5,
    parameter integer ADD_LAT = 7,
    parameter integer RECIP_LAT = 2,
    parameter integer RSQRT_LAT = 2
) (
    input  wire                  clk,
    input  wire                  rst,
    input  wire                  in_valid,
    output wire                  in_ready,
    input  wire [`DFX_VPU_OP_BITS-1:0] in_op,
    input  wire [16*VWIDTH-1:0]  in_a,
    input  wire [16*VWIDTH-1:0]  in_b,
    input  wire [VWIDTH-1:0]     in_mask,
    input  wire                  in_first,
    input  wire                  in_last,
    input  wire [31:0]           in_imm,
    input  wire                  in_imm_b,
    output wire                  out_valid,
    input  wire                  out_ready,
    output wire [`DFX_VPU_OP_BITS-1:0] out_op,
    output wire [16*VWIDTH-1:0]  out_y
);
    `include "dfx_dot.vh"
    localparam integer V = VWIDTH;
    localparam integer OPW = `DFX_VPU_OP_BITS;
    localparam integer TB_L = 3 * ADD_LAT + 2 * MUL_LAT + 1;      // exp
    localparam integer TW = 31 + $clog2(V);                         // a tile sum's bits
    localparam integer D_T = dfx_dot_tile_lat(V);                   // tile sums
    localparam integer D_DOT = D_T + dfx_dot_acc_lat(0);            // the binary32 sums
    localparam integer RED_L = D_DOT + MUL_LAT + 1;
    // exit depth of each op: the depth of its result plus the output register
    localparam integer E_AR = ADD_LAT + 1;      // add, sub
    localparam integer E_MU = MUL_LAT + 1;      // mul
    localparam integer E_MX = 1;                // max, copy
    localparam integer E_TB = TB_L + 1;         // exp
    localparam integer E_RC = RECIP_LAT + 1;    // recip
    localparam integer E_RQ = RSQRT_LAT + 1;    // rsqrt
    localparam integer E_RD = RED_L;            // sum, sumsq, rmax (the reduced row's last chunk)
    localparam integer M1 = (E_AR > E_MU) ? E_AR : E_MU;
    localparam integer M2 = (E_TB > E_RC) ? E_TB : E_RC;
    localparam integer M3 = (E_RQ > E_RD) ? E_RQ : E_RD;
    localparam integer M12 = (M1 > M2) ? M1 : M2;
    localparam integer LAT = (M12 > M3) ? M12 : M3;             // the deepest exit
    localparam integer EB = $clog2(LAT + 1) + 1;
    function automatic [EB-1:0] exit_of(input [OPW-1:0] o);
        case (o)
            `DFX_VOP_ADD, `DFX_VOP_SUB: exit_of = E_AR[EB-1:0];
            `DFX_VOP_MUL:               exit_of = E_MU[EB-1:0];
            `DFX_VOP_EXP:               exit_of = E_TB[EB-1:0];
            `DFX_VOP_RECIP:             exit_of = E_RC[EB-1:0];
            `DFX_VOP_RSQRT:             exit_of = E_RQ[EB-1:0];
            `DFX_VOP_SUM, `DFX_VOP_SUMSQ, `DFX_VOP_RMAX: exit_of = E_RD[EB-1:0];
            default:                    exit_of = E_MX[EB-1:0];
        endcase
    endfunction

    // ---------------------------------------------------------------- control
    // Each op leaves at its own depth. Outputs stay in input order because a beat enters only
    // when it would leave after every beat in flight: its exit depth > rem, the cycles until the
    // last beat in flight leaves. A stream of one op runs at one beat per cycle; a faster op
    // after a slower one waits for the difference.
    reg  [LAT-1:0] vsh;                 // vsh[d-1]: a beat at depth d
    reg  [LAT-1:0] lsh;                 // its `last` bit
    reg  [OPW-1:0] osh [0:LAT-1];       // its op
    reg  [EB-1:0]  rem;
    reg            o_v;
    reg  [OPW-1:0] o_op;
    wire [EB-1:0]  e_in = exit_of(in_op);
    wire en = !o_v || out_ready;
    wire take = in_valid && in_ready;
    assign in_ready = en && (e_in > rem);
    assign out_valid = o_v;
    assign out_op = o_op;
    integer d;
    always @(posedge clk)
        if (rst) begin
            vsh <= {LAT{1'b0}};
            rem <= {EB{1'b0}};
        end else if (en) begin
            vsh <= {vsh[LAT-2:0], take};
            rem <= take ? e_in - 1'b1 : (rem != 0) ? rem - 1'b1 : rem;
        end
    always @(posedge clk)
        if (en) begin
            lsh <= {lsh[LAT-2:0], in_last};
            osh[0] <= in_op;
            for (d = 1; d < LAT; d = d + 1) osh[d] <= osh[d-1];
        end
    // the beat that reaches its exit now (depth exit - 1; at most one, by the rule above)
    wire [LAT-1:0] x_at;
    wire [OPW*LAT-1:0] x_ops;
    genvar g;
    generate
        for (g = 0; g < LAT; g = g + 1) begin : g_exit
            if (g == 0) begin : g_in
                assign x_at[0] = take && exit_of(in_op) == 1;
                assign x_ops[0 +: OPW] = x_at[0] ? in_op : {OPW{1'b0}};
            end else begin : g_pipe
                assign x_at[g] = vsh[g-1] && exit_of(osh[g-1]) == g + 1;
                assign x_ops[OPW*g +: OPW] = x_at[g] ? osh[g-1] : {OPW{1'b0}};
            end
        end
    endgenerate
    reg [OPW-1:0] x_op;
    always @* begin
        x_op = {OPW{1'b0}};
        for (d = 0; d < LAT; d = d + 1) x_op = x_op | x_ops[OPW*d +: OPW];
    end
    wire x_red = (x_op == `DFX_VOP_SUM) || (x_op == `DFX_VOP_SUMSQ) || (x_op == `DFX_VOP_RMAX);
    wire x_last = lsh[E_RD-2];          // a reduction's beat: only its row's last chunk gives a result
    wire [16*V-1:0] x_y;                // the exiting beat's result (element-wise lanes below)
    always @(posedge clk)
        if (rst) o_v <= 1'b0;
        else if (en) o_v <= (|x_at) && (!x_red || x_last);
    reg [16*V-1:0] o_y;
    always @(posedge clk)
        if (en) begin
            o_op <= x_op;
            o_y <= x_y;
        end
    assign out_y = o_y;

    // sideband of the reductions: op and first at the tile sums (D_T) and at the row max's
    // accumulator (D_DOT - 1), the scale at the sums (D_DOT)
    localparam integer SBW = OPW + 1 + 32;
    wire [SBW-1:0] sb0 = {in_op, in_first, in_imm};
    wire [SBW-1:0] sb_t, sb_m, sb_d;
    dfx_delay #(.W(SBW), .LAT(D_T)) u_sb1 (.clk(clk), .en(en), .d(sb0), .q(sb_t));
    dfx_delay #(.W(SBW), .LAT(D_DOT - 1 - D_T)) u_sb2 (.clk(clk), .en(en), .d(sb_t), .q(sb_m));
    dfx_delay #(.W(SBW), .LAT(1)) u_sb3 (.clk(clk), .en(en), .d(sb_m), .q(sb_d));
    wire [OPW-1:0] op_t = sb_t[SBW-1 -: OPW];
    wire [OPW-1:0] op_m = sb_m[SBW-1 -: OPW];
    wire first_t = sb_t[32];
    wire first_m = sb_m[32];
    wire [31:0] scale_d = sb_d[31:0];
    wire v_t = vsh[D_T-1] && (op_t == `DFX_VOP_SUM || op_t == `DFX_VOP_SUMSQ);
    wire v_m = vsh[D_DOT-2] && (op_m == `DFX_VOP_RMAX);
    /* verilator lint_off UNUSEDSIGNAL */
    wire unused = &{1'b0, sb_t[31:0], sb_m[31:0], sb_d[SBW-1:32], lsh};
    /* verilator lint_on UNUSEDSIGNAL */

    // ---------------------------------------------------------------- reductions
    wire is_sq = (in_op == `DFX_VOP_SUMSQ);
    wire [16*V-1:0] rm;                  // values entering the max tree (depth 0)
    genvar k;
    generate
        for (k = 0; k < V; k = k + 1) begin : g_rv
            assign rm[16*k +: 16] = in_mask[k] ? in_a[16*k +: 16] : 16'hFC00;
        end
    endgenerate
    // sum: the row times 1.0; sumsq: times itself
    wire [TW-1:0] tsum;
    wire [5:0] temax;
    wire t_nan, t_pinf, t_ninf;
    dfx_dot_tile #(.N(V)) u_tile (.clk(clk), .en(en), .x(in_a), .w(is_sq ? in_a : {V{16'h3C00}}),
        .m(in_mask), .t(tsum), .emax(temax), .nan(t_nan), .pinf(t_pinf), .ninf(t_ninf));
    wire [31:0] dsum;
    dfx_dot_acc #(.TW(TW)) u_acc (.clk(clk), .en(en), .v(v_t), .first(first_t), .t(tsum),
        .emax(temax), .nan(t_nan), .pinf(t_pinf), .ninf(t_ninf), .bias(16'd0), .y(dsum));
    wire [15:0] tmax0;
    wire [15:0] tmax;
    dfx_max_tree #(.N(V)) u_mtree (.d(rm), .q(tmax0));
    dfx_delay #(.W(16), .LAT(D_DOT - 1), .FF(1)) u_dm (.clk(clk), .en(en), .d(tmax0), .q(tmax));
    reg  [15:0] accm;
    wire [15:0] accm_max;
    dfx_max16_c u_accm (.a(accm), .b(tmax), .y(accm_max));
    always @(posedge clk)
        if (en && v_m)
            accm <= first_m ? tmax : accm_max;
    wire [31:0] scaled;
    dfx_f32_mul_p #(.LAT(MUL_LAT)) u_scl (.clk(clk), .en(en), .a(dsum),
        .b((scale_d == 32'd0) ? 32'h3F800000 : scale_d), .y(scaled));
    wire [15:0] red16;
    dfx_f32_to_f16 u_rr (.a(scaled), .y(red16));
    wire [15:0] red_m;                   // the row max at the sum's depth (E_RD - 1)
    dfx_delay #(.W(16), .LAT(MUL_LAT)) u_drm (.clk(clk), .en(en), .d(accm), .q(red_m));
    wire [15:0] red_y = (x_op == `DFX_VOP_RMAX) ? red_m : red16;

    // ---------------------------------------------------------------- element-wise lanes
    wire [15:0] imm16;
    dfx_f32_to_f16 u_ri (.a(in_imm), .y(imm16));
    generate
        for (k = 0; k < V; k = k + 1) begin : g_lane
            wire [15:0] a = in_a[16*k +: 16];
            wire [15:0] b = in_imm_b ? imm16 : in_b[16*k +: 16];
            wire [31:0] a32;
            wire [31:0] b16_32;
            wire [31:0] b32 = in_imm_b ? in_imm : b16_32;
            dfx_f16_to_f32 u_ca (.a(a), .y(a32));
            dfx_f16_to_f32 u_cb (.a(in_b[16*k +: 16]), .y(b16_32));
            wire [31:0] s32;
            wire [31:0] p32;
            dfx_f32_add_p #(.LAT(ADD_LAT)) u_add (.clk(clk), .en(en), .a(a32),
                .b((in_op == `DFX_VOP_SUB) ? {~b32[31], b32[30:0]} : b32), .y(s32));
            dfx_f32_mul_p #(.LAT(MUL_LAT)) u_mul (.clk(clk), .en(en), .a(a32), .b(b32), .y(p32));
            wire [15:0] s16;
            wire [15:0] p16;
            dfx_f32_to_f16 u_rs (.a(s32), .y(s16));
            dfx_f32_to_f16 u_rp (.a(p32), .y(p16));
            wire [15:0] mx;
            dfx_max16_c u_max (.a(a), .b(b), .y(mx));
            wire [15:0] ex;
            wire [15:0] rc;
            wire [15:0] rq;
            dfx_exp16_p #(.ADD_LAT(ADD_LAT), .MUL_LAT(MUL_LAT)) u_exp (.clk(clk), .en(en), .x(a), .y(ex));
            dfx_recip16_p #(.LAT(RECIP_LAT)) u_rcp (.clk(clk), .en(en), .x(a), .y(rc));
            dfx_rsqrt16_p #(.LAT(RSQRT_LAT)) u_rsq (.clk(clk), .en(en), .x(a), .y(rq));
            // each result at its exit depth - 1 (exit_of): the output register takes it
            reg [15:0] yk;
            always @* begin
                case (x_op)
                    `DFX_VOP_ADD, `DFX_VOP_SUB: yk = s16;
                    `DFX_VOP_MUL:   yk = p16;
                    `DFX_VOP_MAX:   yk = mx;
                    `DFX_VOP_COPY:  yk = a;
                    `DFX_VOP_EXP:   yk = ex;
                    `DFX_VOP_RECIP: yk = rc;
                    `DFX_VOP_RSQRT: yk = rq;
                    default:        yk = (k == 0) ? red_y : 16'd0;
                endcase
            end
            assign x_y[16*k +: 16] = yk;
        end
    endgenerate
endmodule

`default_nettype wire
