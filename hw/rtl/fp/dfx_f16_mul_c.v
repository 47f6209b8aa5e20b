// dfx FP core, combinational; rules in docs/hw.md, specification sim/numerics.py.
`default_nettype none

// FP16 x FP16 -> exact FP32 product (11 x 11-bit significands), inputs flushed.
module dfx_f16_mul_c (
    input  wire [15:0] a,
    input  wire [15:0] b,
    output reg  [31:0] y
);
    wire       s = a[15] ^ b[15];
    wire [4:0] ea = a[14:10];
    wire [4:0] eb = b[14:10];
    wire a_nan = (ea == 5'd31) && (a[9:0] != 10'd0);
    wire b_nan = (eb == 5'd31) && (b[9:0] != 10'd0);
    wire a_inf = (ea == 5'd31) && (a[9:0] == 10'd0);
    wire b_inf = (eb == 5'd31) && (b[9:0] == 10'd0);
    wire a_zero = (ea == 5'd0);
    wire b_zero = (eb == 5'd0);
    wire [21:0] p = {1'b1, a[9:0]} * {1'b1, b[9:0]};
    // unbiased ea-15 + eb-15, FP32 bias 127: ea + eb + 97 (+1 when the product is >= 2)
    wire [7:0] eres = {3'b000, ea} + {3'b000, eb} + 8'd97 + {7'd0, p[21]};
    wire [22:0] mres = p[21] ? {p[20:0], 2'b00} : {p[19:0], 3'b000};
    always @* begin
        if (a_nan || b_nan || (a_inf && b_zero) || (b_inf && a_zero))
            y = 32'h7FC00000;
        else if (a_inf || b_inf)
            y = {s, 8'hFF, 23'd0};
        else if (a_zero || b_zero)
            y = {s, 31'd0};
        else
            y = {s, eres, mres};
    end
endmodule

`default_nettype wire
