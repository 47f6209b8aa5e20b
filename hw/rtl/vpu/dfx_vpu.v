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
// vector op of the ISA takes it, so the VPU has none). Reductions: sum = nx.chunked_sum(f32(a), V),
// sumsq the same over the exact products f32(a)^2, then (scale) * f32(scale), rne16;
// rmax = nx.chunked_max(a, V). Each op has its own latency, exit_of (docs/hw.md); outputs leave
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
    localparam integer V = VWIDTH;
    localparam integer OPW = `DFX_VPU_OP_BITS;
    localparam integer TB_L = 3 * ADD_LAT + 2 * MUL_LAT + 1;      // exp
    localparam integer D_ACC = MUL_LAT + $clog2(V) * ADD_LAT;       // tree output
    localparam integer RED_L = D_ACC + MUL_LAT + 2;
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

    // sideband of the reductions: op, first and scale at the tree output (D_ACC, D_ACC + 1)
    localparam integer SBW = OPW + 2 + 32;
    wire [SBW-1:0] sb0 = {in_op, in_first, in_last, in_imm};
    wire [SBW-1:0] sb_acc;
    wire [SBW-1:0] sb_acc1;
    dfx_delay #(.W(SBW), .LAT(D_ACC)) u_sb1 (.clk(clk), .en(en), .d(sb0), .q(sb_acc));
    dfx_delay #(.W(SBW), .LAT(1)) u_sb2 (.clk(clk), .en(en), .d(sb_acc), .q(sb_acc1));
    wire [OPW-1:0] op_acc = sb_acc[SBW-1 -: OPW];
    wire first_acc = sb_acc[33];
    wire [31:0] scale_acc1 = sb_acc1[31:0];
    wire v_acc = vsh[D_ACC-1];
    /* verilator lint_off UNUSEDSIGNAL */
    wire unused = &{1'b0, sb_acc1[SBW-1:32], sb_acc[32:0], lsh};
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
            // a x a and f32(a) (or +0) side by side for MUL_LAT - 1 stages, then the one chosen
            // into a register: the adder tree's inputs come straight from flip-flops
            wire [31:0] a2;                  // a x a, MUL_LAT - 1 later
            wire [31:0] a32d;                // f32(a) or +0, MUL_LAT - 1 later
            wire        sq_d;                // a x a is the value, MUL_LAT - 1 later
            dfx_f16_to_f32 u_c (.a(a), .y(a32));
            dfx_f16_mul_p #(.LAT(MUL_LAT - 1)) u_sq (.clk(clk), .en(en), .a(a), .b(a), .y(a2));
            dfx_delay #(.W(32), .LAT(MUL_LAT - 1), .FF(1)) u_d (.clk(clk), .en(en),
                .d((in_mask[k] && !is_sq) ? a32 : 32'd0), .q(a32d));
            dfx_delay #(.W(1), .LAT(MUL_LAT - 1)) u_dsq (.clk(clk), .en(en), .d(in_mask[k] && is_sq), .q(sq_d));
            dfx_delay #(.W(32), .LAT(1), .FF(1)) u_rv (.clk(clk), .en(en), .d(sq_d ? a2 : a32d), .q(rv[32*k +: 32]));
            assign rm[16*k +: 16] = in_mask[k] ? a : 16'hFC00;
        end
    endgenerate
    wire [31:0] tsum;
    dfx_add_tree #(.N(V), .LAT(ADD_LAT)) u_tree (.clk(clk), .en(en), .d(rv), .q(tsum));
    wire [15:0] tmax0;
    wire [15:0] tmax;
    dfx_max_tree #(.N(V)) u_mtree (.d(rm), .q(tmax0));
    dfx_delay #(.W(16), .LAT(D_ACC), .FF(1)) u_dm (.clk(clk), .en(en), .d(tmax0), .q(tmax));
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
