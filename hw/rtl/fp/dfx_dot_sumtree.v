// The sum tree of dfx_dot_tile: N signed W-bit values, neighbours first (exact, so the order is
// only the hardware's), two levels of adds per register stage (and a register after the last):
// q = the sum (W + log2 N bits), dfx_dot_tree_st(N) cycles later. Level l's nodes are W + l bits.
`default_nettype none

module dfx_dot_sumtree #(
    parameter integer N = 8,
    parameter integer W = 31
) (
    input  wire                       clk,
    input  wire                       en,
    input  wire [W*N-1:0]             d,
    output wire [W+$clog2(N)-1:0]     q
);
    localparam integer LV = $clog2(N);
    localparam integer QW = W + LV;
    // node k of level l lives at index (2N - 2N/2^l) + k, sign-extended to QW bits (level l
    // uses its low W + l)
    wire [QW-1:0] node [0:2*N-2];
    genvar l, k;
    generate
        for (k = 0; k < N; k = k + 1) begin : g_in
            assign node[k] = {{LV{d[W*k + W - 1]}}, d[W*k +: W]};
        end
        for (l = 1; l <= LV; l = l + 1) begin : g_lvl
            localparam integer IW = W + l - 1;
            localparam integer IN = 2*N - (2*N >> (l - 1));
            localparam integer OUT = 2*N - (2*N >> l);
            for (k = 0; k < (N >> l); k = k + 1) begin : g_node
                wire [QW-1:0] na = node[IN + 2*k];
                wire [QW-1:0] nb = node[IN + 2*k + 1];
                wire signed [IW:0] y = $signed(na[IW-1:0]) + $signed(nb[IW-1:0]);
                wire [QW-1:0] ye;
                if (IW + 1 < QW) begin : g_ext
                    assign ye = {{(QW-IW-1){y[IW]}}, y};
                end else begin : g_full
                    assign ye = y;
                end
                if (l % 2 == 0 || l == LV) begin : g_reg
                    reg [QW-1:0] r;
                    always @(posedge clk)
                        if (en) r <= ye;
                    assign node[OUT + k] = r;
                end else begin : g_wire
                    assign node[OUT + k] = ye;
                end
                /* verilator lint_off UNUSEDSIGNAL */
                wire unused = &{1'b0, na[QW-1:IW], nb[QW-1:IW]};
                /* verilator lint_on UNUSEDSIGNAL */
            end
        end
    endgenerate
    assign q = node[2*N-2];
endmodule

`default_nettype wire
