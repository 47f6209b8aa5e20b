// The exponent max tree of dfx_dot_tile: N 6-bit values, two levels of compare-and-select per register
// stage (and a register after the last level): q = max, dfx_dot_tree_st(N) cycles later.
`default_nettype none

module dfx_dot_maxtree #(
    parameter integer N = 8
) (
    input  wire           clk,
    input  wire           en,
    input  wire [6*N-1:0] d,
    output wire [5:0]     q
);
    localparam integer LV = $clog2(N);
    // level l (0 = the inputs) has N >> l nodes at [6 * (2N - (2N >> l)) ...]
    wire [6*(2*N-1)-1:0] node /* verilator split_var */;
    assign node[0 +: 6*N] = d;
    genvar l, k;
    generate
        for (l = 1; l <= LV; l = l + 1) begin : g_lvl
            localparam integer IN = 2*N - (2*N >> (l - 1));
            localparam integer OUT = 2*N - (2*N >> l);
            for (k = 0; k < (N >> l); k = k + 1) begin : g_node
                wire [5:0] a = node[6*(IN + 2*k) +: 6];
                wire [5:0] b = node[6*(IN + 2*k + 1) +: 6];
                wire [5:0] y = (b > a) ? b : a;
                if (l % 2 == 0 || l == LV) begin : g_reg
                    reg [5:0] r;
                    always @(posedge clk)
                        if (en) r <= y;
                    assign node[6*(OUT + k) +: 6] = r;
                end else begin : g_wire
                    assign node[6*(OUT + k) +: 6] = y;
                end
            end
        end
    endgenerate
    assign q = node[6*(2*N-2) +: 6];
endmodule

`default_nettype wire
