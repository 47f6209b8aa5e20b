// dfx FP core, combinational; rules in docs/hw.md, specification sim/numerics.py.
`default_nettype none

// nx.max16: NaN if either is NaN, else b if b > a, else a (original bits kept).
module dfx_max16_c (
    input  wire [15:0] a,
    input  wire [15:0] b,
    output wire [15:0] y
);
    wire signed [16:0] ka;
    wire signed [16:0] kb;
    dfx_key16 u_ka (.a(a), .k(ka));
    dfx_key16 u_kb (.a(b), .k(kb));
    wire nan = ((a[14:10] == 5'd31) && (a[9:0] != 10'd0)) || ((b[14:10] == 5'd31) && (b[9:0] != 10'd0));
    assign y = nan ? 16'h7E00 : ((kb > ka) ? b : a);
endmodule

`default_nettype wire
