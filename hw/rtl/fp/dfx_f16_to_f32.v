// dfx FP core, combinational; rules in docs/hw.md, specification sim/numerics.py.
`default_nettype none

// FP16 bits -> FP32 bits, subnormal inputs flushed (nx.f32).
module dfx_f16_to_f32 (
    input  wire [15:0] a,
    output wire [31:0] y
);
    wire [4:0] e = a[14:10];
    wire [9:0] m = a[9:0];
    assign y = (e == 5'd0)  ? {a[15], 31'd0} :
               (e == 5'd31) ? {a[15], 8'hFF, m, 13'd0} :
                              {a[15], {3'b000, e} + 8'd112, m, 13'd0};
endmodule

`default_nettype wire
