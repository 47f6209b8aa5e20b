// dfx MPU path: conv1d, maskedmm, mm and lmhead on the matrix unit dfx_mpu.
//
// Loop nest (the reference loop of docs/isa.md): for b < batch, i < m, nt < ceil(n/L),
// kt < ceil(k/W): one MPU beat = x[b,i, kt*W ..] (one read of buffer port A), the weight tile
// (b*wbs + nt*wn + kt) from HBM (one beat of every channel: the read engine's tile mode) and, on
// the last k-tile, the bias of the L columns (port B). Three decoupled parts:
//   requester  walks (b, i, nt) and asks the HBM read engine for each row of tiles, in chunks;
//   feeder     a two-stage pipeline (present the buffer addresses, then feed) that gives the
//              MPU one beat per cycle whenever a tile has arrived;
//   writer     takes the MPU's output beats in the same order and writes y (L columns), and per
//              row: the -inf padding up to a whole W (maskedmm), the row max (maskedmm) or the
//              argmax record (lmhead) to aux.
// Weights are read again for every row i (M times); the MPU keeps one accumulator per lane.
`default_nettype none
`include "dfx_isa.vh"
`include "dfx_kernel.vh"

module dfx_mpu_path #(
    parameter integer LANES = 4,
    parameter integer WIDTH = 8,
    parameter integer MUL_LAT = 5,
    parameter integer ADD_LAT = 7,
    parameter integer NB = 8,
    parameter integer PBITS = 128,
    parameter integer CH = 4,
    parameter integer BA = 40,
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
    input  wire [31:0]         cnt2,
    input  wire [511:0]        regs,
    output reg                 busy,
    output reg                 done,
    output reg                 err,
    output reg  [7:0]          err_code,
    output wire                stall,
    output wire                use_a,      // buffer ports this unit holds this cycle (it has priority)
    output wire                use_b,
    output wire [AW-1:0]       ra_addr,
    input  wire [16*NB-1:0]    ra_data,
    output wire [AW-1:0]       rb_addr,
    input  wire [16*NB-1:0]    rb_data,
    output reg                 bw_en,
    output reg  [AW-1:0]       bw_addr,
    output reg  [16*NB-1:0]    bw_data,
    output reg  [NB-1:0]       bw_mask,
    output reg                 rq_valid,
    input  wire                rq_ready,
    output reg  [BA-1:0]       rq_beat,
    output reg  [15:0]         rq_n,
    input  wire                rd_valid,
    output wire                rd_ready,
    input  wire [CH*PBITS-1:0] rd_data
);
    `include "dfx_core_fn.vh"
    localparam integer L = LANES;
    localparam integer W = WIDTH;
    localparam integer LL = $clog2(L);
    localparam integer LW = $clog2(W);
    localparam integer LC = $clog2(CH);
    localparam integer LTB = $clog2(2 * L * W);
    localparam integer LPB = $clog2(PBITS / 8);
    localparam integer CHUNK = 16;              // tiles per read request
    localparam [15:0] NINF = 16'hFC00;

    // ------------------------------------------------------------ instruction
    reg [511:0] I;
    reg [5:0] op;
    reg [31:0] M, K, N, B, KT, NT, NPAD;
    wire        f_gelu  = I[`DFX_MM_GELU_LSB];
    wire        f_bias  = I[`DFX_MM_BIAS_LSB];
    wire [7:0]  f_batch = I[`DFX_MM_BATCH_LSB +: 8];
    wire [23:0] f_x     = I[`DFX_MM_X_LSB +: 24];
    wire [15:0] f_xs    = I[`DFX_MM_XS_LSB +: 16];
    wire [15:0] f_xbs   = I[`DFX_MM_XBS_LSB +: 16];
    wire [3:0]  f_xreg  = I[`DFX_MM_XREG_LSB +: 4];
    wire [39:0] f_w     = I[`DFX_MM_W_LSB +: 40];
    wire [15:0] f_wn    = I[`DFX_MM_WN_LSB +: 16];
    wire [31:0] f_wbs   = I[`DFX_MM_WBS_LSB +: 32];
    wire [23:0] f_out   = I[`DFX_MM_OUT_LSB +: 24];
    wire [15:0] f_os    = I[`DFX_MM_OS_LSB +: 16];
    wire [15:0] f_obs   = I[`DFX_MM_OBS_LSB +: 16];
    wire [23:0] f_aux   = I[`DFX_MM_AUX_LSB +: 24];
    wire [15:0] f_as    = I[`DFX_MM_AS_LSB +: 16];
    wire [15:0] f_abs   = I[`DFX_MM_ABS_LSB +: 16];
    wire [15:0] f_scale = I[`DFX_MM_SCALE_LSB +: 16];
    wire [3:0]  f_mreg  = I[`DFX_MM_MREG_LSB +: 4];
    wire is_masked = (op == `DFX_OP_MASKEDMM);
    wire is_lm = (op == `DFX_OP_LMHEAD);
    wire [31:0] r_x = regs[32*f_xreg +: 32];
    wire [31:0] r_m = regs[32*f_mreg +: 32];
    wire [47:0] x0 = {24'd0, f_x} + {{16{r_x[31]}}, r_x} * {32'd0, f_xs};
    wire [31:0] as3 = (f_as < 16'd3) ? 32'd3 : {16'd0, f_as};
    wire [47:0] bm1 = {16'd0, B} - 48'd1;

    // ------------------------------------------------------------ checks (simulator order)
    reg [1:0] ck;
    always @* begin
        ck = vb_check(x0, M, K, {16'd0, f_xs});
        if (ck == 2'b00) ck = vb_check(x0 + bm1 * {32'd0, f_xbs}, M, K, {16'd0, f_xs});
        if (ck == 2'b00 && (f_w[LTB-1:0] != {LTB{1'b0}} || (NT > 1 && {16'd0, f_wn} < KT))) ck = 2'b01;
        if (ck == 2'b00 && hbm_bad({24'd0, f_w}, ({16'd0, bm1} * {32'd0, f_wbs} + ({32'd0, NT} - 64'd1) * {48'd0, f_wn}
                                                 + {32'd0, KT}) << LTB)) ck = 2'b10;
        if (ck == 2'b00 && f_bias) ck = vb_check({24'd0, f_aux}, 32'd1, N, N);
        if (ck == 2'b00) ck = vb_check({24'd0, f_out}, M, is_masked ? NPAD : N, {16'd0, f_os});
        if (ck == 2'b00) ck = vb_check({24'd0, f_out} + bm1 * {32'd0, f_obs}, M, is_masked ? NPAD : N, {16'd0, f_os});
        if (ck == 2'b00 && is_masked) ck = vb_check({24'd0, f_aux} + bm1 * {32'd0, f_abs}, M, 32'd1, {16'd0, f_as});
        if (ck == 2'b00 && is_lm) ck = vb_check({24'd0, f_aux} + bm1 * {32'd0, f_abs}, M, 32'd3, as3);
    end

    localparam [2:0] S_IDLE = 0, S_SETUP = 1, S_CHECK = 2, S_RUN = 3, S_ERR = 4;
    reg [2:0] st;

    // ------------------------------------------------------------ requester
    reg [31:0] qb, qi, qnt, qkt;
    reg q_done;
    wire [63:0] w_full = {24'd0, f_w};
    wire [BA-1:0] w_beat0 = w_full[BA+LPB-1:LPB];
    wire [31:0] qleft = KT - qkt;
    wire [31:0] qtiles = (qleft < CHUNK) ? qleft : CHUNK;
    wire [63:0] qtile = {32'd0, qb} * {32'd0, f_wbs} + {32'd0, qnt} * {48'd0, f_wn} + {32'd0, qkt};
    always @(posedge clk) begin
        if (rst || st != S_RUN) begin
            rq_valid <= 1'b0;
            q_done <= 1'b0;
            qb <= 0; qi <= 0; qnt <= 0; qkt <= 0;
        end else begin
            if (rq_valid && rq_ready) rq_valid <= 1'b0;
            if (!q_done && (!rq_valid || rq_ready)) begin
                rq_valid <= 1'b1;
                rq_beat <= w_beat0 + (qtile[BA-1:0] << LC);
                rq_n <= qtiles[15:0] << LC;
                if (qkt + qtiles < KT) qkt <= qkt + qtiles;
                else begin
                    qkt <= 0;
                    if (qnt + 1 < NT) qnt <= qnt + 1;
                    else begin
                        qnt <= 0;
                        if (qi + 1 < M) qi <= qi + 1;
                        else begin
                            qi <= 0;
                            if (qb + 1 < B) qb <= qb + 1;
                            else q_done <= 1'b1;
                        end
                    end
                end
            end
        end
    end

    // ------------------------------------------------------------ feeder: P (present) -> F (feed)
    reg [31:0] pb, pi_, pnt, pkt;
    reg p_v;
    reg f_v;
    reg [31:0] fi, fnt, fkt;
    reg [AW-1:0] f_xa, f_ba;
    wire mpu_in_ready;
    wire fire = f_v && rd_valid && mpu_in_ready;
    wire adv = !f_v || fire;
    wire [47:0] p_xa = x0 + {16'd0, pb} * {32'd0, f_xbs} + {16'd0, pi_} * {32'd0, f_xs} + ({16'd0, pkt} << LW);
    wire [47:0] p_ba = {24'd0, f_aux} + ({16'd0, pnt} << LL);
    assign ra_addr = adv ? p_xa[AW-1:0] : f_xa;
    assign rb_addr = adv ? p_ba[AW-1:0] : f_ba;
    assign rd_ready = fire;
    assign use_a = (st == S_RUN);
    assign use_b = (st == S_RUN) && f_bias;
    assign stall = f_v && !rd_valid;
    always @(posedge clk) begin
        if (rst || st != S_RUN) begin
            f_v <= 1'b0;
            pb <= 0; pi_ <= 0; pnt <= 0; pkt <= 0;
            p_v <= 1'b1;
        end else if (adv) begin
            f_v <= p_v;
            fi <= pi_;
            fnt <= pnt;
            fkt <= pkt;
            f_xa <= p_xa[AW-1:0];
            f_ba <= p_ba[AW-1:0];
            if (p_v) begin
                if (pkt + 1 < KT) pkt <= pkt + 1;
                else begin
                    pkt <= 0;
                    if (pnt + 1 < NT) pnt <= pnt + 1;
                    else begin
                        pnt <= 0;
                        if (pi_ + 1 < M) pi_ <= pi_ + 1;
                        else begin
                            pi_ <= 0;
                            if (pb + 1 < B) pb <= pb + 1;
                            else p_v <= 1'b0;
                        end
                    end
                end
            end
        end
    end

    // ------------------------------------------------------------ the matrix unit
    wire [W-1:0] kmask;
    wire [L-1:0] lmask;
    genvar j;
    generate
        for (j = 0; j < W; j = j + 1) begin : g_km
            assign kmask[j] = ({fkt, {LW{1'b0}}} + j) < {{LW{1'b0}}, K};
        end
        for (j = 0; j < L; j = j + 1) begin : g_lm
            assign lmask[j] = ({fnt, {LL{1'b0}}} + j) < {{LL{1'b0}}, N};
        end
    endgenerate
    wire o_valid;
    wire o_ready;
    wire [16*L-1:0] o_y;
    wire [31:0] o_col0;
    wire o_row_last;
    wire [15:0] o_rowmax;
    wire [31:0] o_argmax;
    wire [15:0] o_argval;
    dfx_mpu #(.LANES(L), .WIDTH(W), .MUL_LAT(MUL_LAT), .ADD_LAT(ADD_LAT)) u_mpu (
        .clk(clk), .rst(rst),
        .in_valid(f_v && rd_valid), .in_ready(mpu_in_ready),
        .in_x(ra_data[16*W-1:0]), .in_w(rd_data[16*L*W-1:0]), .in_kmask(kmask),
        .in_first(fkt == 0), .in_last(fkt + 1 == KT),
        .in_bias(rb_data[16*L-1:0]), .in_bias_en(f_bias), .in_scale(f_scale), .in_gelu(f_gelu),
        .in_mask_en(is_masked), .in_mask_lim(r_m + fi), .in_col0(fnt << LL), .in_lane_mask(lmask),
        .in_row_last(fnt + 1 == NT),
        .out_valid(o_valid), .out_ready(o_ready), .out_y(o_y), .out_col0(o_col0), .out_row_last(o_row_last),
        .out_rowmax(o_rowmax), .out_argmax(o_argmax), .out_argval(o_argval));

    // ------------------------------------------------------------ writer
    localparam [1:0] W_Y = 0, W_PAD = 1, W_AUX = 2;
    reg [1:0] wst;
    reg [31:0] ob, oi;
    reg [31:0] outs_left;
    reg [15:0] h_max, h_val;
    reg [31:0] h_arg;
    assign o_ready = (wst == W_Y);
    wire [47:0] orow = {24'd0, f_out} + {16'd0, ob} * {32'd0, f_obs} + {16'd0, oi} * {32'd0, f_os};
    wire [31:0] a_st = is_lm ? as3 : {16'd0, f_as};            // aux row stride (lmhead: at least 3)
    wire [47:0] arow = {24'd0, f_aux} + {16'd0, ob} * {32'd0, f_abs} + {16'd0, oi} * {16'd0, a_st};
    wire [31:0] ntl = NT << LL;                                  // columns the MPU produced
    wire need_pad = is_masked && (NPAD > ntl);
    wire need_aux = is_masked || is_lm;
    reg [16*NB-1:0] ydat;
    reg [NB-1:0] ymask;
    integer q;
    always @* begin
        ydat = {16*NB{1'b0}};
        ymask = {NB{1'b0}};
        for (q = 0; q < L; q = q + 1) begin
            ydat[16*q +: 16] = (o_col0 + q < N) ? o_y[16*q +: 16] : NINF;
            ymask[q] = (o_col0 + q < N) || (is_masked && (o_col0 + q < NPAD));
        end
    end
    reg [NB-1:0] pmask;
    always @* begin
        pmask = {NB{1'b0}};
        for (q = 0; q < W; q = q + 1)
            pmask[q] = (ntl + q < NPAD);
    end

    always @(posedge clk) begin
        done <= 1'b0;
        err <= 1'b0;
        bw_en <= 1'b0;
        if (rst) begin
            st <= S_IDLE;
            busy <= 1'b0;
            wst <= W_Y;
        end else begin
            case (st)
                S_IDLE: if (start) begin
                    I <= ins;
                    op <= ins[5:0];
                    M <= cnt0;
                    K <= cnt1;
                    N <= cnt2;
                    busy <= 1'b1;
                    st <= S_SETUP;
                end
                S_SETUP: begin
                    B <= (f_batch == 8'd0) ? 32'd1 : {24'd0, f_batch};
                    KT <= (K + W - 1) >> LW;
                    NT <= (N + L - 1) >> LL;
                    NPAD <= ((N + W - 1) >> LW) << LW;
                    st <= S_CHECK;
                end
                S_CHECK: begin
                    ob <= 0;
                    oi <= 0;
                    wst <= W_Y;
                    outs_left <= B * M * NT;
                    if (M == 0 || K == 0 || N == 0) begin
                        busy <= 1'b0;
                        done <= 1'b1;
                        st <= S_IDLE;
                    end else if (ck != 2'b00) begin
                        err_code <= (ck == 2'b01) ? `DFX_ERR_ILLEGAL_INSTRUCTION : `DFX_ERR_ADDRESS;
                        st <= S_ERR;
                    end else st <= S_RUN;
                end
                S_RUN: begin
                    case (wst)
                        W_Y: if (o_valid) begin
                            bw_en <= 1'b1;
                            bw_addr <= orow[AW-1:0] + o_col0[AW-1:0];
                            bw_data <= ydat;
                            bw_mask <= ymask;
                            if (o_row_last) begin
                                h_max <= o_rowmax;
                                h_val <= o_argval;
                                h_arg <= o_argmax;
                                wst <= need_pad ? W_PAD : (need_aux ? W_AUX : W_Y);
                                if (!need_pad && !need_aux) begin
                                    if (oi + 1 < M) oi <= oi + 1;
                                    else begin oi <= 0; ob <= ob + 1; end
                                end
                            end
                            outs_left <= outs_left - 1;
                            if (outs_left == 1 && !(o_row_last && (need_pad || need_aux))) begin
                                busy <= 1'b0;
                                done <= 1'b1;
                                st <= S_IDLE;
                            end
                        end
                        W_PAD: begin
                            bw_en <= 1'b1;
                            bw_addr <= orow[AW-1:0] + ntl[AW-1:0];
                            bw_data <= {NB{NINF}};
                            bw_mask <= pmask;
                            wst <= W_AUX;
                        end
                        default: begin                            // W_AUX
                            bw_en <= 1'b1;
                            bw_addr <= arow[AW-1:0];
                            bw_data <= is_lm ? {{(16*NB-48){1'b0}}, h_val, h_arg[31:16], h_arg[15:0]}
                                             : {{(16*NB-16){1'b0}}, h_max};
                            bw_mask <= is_lm ? {{(NB-3){1'b0}}, 3'b111} : {{(NB-1){1'b0}}, 1'b1};
                            wst <= W_Y;
                            if (oi + 1 < M) oi <= oi + 1;
                            else begin oi <= 0; ob <= ob + 1; end
                            if (outs_left == 0) begin
                                busy <= 1'b0;
                                done <= 1'b1;
                                st <= S_IDLE;
                            end
                        end
                    endcase
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
    // bits no logic reads: instruction bits of other formats, bias words past L lanes, the byte
    // offset and top bits of the weight address (checked: tile-aligned, inside HBM), buffer
    // addresses past AW bits (checked before the product starts)
    wire _unused_ok = &{1'b0, I, rb_data, w_full, qtile[63:BA], p_xa[47:AW], p_ba[47:AW], orow[47:AW], arow[47:AW], 1'b0};
endmodule

`default_nettype wire
