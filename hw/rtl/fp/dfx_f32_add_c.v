// dfx FP core, combinational; rules in docs/hw.md, specification sim/numerics.py.
`default_nettype none

// FP32 + FP32, IEEE round to nearest even (subnormals flushed, see above).
// One datapath, written for LUT count (the core has 1,600 of these adders: docs/hw.md): order by
// magnitude, align the smaller operand (sticky from a compare mask; a flushed zero adds 0), one
// adder for add and subtract, a normalising shifter that counts leading zeros as it shifts,
// round. tests/hw/test_rtl.py proves it equal, for every input pair, to the plain reference
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
    wire [25:0] sh = far ? 26'd0 : (fx >> d);
    reg  [25:2] lost;
    integer i;
    always @* for (i = 2; i < 26; i = i + 1) lost[i] = fx[i] & (far || (d > i[4:0]));
    wire [26:0] ms = {sh, |lost};
    wire [26:0] mg = {1'b1, fg, 3'b000};
    // one adder: mg + ms, or mg - ms as mg + ~ms + 1 (mg >= ms, so no sign)
    wire [27:0] sum = {1'b0, mg} + ({1'b0, ms} ^ {28{sub}}) + {27'd0, sub};
    // normalise: shift left until bit 27 is set, counting the shift (sum != 0 here)
    wire        z4 = ~|sum[27:12];
    wire [27:0] n4 = z4 ? {sum[11:0], 16'd0} : sum;
    wire        z3 = ~|n4[27:20];
    wire [27:0] n3 = z3 ? {n4[19:0], 8'd0} : n4;
    wire        z2 = ~|n3[27:24];
    wire [27:0] n2 = z2 ? {n3[23:0], 4'd0} : n3;
    wire        z1 = ~|n2[27:26];
    wire [27:0] n1 = z1 ? {n2[25:0], 2'd0} : n2;
    wire        z0 = ~n1[27];
    wire [27:0] n0 = z0 ? {n1[26:0], 1'b0} : n1;
    wire [4:0]  lz = {z4, z3, z2, z1, z0};
    // round to nearest even on guard, round and sticky bits
    wire [23:0] m = n0[27:4];
    wire        up = n0[3] & (n0[2] | n0[1] | n0[0] | n0[4]);
    wire [24:0] rnd = {1'b0, m} + {24'd0, up};
    wire        _unused_ok = rnd[23];            // rnd[24] set: rnd = 2^24, so bits 22:0 are the fraction
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
