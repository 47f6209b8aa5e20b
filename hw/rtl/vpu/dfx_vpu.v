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
// rsqrt, gelu = the nx.*_alg table algorithms. Reductions: sum = nx.chunked_sum(f32(a), V),
// sumsq the same over the exact products f32(a)^2, then (scale) * f32(scale), rne16;
// rmax = nx.chunked_max(a, V). Every op has the same latency LAT (localparam; docs/hw.md).
`default_nettype none
`include "dfx_numerics.vh"

module dfx_vpu #(
    parameter integer VWIDTH = 8,
    parameter integer MUL_LAT = 2,
    parameter integer ADD_LAT = 2,
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
    localparam integer V = VWIDTH;
    localparam integer OPW = `DFX_VPU_OP_BITS;
    localparam integer AR_L = ADD_LAT + 1;
    localparam integer MU_L = MUL_LAT + 1;
    localparam integer TB_L = 3 * ADD_LAT + 2 * MUL_LAT + 1;      // exp and gelu
    localparam integer D_ACC = MUL_LAT + $clog2(V) * ADD_LAT;       // tree output
    localparam integer RED_L = D_ACC + MUL_LAT + 2;
    localparam integer M1 = (AR_L > MU_L) ? AR_L : MU_L;
    localparam integer M2 = (TB_L > RECIP_LAT) ? TB_L : RECIP_LAT;
    localparam integer M3 = (RSQRT_LAT > RED_L) ? RSQRT_LAT : RED_L;
    localparam integer M12 = (M1 > M2) ? M1 : M2;
    localparam integer LAT = (M12 > M3) ? M12 : M3;

    // ---------------------------------------------------------------- control
    reg  [LAT-1:0] vsh;                 // vsh[d-1]: a beat at depth d
    wire [OPW-1:0] op_end;
    wire           last_end;
    wire           ew_end = (op_end != `DFX_VOP_SUM) && (op_end != `DFX_VOP_SUMSQ) && (op_end != `DFX_VOP_RMAX);
    assign out_valid = vsh[LAT-1] && (ew_end || last_end);
    wire en = !out_valid || out_ready;
    assign in_ready = en;
    always @(posedge clk)
        if (rst) vsh <= {LAT{1'b0}};
        else if (en) vsh <= {vsh[LAT-2:0], in_valid};
    assign out_op = op_end;

    // sideband: op, first, last, scale; taps at D_ACC, D_ACC + 1 and LAT
    localparam integer SBW = OPW + 2 + 32;
    wire [SBW-1:0] sb0 = {in_op, in_first, in_last, in_imm};
    wire [SBW-1:0] sb_acc;
    wire [SBW-1:0] sb_acc1;
    wire [SBW-1:0] sb_end;
    dfx_delay #(.W(SBW), .LAT(D_ACC)) u_sb1 (.clk(clk), .en(en), .d(sb0), .q(sb_acc));
    dfx_delay #(.W(SBW), .LAT(1)) u_sb2 (.clk(clk), .en(en), .d(sb_acc), .q(sb_acc1));
    dfx_delay #(.W(SBW), .LAT(LAT - D_ACC - 1)) u_sb3 (.clk(clk), .en(en), .d(sb_acc1), .q(sb_end));
    assign op_end = sb_end[SBW-1 -: OPW];
    assign last_end = sb_end[32];
    wire [OPW-1:0] op_acc = sb_acc[SBW-1 -: OPW];
    wire first_acc = sb_acc[33];
    wire [31:0] scale_acc1 = sb_acc1[31:0];
    wire v_acc = vsh[D_ACC-1];
    /* verilator lint_off UNUSEDSIGNAL */
    wire unused = &{1'b0, sb_acc1[SBW-1:32], sb_acc[32:0], sb_end[33], sb_end[31:0]};
    /* verilator lint_on UNUSEDSIGNAL */

    // ---------------------------------------------------------------- reductions
    wire is_sq = (in_op == `DFX_VOP_SUMSQ);
    wire [32*V-1:0] rv;                  // values entering the sum tree (depth MUL_LAT)
    wire [16*V-1:0] rm;                  // values entering the max tree (depth 0)
    genvar k;
    generate
        for (k = 0; k < V; k = k + 1) begin : g_rv
            wire [15:0] a = in_a[16*k +: 16];
            wire [31:0] a32;
            wire [31:0] a2;
            dfx_f16_to_f32 u_c (.a(a), .y(a32));
            dfx_f16_mul_c u_sq (.a(a), .b(a), .y(a2));
            wire [31:0] v0 = !in_mask[k] ? 32'd0 : is_sq ? a2 : a32;
            dfx_delay #(.W(32), .LAT(MUL_LAT)) u_d (.clk(clk), .en(en), .d(v0), .q(rv[32*k +: 32]));
            assign rm[16*k +: 16] = in_mask[k] ? a : 16'hFC00;
        end
    endgenerate
    wire [31:0] tsum;
    dfx_add_tree #(.N(V), .LAT(ADD_LAT)) u_tree (.clk(clk), .en(en), .d(rv), .q(tsum));
    wire [15:0] tmax0;
    wire [15:0] tmax;
    dfx_max_tree #(.N(V)) u_mtree (.d(rm), .q(tmax0));
    dfx_delay #(.W(16), .LAT(D_ACC)) u_dm (.clk(clk), .en(en), .d(tmax0), .q(tmax));
    reg  [31:0] acc;
    reg  [15:0] accm;
    wire [31:0] acc_sum;
    wire [15:0] accm_max;
    dfx_f32_add_c u_acc (.a(acc), .b(tsum), .y(acc_sum));
    dfx_max16_c u_accm (.a(accm), .b(tmax), .y(accm_max));
    always @(posedge clk)
        if (en && v_acc) begin
            if (op_acc == `DFX_VOP_SUM || op_acc == `DFX_VOP_SUMSQ)
                acc <= first_acc ? tsum : acc_sum;
            if (op_acc == `DFX_VOP_RMAX)
                accm <= first_acc ? tmax : accm_max;
        end
    wire [31:0] scaled;
    dfx_f32_mul_p #(.LAT(MUL_LAT)) u_scl (.clk(clk), .en(en), .a(acc),
        .b((scale_acc1 == 32'd0) ? 32'h3F800000 : scale_acc1), .y(scaled));
    wire [15:0] red16;
    dfx_f32_to_f16 u_rr (.a(scaled), .y(red16));
    wire [15:0] red_s;
    wire [15:0] red_m;
    dfx_delay #(.W(16), .LAT(1 + LAT - RED_L)) u_dr (.clk(clk), .en(en), .d(red16), .q(red_s));
    dfx_delay #(.W(16), .LAT(MUL_LAT + 1 + LAT - RED_L)) u_drm (.clk(clk), .en(en), .d(accm), .q(red_m));
    wire [15:0] red_y = (op_end == `DFX_VOP_RMAX) ? red_m : red_s;

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
            wire [15:0] ge;
            wire [15:0] rc;
            wire [15:0] rq;
            dfx_exp16_p #(.ADD_LAT(ADD_LAT), .MUL_LAT(MUL_LAT)) u_exp (.clk(clk), .en(en), .x(a), .y(ex));
            dfx_gelu16_p #(.ADD_LAT(ADD_LAT), .MUL_LAT(MUL_LAT)) u_gelu (.clk(clk), .en(en), .x(a), .y(ge));
            dfx_recip16_p #(.LAT(RECIP_LAT)) u_rcp (.clk(clk), .en(en), .x(a), .y(rc));
            dfx_rsqrt16_p #(.LAT(RSQRT_LAT)) u_rsq (.clk(clk), .en(en), .x(a), .y(rq));
            // pad every path to LAT
            wire [15:0] s_e, p_e, mx_e, cp_e, ex_e, ge_e, rc_e, rq_e;
            dfx_delay #(.W(16), .LAT(LAT - ADD_LAT)) u_p1 (.clk(clk), .en(en), .d(s16), .q(s_e));
            dfx_delay #(.W(16), .LAT(LAT - MUL_LAT)) u_p2 (.clk(clk), .en(en), .d(p16), .q(p_e));
            dfx_delay #(.W(16), .LAT(LAT)) u_p3 (.clk(clk), .en(en), .d(mx), .q(mx_e));
            dfx_delay #(.W(16), .LAT(LAT)) u_p4 (.clk(clk), .en(en), .d(a), .q(cp_e));
            dfx_delay #(.W(16), .LAT(LAT - TB_L)) u_p5 (.clk(clk), .en(en), .d(ex), .q(ex_e));
            dfx_delay #(.W(16), .LAT(LAT - TB_L)) u_p6 (.clk(clk), .en(en), .d(ge), .q(ge_e));
            dfx_delay #(.W(16), .LAT(LAT - RECIP_LAT)) u_p7 (.clk(clk), .en(en), .d(rc), .q(rc_e));
            dfx_delay #(.W(16), .LAT(LAT - RSQRT_LAT)) u_p8 (.clk(clk), .en(en), .d(rq), .q(rq_e));
            reg [15:0] yk;
            always @* begin
                case (op_end)
                    `DFX_VOP_ADD, `DFX_VOP_SUB: yk = s_e;
                    `DFX_VOP_MUL:   yk = p_e;
                    `DFX_VOP_MAX:   yk = mx_e;
                    `DFX_VOP_COPY:  yk = cp_e;
                    `DFX_VOP_EXP:   yk = ex_e;
                    `DFX_VOP_RECIP: yk = rc_e;
                    `DFX_VOP_RSQRT: yk = rq_e;
                    `DFX_VOP_GELU:  yk = ge_e;
                    default:        yk = (k == 0) ? red_y : 16'd0;
                endcase
            end
            assign out_y[16*k +: 16] = yk;
        end
    endgenerate
endmodule

`default_nettype wire
