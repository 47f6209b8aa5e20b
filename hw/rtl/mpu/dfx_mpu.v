// dfx matrix unit: LANES dot products of WIDTH FP16 products per cycle, valid/ready in and out.
//
// in beat (one k-tile of one output row for LANES columns):
//   x[W] (FP16, broadcast to every lane), w[L][W] (lane j's weights at w[(j*W + k)*16 +: 16]),
//   kmask[W] (k < K: products with a clear bit are +0), first / last (first and last k-tile),
//   bias[L], bias_en, scale (FP16 bits, 0 = none), gelu, mask_en, mask_lim (pos + i: column c
//   is -inf when c > mask_lim), col0 (column of lane 0), lane_mask[L] (columns < N),
//   row_last (the last column group of the output row).
// out beat (one per `last` in beat): y[L] (FP16), col0, row_last, and on row_last the row
//   maximum (nx.chunked_max over the row's columns in groups of L) and the first argmax
//   (nx.argmax16: index and bits).
// Per lane: acc = nx.dot_exact of the row's k-tiles with the bias in its accumulator (a
// dfx_dot_tile per lane, then dfx_dot_acc); (scale) acc *= f32(scale); y = rne16(acc); (gelu)
// y = gelu16(y); (mask) y = -inf where masked. A disabled bias is +0 and a disabled scale
// multiplies by 1, both exact identities. One beat per cycle in steady state (LANES x WIDTH
// MACs per cycle).
// Latency: LAT with gelu, LAT - GL without (the GELU pipeline is skipped): a beat leaves the
// pipeline at the depth its own gelu flag picks, so a beat without gelu must not meet one with
// it at the tail: a product must not enter while one with the other gelu is still inside (the
// MPU path runs one product at a time and waits for its last output).
`default_nettype none

module dfx_mpu #(
    parameter integer LANES = 4,
    parameter integer WIDTH = 8,
    parameter integer MUL_LAT = 5,
    parameter integer ADD_LAT = 7
) (
    input  wire                      clk,
    input  wire                      rst,
    input  wire                      in_valid,
    output wire                      in_ready,
    input  wire [16*WIDTH-1:0]       in_x,
    input  wire [16*LANES*WIDTH-1:0] in_w,
    input  wire [WIDTH-1:0]          in_kmask,
    input  wire                      in_first,
    input  wire                      in_last,
    input  wire [16*LANES-1:0]       in_bias,
    input  wire                      in_bias_en,
    input  wire [15:0]               in_scale,
    input  wire                      in_gelu,
    input  wire                      in_mask_en,
    input  wire [31:0]               in_mask_lim,
    input  wire [31:0]               in_col0,
    input  wire [LANES-1:0]          in_lane_mask,
    input  wire                      in_row_last,
    output wire                      out_valid,
    input  wire                      out_ready,
    output reg  [16*LANES-1:0]       out_y,
    output reg  [31:0]               out_col0,
    output reg                       out_row_last,
    output reg  [15:0]               out_rowmax,
    output reg  [31:0]               out_argmax,
    output reg  [15:0]               out_argval
);
    `include "dfx_dot.vh"
    localparam integer L = LANES;
    localparam integer W = WIDTH;
    localparam integer TW = 31 + $clog2(W);                         // a tile sum's bits
    localparam integer D_T = dfx_dot_tile_lat(W);                   // tile sums
    localparam integer D_DOT = D_T + dfx_dot_acc_lat(0);            // the binary32 dot products
    localparam integer GL = 3 * ADD_LAT + 2 * MUL_LAT + 1;          // GELU
    localparam integer D_Y = D_DOT + MUL_LAT + 1;                   // rne16 result
    localparam integer LAT = D_Y + GL + 1;                          // output register (gelu)

    // ---------------------------------------------------------------- control
    reg  [LAT-2:0] vsh;                                             // valid at depths 1 .. LAT - 1
    reg  v_o;                                                       // the output register holds a beat
    wire last_end;
    assign out_valid = v_o && last_end;
    wire en = !out_valid || out_ready;
    assign in_ready = en;
    always @(posedge clk)
        if (rst) vsh <= {(LAT-1){1'b0}};
        else if (en) vsh <= {vsh[LAT-3:0], in_valid};

    // sideband, segment by segment
    localparam integer PW = 1 + 1 + 32 + 32 + L + 1;                // gelu mask_en lim col0 lanes row_last
    localparam integer SW = 2 + 16 * L + 1 + 16 + PW;               // first last bias bias_en scale post
    wire [PW-1:0] post0 = {in_gelu, in_mask_en, in_mask_lim, in_col0, in_lane_mask, in_row_last};
    wire [SW-1:0] sb0 = {in_first, in_last, in_bias, in_bias_en, in_scale, post0};
    wire [SW-1:0] sb_t;                                             // at the tile sums (D_T)
    dfx_delay #(.W(SW), .LAT(D_T)) u_sb1 (.clk(clk), .en(en), .d(sb0), .q(sb_t));
    wire first_t = sb_t[SW-1];
    wire v_t = vsh[D_T-1];
    wire [16*L-1:0] bias_t = sb_t[SW-3 -: 16*L];
    wire bias_en_t = sb_t[16 + PW];
    wire [1+16+PW-1:0] sb_b;                                        // last scale post, at D_DOT
    dfx_delay #(.W(1+16+PW), .LAT(D_DOT - D_T)) u_sb3 (.clk(clk), .en(en),
        .d({sb_t[SW-2], sb_t[16+PW-1:0]}), .q(sb_b));
    wire [15:0] scale_b = sb_b[16+PW-1 -: 16];
    wire [PW:0] sb_y;                                               // last post
    dfx_delay #(.W(PW+1), .LAT(MUL_LAT + 1)) u_sb4 (.clk(clk), .en(en),
        .d({sb_b[16+PW], sb_b[PW-1:0]}), .q(sb_y));
    wire gelu_y = sb_y[PW-1];
    wire [PW:0] sb_g;
    dfx_delay #(.W(PW+1), .LAT(GL)) u_sb5 (.clk(clk), .en(en), .d(sb_y), .q(sb_g));
    // the tail (mask, row max, argmax, output register) takes a beat with gelu after the GELU
    // pipeline (depth LAT - 1), one without straight from the rne16 register (depth D_Y)
    wire tail_g = vsh[LAT-2] && sb_g[PW-1];
    wire [PW:0] sb_m = tail_g ? sb_g : sb_y;
    wire mask_en_m = sb_m[PW-2];
    wire [31:0] lim_m = sb_m[PW-3 -: 32];
    wire [31:0] col0_m = sb_m[PW-35 -: 32];
    wire [L-1:0] lanes_m = sb_m[L:1];
    wire row_last_m = sb_m[0];
    wire v_m = tail_g || (vsh[D_Y-1] && !gelu_y);
    wire last_m = sb_m[PW];
    reg  last_q;
    always @(posedge clk) begin
        if (en) last_q <= last_m;
        if (rst) v_o <= 1'b0;
        else if (en) v_o <= v_m;
    end
    assign last_end = last_q;

    // ---------------------------------------------------------------- lanes
    wire [31:0] sc32;
    dfx_f16_to_f32 u_sc (.a(scale_b), .y(sc32));
    wire [31:0] scale_f = (scale_b == 16'd0) ? 32'h3F800000 : sc32;
    wire [16*L-1:0] ym;                      // masked FP16 results at the tail
    genvar j;
    generate
        for (j = 0; j < L; j = j + 1) begin : g_lane
            wire [TW-1:0] t;
            wire [5:0] emax;
            wire t_nan, t_pinf, t_ninf;
            dfx_dot_tile #(.N(W)) u_tile (.clk(clk), .en(en), .x(in_x), .w(in_w[16*W*j +: 16*W]),
                .m(in_kmask), .t(t), .emax(emax), .nan(t_nan), .pinf(t_pinf), .ninf(t_ninf));
            wire [31:0] acc;
            dfx_dot_acc #(.TW(TW)) u_acc (.clk(clk), .en(en), .v(v_t), .first(first_t), .t(t),
                .emax(emax), .nan(t_nan), .pinf(t_pinf), .ninf(t_ninf),
                .bias(bias_en_t ? bias_t[16*j +: 16] : 16'd0), .y(acc));
            wire [31:0] as;
            dfx_f32_mul_p #(.LAT(MUL_LAT)) u_scale (.clk(clk), .en(en), .a(acc), .b(scale_f), .y(as));
            wire [15:0] y0;
            wire [15:0] y1;
            dfx_f32_to_f16 u_r (.a(as), .y(y0));
            dfx_delay #(.W(16), .LAT(1)) u_dy (.clk(clk), .en(en), .d(y0), .q(y1));
            wire [15:0] yg;
            dfx_gelu16_p #(.ADD_LAT(ADD_LAT), .MUL_LAT(MUL_LAT)) u_gelu (.clk(clk), .en(en), .x(y1), .y(yg));
            wire [15:0] gsel = tail_g ? yg : y1;
            wire masked = mask_en_m && ((col0_m + j) > lim_m);
            assign ym[16*j +: 16] = masked ? 16'hFC00 : gsel;
        end
    endgenerate

    // ---------------------------------------------------------------- row max and argmax
    wire [16*L-1:0] rv;                      // padded lanes read as -inf
    generate
        for (j = 0; j < L; j = j + 1) begin : g_rv
            assign rv[16*j +: 16] = lanes_m[j] ? ym[16*j +: 16] : 16'hFC00;
        end
    endgenerate
    wire [15:0] bmax;
    dfx_max_tree #(.N(L)) u_mt (.d(rv), .q(bmax));
    // argmax over the lanes: NaN reads as -inf, ties keep the lower index
    reg  [15:0] ab_v;
    reg  [31:0] ab_i;
    reg  signed [16:0] ab_k;
    wire signed [16:0] kl [0:L-1];
    generate
        for (j = 0; j < L; j = j + 1) begin : g_key
            wire signed [16:0] kr;
            dfx_key16 u_k (.a(rv[16*j +: 16]), .k(kr));
            wire nan = (rv[16*j+10 +: 5] == 5'd31) && (rv[16*j +: 10] != 10'd0);
            assign kl[j] = nan ? -17'sd31744 : kr;             // key of -inf
        end
    endgenerate
    integer q;
    always @* begin
        ab_v = rv[15:0];
        ab_i = col0_m;
        ab_k = kl[0];
        for (q = 1; q < L; q = q + 1)
            if (kl[q] > ab_k) begin
                ab_k = kl[q];
                ab_v = rv[16*q +: 16];
                ab_i = col0_m + q;
            end
    end
    // running row state
    reg         run_v;
    reg  [15:0] run_max;
    reg  [15:0] run_av;
    reg  [31:0] run_ai;
    reg  signed [16:0] run_ak;
    wire [15:0] mx;
    dfx_max16_c u_rm (.a(run_max), .b(bmax), .y(mx));
    wire take = !run_v || (ab_k > run_ak);
    wire fire_m = en && v_m && last_m;
    always @(posedge clk) begin
        if (rst)
            run_v <= 1'b0;
        else if (fire_m)
            run_v <= !row_last_m;
        if (fire_m) begin
            run_max <= run_v ? mx : bmax;
            if (take) begin
                run_av <= ab_v;
                run_ai <= ab_i;
                run_ak <= ab_k;
            end
        end
        if (en) begin
            out_y <= ym;
            out_col0 <= col0_m;
            out_row_last <= row_last_m;
            out_rowmax <= run_v ? mx : bmax;
            out_argval <= take ? ab_v : run_av;
            out_argmax <= take ? ab_i : run_ai;
        end
    end
endmodule

`default_nettype wire
