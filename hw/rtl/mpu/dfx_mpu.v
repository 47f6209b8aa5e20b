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
    output wire [16*LANES-1:0]       out_y,
    output wire [31:0]               out_col0,
    output wire                      out_row_last,
    output wire [15:0]               out_rowmax,
    output wire [31:0]               out_argmax,
    output wire [15:0]               out_argval
);
    `include "dfx_dot.vh"
    localparam integer L = LANES;
    localparam integer W = WIDTH;
    localparam integer TW = 31 + $clog2(W);                         // a tile sum's bits
    localparam integer D_T = dfx_dot_tile_lat(W);                   // tile sums
    localparam integer D_DOT = D_T + dfx_dot_acc_lat(0);            // the binary32 dot products
    localparam integer GL = 3 * ADD_LAT + 2 * MUL_LAT + 1;          // GELU
    localparam integer D_Y = D_DOT + MUL_LAT + 1;                   // rne16 result
    localparam integer LM = D_Y + GL + 1;                           // the tail's input (gelu) + 1
    // LAT = LM + 1 + log2(L): the tail (dfx_mpu_tail) ends in the output register

    // ---------------------------------------------------------------- control
    reg  [LM-2:0] vsh;                                              // valid at depths 1 .. LM - 1
    wire v_o, last_o;                                               // the output register's beat
    assign out_valid = v_o && last_o;
    wire en = !out_valid || out_ready;
    assign in_ready = en;
    always @(posedge clk)
        if (rst) vsh <= {(LM-1){1'b0}};
        else if (en) vsh <= {vsh[LM-3:0], in_valid};

    // sideband, segment by segment
    // the beat's sideband, registered once: then each lane's mask bit (column col0 + j past
    // mask_lim) is computed there, so the tail only selects
    localparam integer PW = 1 + L + 32 + L + 1;                     // gelu masked col0 lanes row_last
    localparam integer SW = 2 + 16 * L + 1 + 16 + PW;               // first last bias bias_en scale post
    reg  [2+16*L+1+16+1+1+32+32+L+1-1:0] sb_in;
    always @(posedge clk)
        if (en) sb_in <= {in_first, in_last, in_bias, in_bias_en, in_scale, in_gelu, in_mask_en,
                          in_mask_lim, in_col0, in_lane_mask, in_row_last};
    wire [31:0] col0_1 = sb_in[L+32:L+1];
    wire [31:0] lim_1 = sb_in[L+64:L+33];
    wire mask_en_1 = sb_in[L+65];
    wire [L-1:0] mb_1;
    genvar j;
    generate
        for (j = 0; j < L; j = j + 1) begin : g_mb
            assign mb_1[j] = mask_en_1 && ((col0_1 + j) > lim_1);
        end
    endgenerate
    wire [SW-1:0] sb1 = {sb_in[2+16*L+1+16+1+1+32+32+L+1-1 -: 2+16*L+1+16+1], mb_1, col0_1, sb_in[L:0]};
    wire [SW-1:0] sb_t;                                             // at the tile sums (D_T)
    dfx_delay #(.W(SW), .LAT(D_T - 1)) u_sb1 (.clk(clk), .en(en), .d(sb1), .q(sb_t));
    wire first_t = sb_t[SW-1];
    wire v_t = vsh[D_T-1];
    wire [16*L-1:0] bias_t = sb_t[SW-3 -: 16*L];
    wire bias_en_t = sb_t[16 + PW];
    wire [PW:0] sb_b;                                               // last post, at D_DOT
    dfx_delay #(.W(PW+1), .LAT(D_DOT - D_T)) u_sb3 (.clk(clk), .en(en),
        .d({sb_t[SW-2], sb_t[PW-1:0]}), .q(sb_b));
    // the scale, as the binary32 multiplier operand, in a register at D_DOT
    wire [15:0] scale_p;
    dfx_delay #(.W(16), .LAT(D_DOT - D_T - 1)) u_sbs (.clk(clk), .en(en), .d(sb_t[16+PW-1 -: 16]), .q(scale_p));
    wire [31:0] sc32;
    dfx_f16_to_f32 u_sc (.a(scale_p), .y(sc32));
    reg  [31:0] scale_f;
    always @(posedge clk)
        if (en) scale_f <= (scale_p == 16'd0) ? 32'h3F800000 : sc32;
    wire [PW:0] sb_y;                                               // last post
    dfx_delay #(.W(PW+1), .LAT(MUL_LAT + 1)) u_sb4 (.clk(clk), .en(en), .d(sb_b), .q(sb_y));
    wire gelu_y = sb_y[PW-1];
    wire [PW:0] sb_g;
    dfx_delay #(.W(PW+1), .LAT(GL)) u_sb5 (.clk(clk), .en(en), .d(sb_y), .q(sb_g));
    // the tail (mask, then dfx_mpu_tail: row max, argmax, output register) takes a beat with gelu
    // after the GELU pipeline (depth LM - 1), one without straight from the rne16 register (D_Y)
    wire tail_g = vsh[LM-2] && sb_g[PW-1];
    wire [PW:0] sb_m = tail_g ? sb_g : sb_y;
    wire [L-1:0] mb_m = sb_m[PW-2 -: L];
    wire [31:0] col0_m = sb_m[PW-2-L -: 32];
    wire [L-1:0] lanes_m = sb_m[L:1];
    wire row_last_m = sb_m[0];
    wire v_m = tail_g || (vsh[D_Y-1] && !gelu_y);
    wire last_m = sb_m[PW];

    // ---------------------------------------------------------------- lanes
    wire [16*L-1:0] ym;                      // masked FP16 results at the tail
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
            assign ym[16*j +: 16] = mb_m[j] ? 16'hFC00 : gsel;
        end
    endgenerate

    // ---------------------------------------------------------------- row max, argmax, output
    dfx_mpu_tail #(.L(L)) u_tail (.clk(clk), .rst(rst), .en(en), .v(v_m), .last(last_m),
        .row_last(row_last_m), .col0(col0_m), .lanes(lanes_m), .y(ym),
        .o_v(v_o), .o_last(last_o), .o_y(out_y), .o_col0(out_col0), .o_row_last(out_row_last),
        .o_rowmax(out_rowmax), .o_argmax(out_argmax), .o_argval(out_argval));
endmodule

`default_nettype wire
