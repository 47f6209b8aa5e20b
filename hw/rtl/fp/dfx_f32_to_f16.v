// dfx FP core, combinational; rules in docs/hw.md, specification sim/numerics.py.
`default_nettype none

// FP32 bits -> FP16 bits (nx.rne16).
module dfx_f32_to_f16 (
    input  wire [31:0] a,
    output reg  [15:0] y
);
    wire       s = a[31];
    wire [7:0] e = a[30:23];
    wire [22:0] m = a[22:0];
    /* verilator lint_off UNUSEDSIGNAL */
    wire [23:0] mr = {1'b0, m} + 24'h000FFF + {23'd0, m[13]};  // [12:0] rounded away
    /* verilator lint_on UNUSEDSIGNAL */
    wire [8:0] e2 = {1'b0, e} + {8'd0, mr[23]};
    wire signed [10:0] eh = $signed({2'b00, e2}) - 11'sd112;
    always @* begin
        if (e == 8'hFF)
            y = (m != 23'd0) ? 16'h7E00 : {s, 15'h7C00};
        else if (eh <= 11'sd0)
            y = {s, 15'd0};
        else if (eh >= 11'sd31)
            y = {s, 15'h7C00};
        else
            y = {s, eh[4:0], mr[22:13]};
    end
endmodule

`default_nettype wire
