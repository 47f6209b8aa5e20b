// FP32 mul (dfx_f32_mul_c) followed by LAT register stages, advanced by en.
`default_nettype none

module dfx_f32_mul_p #(
    parameter integer LAT = 1
) (
    input  wire        clk,
    input  wire        en,
    input  wire [31:0] a,
    input  wire [31:0] b,
    output wire [31:0] y
);
    wire [31:0] y0;
    dfx_f32_mul_c u_c (.a(a), .b(b), .y(y0));
    dfx_delay #(.W(32), .LAT(LAT), .FF(1)) u_d (.clk(clk), .en(en), .d(y0), .q(y));
endmodule

`default_nettype wire
