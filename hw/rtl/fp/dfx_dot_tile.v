// One tile of a dot product (docs/numerics.md, "Dot products", steps 1-3 and 6), pipelined for
// 200 MHz: the N products x[k] w[k] of FP16 pairs (a clear m[k] makes the product +0), each
// aligned to the tile's largest exponent, truncated toward zero G bits below it and summed
// exactly. Out: t = S_t (signed; worth t 2^(emax - 50 - G)), emax (0 when every product is 0),
// and whether a product is NaN, +inf or -inf. Latency dfx_dot_tile_lat(N) (dfx_dot.vh), one tile
// per cycle, advanced by en. nx.dot_tiles is the reference; tests/hw/cocotb_dot.py compares.
//
// Stage plan (budget 5.0 ns; dfx.hw.timing's pessimistic corner):
//   R1        decode: significands (the DSP48E2's A and B registers), exponent sum (6-bit chain),
//             live (a nonzero finite product), sign, NaN / inf per product
//   R2        the 11 x 11 significand product (the DSP's P register); beside it the flags' OR
//             trees and the first two levels of the exponent max tree
//   ..R(A0)   the rest of the max tree, two levels (compare and select) per stage; the product
//             and its fields wait in flip-flops (A0 = max(2, 1 + stages of the tree))
//   R(A0+1)   d = emax - E (6-bit chain); zero when not live or d >= 22 + G
//   R(A0+2)   a = (P << G) >> d, the truncated magnitude (a 30-bit barrel shifter)
//   R(A0+3)   +-a, two's complement (31-bit chain)
//   ..        the sum tree, two levels of adds per stage
`default_nettype none
`include "dfx_numerics.vh"

