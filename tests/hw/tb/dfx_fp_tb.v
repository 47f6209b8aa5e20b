// Test wrapper: the five streaming FP primitives side by side, one build for all.
`default_nettype none

module dfx_fp_tb #(
    parameter integer MUL_LAT = 4,     // at least the multipliers' minimum (dfx_f32_mul_p 4, dfx_f16_mul_p 3)
    parameter integer ADD_LAT = 6      // at least the adder's minimum (dfx_f32_add_p 6)
) (
    input  wire clk,
    input  wire rst,
    input  wire m16_in_valid,
    output wire m16_in_ready,
    input  wire [15:0] m16_in_a,
    input  wire [15:0] m16_in_b,
    output wire m16_out_valid,
    input  wire m16_out_ready,
    output wire [31:0] m16_out_y,
    input  wire add_in_valid,
    output wire add_in_ready,
    input  wire [31:0] add_in_a,
    input  wire [31:0] add_in_b,
    output wire add_out_valid,
    input  wire add_out_ready,
    output wire [31:0] add_out_y,
    input  wire mul_in_valid,
    output wire mul_in_ready,
    input  wire [31:0] mul_in_a,
    input  wire [31:0] mul_in_b,
    output wire mul_out_valid,
    input  wire mul_out_ready,
    output wire [31:0] mul_out_y,
    input  wire h2f_in_valid,
    output wire h2f_in_ready,
    input  wire [15:0] h2f_in_a,
    output wire h2f_out_valid,
    input  wire h2f_out_ready,
    output wire [31:0] h2f_out_y,
    input  wire f2h_in_valid,
    output wire f2h_in_ready,
    input  wire [31:0] f2h_in_a,
    output wire f2h_out_valid,
    input  wire f2h_out_ready,
    output wire [15:0] f2h_out_y
);
    dfx_fp16_mul #(.LAT(MUL_LAT)) u_m16 (.clk(clk), .rst(rst), .in_valid(m16_in_valid), .in_ready(m16_in_ready),
        .in_a(m16_in_a), .in_b(m16_in_b), .out_valid(m16_out_valid), .out_ready(m16_out_ready), .out_y(m16_out_y));
    dfx_fp32_add #(.LAT(ADD_LAT)) u_add (.clk(clk), .rst(rst), .in_valid(add_in_valid), .in_ready(add_in_ready),
        .in_a(add_in_a), .in_b(add_in_b), .out_valid(add_out_valid), .out_ready(add_out_ready), .out_y(add_out_y));
    dfx_fp32_mul #(.LAT(MUL_LAT)) u_mul (.clk(clk), .rst(rst), .in_valid(mul_in_valid), .in_ready(mul_in_ready),
        .in_a(mul_in_a), .in_b(mul_in_b), .out_valid(mul_out_valid), .out_ready(mul_out_ready), .out_y(mul_out_y));
    dfx_fp16_to_fp32 #(.LAT(1)) u_h2f (.clk(clk), .rst(rst), .in_valid(h2f_in_valid), .in_ready(h2f_in_ready),
        .in_a(h2f_in_a), .out_valid(h2f_out_valid), .out_ready(h2f_out_ready), .out_y(h2f_out_y));
    dfx_fp32_to_fp16 #(.LAT(1)) u_f2h (.clk(clk), .rst(rst), .in_valid(f2h_in_valid), .in_ready(f2h_in_ready),
        .in_a(f2h_in_a), .out_valid(f2h_out_valid), .out_ready(f2h_out_ready), .out_y(f2h_out_y));
endmodule

`default_nettype wire
