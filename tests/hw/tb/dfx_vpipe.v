// Valid/ready control of a fixed-latency pipeline that stalls as a whole:
// en = !out_valid || out_ready; the input is ready whenever the pipeline moves.
// Valid bits travel through LAT stages (reset to empty); data delay lines use `en`.
`default_nettype none

module dfx_vpipe #(
    parameter integer LAT = 1
) (
    input  wire clk,
    input  wire rst,
    input  wire in_valid,
    output wire in_ready,
    output wire out_valid,
    input  wire out_ready,
    output wire en
);
    reg [LAT-1:0] v;
    assign out_valid = v[LAT-1];
    assign en = !out_valid || out_ready;
    assign in_ready = en;
    generate
        if (LAT == 1) begin : g_one
            always @(posedge clk)
                if (rst) v <= 1'b0;
                else if (en) v <= in_valid;
        end else begin : g_many
            always @(posedge clk)
                if (rst) v <= {LAT{1'b0}};
                else if (en) v <= {v[LAT-2:0], in_valid};
        end
    endgenerate
endmodule

`default_nettype wire
