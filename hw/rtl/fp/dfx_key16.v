// dfx FP core, combinational; rules in docs/hw.md, specification sim/numerics.py.
`default_nettype none

// Ordered key of an FP16 value for comparisons (subnormals flushed, +0 == -0).
// Only meaningful for non-NaN values.
module dfx_key16 (
    input  wire [15:0] a,
    output wire signed [16:0] k
);
    wire [14:0] mag = (a[14:10] == 5'd0) ? 15'd0 : a[14:0];
    assign k = a[15] ? -$signed({2'b00, mag}) : $signed({2'b00, mag});
endmodule

`default_nettype wire
