// floor() of an FP32 value with |x| < 2^(IW-1) as an IW-bit signed integer (NaN/inf: caller's job).
`default_nettype none

module dfx_f32_floor #(
    parameter integer IW = 12
) (
    input  wire [31:0] x,
    output wire signed [IW-1:0] n
);
    wire [7:0]  e = x[30:23];
    wire [23:0] sig = {1'b1, x[22:0]};
    // shift = 150 - e for e in 127..150; smaller e: no integer part
    wire        has_int = (e >= 8'd127);
    wire [7:0]  sh = has_int ? (8'd150 - e) : 8'd0;
    wire [23:0] ip = has_int ? (sig >> sh[4:0]) : 24'd0;
    wire [23:0] back = ip << sh[4:0];
    wire        frac = (e != 8'd0) && (has_int ? (back != sig) : 1'b1);
    wire [IW-1:0] mag = ip[IW-1:0];
    assign n = x[31] ? -$signed(mag + {{(IW-1){1'b0}}, frac}) : $signed(mag);
    /* verilator lint_off UNUSEDSIGNAL */
    wire unused = &{1'b0, ip[23:IW], sh[7:5]};
    /* verilator lint_on UNUSEDSIGNAL */
endmodule

`default_nettype wire