module dfx_dot_tile #(
    parameter integer N = 8
) (
    input  wire                   clk,
    input  wire                   en,
    input  wire [16*N-1:0]        x,
    input  wire [16*N-1:0]        w,
    input  wire [N-1:0]           m,
    output wire [31+$clog2(N)-1:0] t,
    output wire [5:0]             emax,
    output wire                   nan,
    output wire                   pinf,
    output wire                   ninf
);
    `include "dfx_dot.vh"
    localparam integer G = `DFX_DOT_GUARD;
    localparam integer TS = dfx_dot_tree_st(N);            // stages of each tree
    localparam integer A0 = (1 + TS > 2) ? 1 + TS : 2;     // product and emax both ready
    localparam integer AW = 22 + G;                        // aligned magnitude
    localparam integer SW = AW + 1;                        // signed aligned product

    // ---------------------------------------------------------------- R1: decode, R2: product
    wire [22*N-1:0] p_2;
    wire [6*N-1:0]  e_1;
    wire [N-1:0]    live_1, neg_1, nan_1, pinf_1, ninf_1;
    genvar k;
    generate
        for (k = 0; k < N; k = k + 1) begin : g_dec
            wire [15:0] xk = x[16*k +: 16];
            wire [15:0] wk = w[16*k +: 16];
            wire xz = xk[14:10] == 5'd0;
            wire wz = wk[14:10] == 5'd0;
            wire xs = xk[14:10] == 5'd31;
            wire ws = wk[14:10] == 5'd31;
            wire xn = xs && (xk[9:0] != 10'd0);
            wire wn = ws && (wk[9:0] != 10'd0);
            wire xi = xs && (xk[9:0] == 10'd0);
            wire wi = ws && (wk[9:0] == 10'd0);
            wire live = m[k] && !xz && !wz && !xs && !ws;
            wire neg = xk[15] ^ wk[15];
            wire pn = m[k] && (xn || wn || (xi && wz) || (xz && wi));
            wire pi = m[k] && (xi || wi) && !pn;
            reg [10:0] mx_r, mw_r;                         // the DSP's A and B registers
            reg [5:0]  e_r;
            reg        live_r, neg_r, nan_r, pinf_r, ninf_r;
            reg [21:0] p_r;                                // the DSP's P register
            always @(posedge clk)
                if (en) begin
                    // the leading 1 as !zero: a register with a constant bit would not be packed
                    // whole into the DSP; a product that is not live is dropped at R(A0+1)
                    mx_r <= {!xz, xk[9:0]};
                    mw_r <= {!wz, wk[9:0]};
                    e_r <= live ? {1'b0, xk[14:10]} + {1'b0, wk[14:10]} : 6'd0;
                    live_r <= live;
                    neg_r <= neg;
                    nan_r <= pn;
                    pinf_r <= pi && !neg;
                    ninf_r <= pi && neg;
                    p_r <= mx_r * mw_r;
                end
            assign p_2[22*k +: 22] = p_r;
            assign e_1[6*k +: 6] = e_r;
            assign {live_1[k], neg_1[k], nan_1[k], pinf_1[k], ninf_1[k]} = {live_r, neg_r, nan_r, pinf_r, ninf_r};
        end
    endgenerate
    reg nan_2, pinf_2, ninf_2;
    always @(posedge clk)
        if (en) begin
            nan_2 <= |nan_1;
            pinf_2 <= |pinf_1;
            ninf_2 <= |ninf_1;
        end

    // ---------------------------------------------------------------- exponent max tree
    wire [5:0] emax_t;                                     // at R(1 + TS)
    dfx_dot_maxtree #(.N(N)) u_max (.clk(clk), .en(en), .d(e_1), .q(emax_t));
    // the product and its fields wait for it
    wire [22*N-1:0] p_a;
    wire [6*N-1:0]  e_a;
    wire [N-1:0]    live_a, neg_a;
    wire [5:0]      emax_a;
    wire            nan_a, pinf_a, ninf_a;
    dfx_delay #(.W(22*N), .LAT(A0 - 2), .FF(1)) u_dp (.clk(clk), .en(en), .d(p_2), .q(p_a));
    dfx_delay #(.W(8*N), .LAT(A0 - 1), .FF(1)) u_de (.clk(clk), .en(en),
        .d({e_1, live_1, neg_1}), .q({e_a, live_a, neg_a}));
    dfx_delay #(.W(6), .LAT(A0 - 1 - TS), .FF(1)) u_dm (.clk(clk), .en(en), .d(emax_t), .q(emax_a));
    dfx_delay #(.W(3), .LAT(A0 - 2), .FF(1)) u_df (.clk(clk), .en(en),
        .d({nan_2, pinf_2, ninf_2}), .q({nan_a, pinf_a, ninf_a}));

    // ---------------------------------------------------------------- align, shift, sign
    wire [SW*N-1:0] v_n;
    generate
        for (k = 0; k < N; k = k + 1) begin : g_al
            wire [5:0] dk = emax_a - e_a[6*k +: 6];
            reg [21:0]   p_d;
            reg [4:0]    d_d;
            reg          z_d, neg_d, neg_s;
            reg [AW-1:0] a_s;
            reg [SW-1:0] v_r;
            always @(posedge clk)
                if (en) begin
                    p_d <= p_a[22*k +: 22];
                    d_d <= dk[4:0];
                    z_d <= !live_a[k] || (dk >= AW[5:0]);
                    neg_d <= neg_a[k];
                    a_s <= z_d ? {AW{1'b0}} : {p_d, {G{1'b0}}} >> d_d;
                    neg_s <= neg_d;
                    v_r <= neg_s ? -{1'b0, a_s} : {1'b0, a_s};
                end
            assign v_n[SW*k +: SW] = v_r;
        end
    endgenerate

    // ---------------------------------------------------------------- the sum tree
    dfx_dot_sumtree #(.N(N), .W(SW)) u_sum (.clk(clk), .en(en), .d(v_n), .q(t));
    dfx_delay #(.W(9), .LAT(3 + TS), .FF(1)) u_do (.clk(clk), .en(en),
        .d({emax_a, nan_a, pinf_a, ninf_a}), .q({emax, nan, pinf, ninf}));
endmodule

`default_nettype wire
