// FP16 x FP16 -> exact FP32 product (the MPU multiplier).
// Streaming valid/ready wrapper around the pipelined unit (dfx_f16_mul_p, latency LAT, at least
// its minimum); one result per cycle; the whole pipeline stalls under backpressure.
`default_nettype none

module dfx_fp16_mul #(
    parameter integer LAT = 3
) (
    input  wire        clk,
    input  wire        rst,
    input  wire        in_valid,
    output wire        in_ready,
    input  wire [15:0] in_a,
    input  wire [15:0] in_b,
    output wire        out_valid,
    input  wire        out_ready,
    output wire [31:0] out_y
);
    wire en;
    dfx_vpipe #(.LAT(LAT)) u_v (.clk(clk), .rst(rst), .in_valid(in_valid), .in_ready(in_ready),
                                .out_valid(out_valid), .out_ready(out_ready), .en(en));
    dfx_f16_mul_p #(.LAT(LAT)) u_p (.clk(clk), .en(en), .a(in_a), .b(in_b), .y(out_y));
endmodule

`default_nettype wire
