// A W-bit delay line of LAT register stages that advance together when `en` is high.
// LAT = 0 is a wire. Every dfx pipeline stalls as a whole on one enable (docs/hw.md).
`default_nettype none

module dfx_delay #(
    parameter integer W = 1,
    parameter integer LAT = 1
) (
    input  wire         clk,
    input  wire         en,
    input  wire [W-1:0] d,
    output wire [W-1:0] q
);
    generate
        if (LAT == 0) begin : g_wire
            assign q = d;
            wire _unused_ok = &{1'b0, clk, en};
        end else begin : g_regs
            reg [W-1:0] r [0:LAT-1];
            integer i;
            always @(posedge clk)
                if (en) begin
                    r[0] <= d;
                    for (i = 1; i < LAT; i = i + 1)
                        r[i] <= r[i-1];
                end
            assign q = r[LAT-1];
        end
    endgenerate
endmodule

`default_nettype wire
