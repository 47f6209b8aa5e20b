// dfx FP core, combinational; rules in docs/hw.md, specification sim/numerics.py.
`default_nettype none

// FP32 x FP32, IEEE round to nearest even (subnormals flushed, see above).
module dfx_f32_mul_c (
    input  wire [31:0] a,
    input  wire [31:0] b,
    output reg  [31:0] y
);
    wire       s = a[31] ^ b[31];
    wire [7:0] ea = a[30:23];
    wire [7:0] eb = b[30:23];
    wire a_nan = (ea == 8'hFF) && (a[22:0] != 23'd0);
    wire b_nan = (eb == 8'hFF) && (b[22:0] != 23'd0);
    wire a_inf = (ea == 8'hFF) && (a[22:0] == 23'd0);
    wire b_inf = (eb == 8'hFF) && (b[22:0] == 23'd0);
    wire a_zero = (ea == 8'd0);
    wire b_zero = (eb == 8'd0);
    wire [47:0] p = {1'b1, a[22:0]} * {1'b1, b[22:0]};
    // normalised significand with guard and sticky: 24 bits + g + s
    wire [25:0] q = p[47] ? {p[47:23], |p[22:0]} : {p[46:22], |p[21:0]};
    wire signed [10:0] e0 = $signed({3'b000, ea}) + $signed({3'b000, eb}) - 11'sd127 + (p[47] ? 11'sd1 : 11'sd0);
    wire [24:0] rnd = {1'b0, q[25:2]} + {24'd0, q[1] & (q[0] | q[2])};
    wire signed [10:0] ef = rnd[24] ? e0 + 11'sd1 : e0;
    always @* begin
        if (a_nan || b_nan || (a_inf && b_zero) || (b_inf && a_zero))
            y = 32'h7FC00000;
        else if (a_inf || b_inf)
            y = {s, 8'hFF, 23'd0};
        else if (a_zero || b_zero)
            y = {s, 31'd0};
        else if (ef >= 11'sd255)
            y = {s, 8'hFF, 23'd0};
        else if (ef <= 11'sd0)
            y = {s, 31'd0};                  // flush (cannot occur in the dfx datapath)
        else
            y = {s, ef[7:0], rnd[24] ? rnd[23:1] : rnd[22:0]};
    end
endmodule

`default_nettype wire
