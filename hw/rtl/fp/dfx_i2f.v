// An IW-bit signed integer (|n| < 2^24) -> the exact FP32 value (0 -> +0).
`default_nettype none

module dfx_i2f #(
    parameter integer IW = 12
) (
    input  wire signed [IW-1:0] n,
    output reg  [31:0] y
);
    wire [IW-1:0] mag = n[IW-1] ? -n : n;
    integer p;
    reg  [IW-1:0] norm;
    integer k;
    always @* begin
        p = 0;
        for (k = 0; k < IW; k = k + 1)
            if (mag[k]) p = k;
        norm = mag << (IW - 1 - p);   // leading one at IW-1
        if (mag == {IW{1'b0}})
            y = 32'd0;
        else
            y = {n[IW-1], 8'd127 + p[7:0], norm[IW-2:0], {(24 - IW){1'b0}}};
    end
    /* verilator lint_off UNUSEDSIGNAL */
    wire unused = &{1'b0, norm[IW-1], p[31:8]};
    /* verilator lint_on UNUSEDSIGNAL */
endmodule

`default_nettype wire
