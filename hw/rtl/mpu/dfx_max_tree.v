// Neighbour tree of nx.max16 comparators (the max trees of nx.chunked_max), combinational.
`default_nettype none

module dfx_max_tree #(
    parameter integer N = 8
) (
    input  wire [16*N-1:0] d,
    output wire [15:0]     q
);
    localparam integer LEVELS = $clog2(N);
    wire [15:0] node [0:2*N-2];
    genvar l, k;
    generate
        for (k = 0; k < N; k = k + 1) begin : g_in
            assign node[k] = d[16*k +: 16];
        end
        for (l = 0; l < LEVELS; l = l + 1) begin : g_lvl
            for (k = 0; k < (N >> (l + 1)); k = k + 1) begin : g_max
                dfx_max16_c u_max (
                    .a(node[(2*N - (2*N >> l)) + 2*k]),
                    .b(node[(2*N - (2*N >> l)) + 2*k + 1]),
                    .y(node[(2*N - (2*N >> (l + 1))) + k]));
            end
        end
    endgenerate
    assign q = node[2*N-2];
endmodule

`default_nettype wire
