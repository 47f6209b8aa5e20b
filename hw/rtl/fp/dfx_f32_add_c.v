// dfx FP core, combinational; rules in docs/hw.md, specification sim/numerics.py.
`default_nettype none

// FP32 + FP32, IEEE round to nearest even (subnormals flushed, see above).
// One datapath, written for LUT count (u280-dfx has 1,360 of these adders: docs/hw.md): order by
// magnitude, align the smaller operand, one adder for add and subtract, normalise, round. Both
// shifts take their last 0..15 places as a product with a one-hot power of two, which synthesis
// puts in a DSP48E2 (26 x 16 bits: one DSP each) instead of LUT multiplexers, as DFX's adders use
// 2 DSPs each; the first 16 places stay a LUT multiplexer. tests/hw/test_rtl.py proves it equal, for every input pair, to the plain reference
// tests/hw/tb/dfx_f32_add_ref.v (Yosys SAT).
module dfx_f32_add_c (
    input  wire [31:0] a,
    input  wire [31:0] b,
    output reg  [31:0] y
);
    wire [7:0] ea = a[30:23];
    wire [7:0] eb = b[30:23];
    wire a_top = &ea;
    wire b_top = &eb;
    wire a_fz = ~|a[22:0];
    wire b_fz = ~|b[22:0];
    // order by magnitude: g (greater) >= s (smaller)
    wire swap = b[30:0] > a[30:0];
    wire [7:0]  eg = swap ? eb : ea;
    wire [7:0]  es = swap ? ea : eb;
    wire [22:0] fg = swap ? b[22:0] : a[22:0];
    wire [22:0] fs = swap ? a[22:0] : b[22:0];
    wire        sg = swap ? b[31] : a[31];
    wire        sub = a[31] ^ b[31];
    // align: {1, fs, 00} >> d; sticky = a one shifted out (d >= 26: all of it)
    wire [7:0]  d8 = eg - es;
    wire        far = (|d8[7:5]) || (d8[4:0] > 5'd25);
    wire [4:0]  d = d8[4:0];
    wire        hs = |es;                         // a zero (flushed) smaller operand adds 0
    wire [25:0] fx = {hs, fs & {23{hs}}, 2'b00};
    // d = 16 d[4] + d[3:0]: 16 places in LUTs, then fx * 2^(15 - d[3:0]) >> 15 in one DSP; the
    // sticky bit is any one shifted out by either (d >= 26: all of fx, that is hs)
    wire [25:0] fc = d[4] ? {16'd0, fx[25:16]} : fx;
    wire        sc = d[4] & (|fx[15:2]);
    wire [15:0] oa = 16'h8000 >> d[3:0];
    wire [41:0] pa = {16'd0, fc} * {26'd0, oa};
    wire [25:0] sh = far ? 26'd0 : pa[40:15];
    wire        stk = far ? hs : (sc | (|pa[14:0]));
    wire [26:0] ms = {sh, stk};
    wire [26:0] mg = {1'b1, fg, 3'b000};
    // one adder: mg + ms, or mg - ms as mg + ~ms + 1 (mg >= ms, so no sign)
    wire [27:0] sum = {1'b0, mg} + ({1'b0, ms} ^ {28{sub}}) + {27'd0, sub};
    // normalise: shift left until bit 27 is set, counting the shift (sum != 0 here). 16 places in
    // LUTs, then n4's leading one in [27:12] (bit 27 - lzf, lzf <= 15) as a one-hot on = 2^lzf,
    // and n4 * on in one DSP. n4[1:0] stay outside the product: they are nonzero only when the
    // aligned operand kept a sticky bit (d >= 2), and then the sum has a one in [27:25], so
    // lzf <= 2 (the SAT proof in tests/hw/test_synth.py covers this with every other case)
    wire        z4 = ~|sum[27:12];
    wire [27:0] n4 = z4 ? {sum[11:0], 16'd0} : sum;
    wire [15:0] t;                               // t[k] = n4[27 - k]: the leading one is t's lowest one
    genvar g;
    generate
        for (g = 0; g < 16; g = g + 1) begin : g_rev
            assign t[g] = n4[27 - g];
        end
    endgenerate
    wire [15:0] on = t & (~t + 16'd1);
    wire [3:0]  lzf = {|(on & 16'hFF00), |(on & 16'hF0F0), |(on & 16'hCCCC), |(on & 16'hAAAA)};
    wire [41:0] pn = {16'd0, n4[27:2]} * {26'd0, on};
    wire [3:0]  lo = (lzf[3:2] == 2'd0) ? ({2'b00, n4[1:0]} << lzf[1:0]) : 4'd0;
    wire [27:0] n0 = {pn[25:0], 2'b00} | {24'd0, lo};
    wire [4:0]  lz = {z4, lzf};
    // round to nearest even on guard, round and sticky bits
    wire [23:0] m = n0[27:4];
    wire        up = n0[3] & (n0[2] | n0[1] | n0[0] | n0[4]);
    wire [24:0] rnd = {1'b0, m} + {24'd0, up};
    wire        _unused_ok = &{1'b1, rnd[23], pa[41], pn[41:26]}; // rnd[24] set: rnd = 2^24, so bits 22:0 are the fraction;
                                                 // the products' top bits are shifted out
    wire signed [9:0] ef = $signed({2'b00, eg}) + 10'sd1 - $signed({5'd0, lz}) + $signed({9'd0, rnd[24]});
    wire nan = (a_top && !a_fz) || (b_top && !b_fz) || (a_top && b_top && sub);
    always @* begin
        if (nan)
            y = 32'h7FC00000;
        else if (sum == 28'd0 || eg == 8'd0)
            y = {a[31] & b[31], 31'd0};      // x + (-x) = +0, -0 + -0 = -0 (zeros add as 0)
        else if (&eg || ef >= 10'sd255)
            y = {sg, 8'hFF, 23'd0};          // infinity in, or overflow
        else if (ef <= 10'sd0)
            y = {sg, 31'd0};                 // flush (cannot occur in the dfx datapath)
        else
            y = {sg, ef[7:0], rnd[22:0]};    // rnd[24] set: rnd = 2^24, fraction 0 either way
    end
endmodule

`default_nettype wire
