// Neighbour FP32 adder tree (nx.tree_sum): level 1 adds 0+1, 2+3, ...; then pairs of
// those. N is a power of two >= 2; latency log2(N) * LAT, one sum per cycle, advanced by en.
`default_nettype none

module dfx_add_tree #(
    parameter integer N = 8,
    parameter integer LAT = 7
) (
    input  wire            clk,
    input  wire            en,
    input  wire [32*N-1:0] d,
    output wire [31:0]     q
);
    localparam integer LEVELS = $clog2(N);
    // node k of level l lives at index (2N - 2N/2^l) + k in this flat array
    wire [31:0] node [0:2*N-2];
    genvar l, k;
    generate
        for (k = 0; k < N; k = k + 1) begin : g_in
            assign node[k] = d[32*k +: 32];
        end
        for (l = 0; l < LEVELS; l = l + 1) begin : g_lvl
            for (k = 0; k < (N >> (l + 1)); k = k + 1) begin : g_add
                dfx_f32_add_p #(.LAT(LAT)) u_add (
                    .clk(clk), .en(en),
                    .a(node[(2*N - (2*N >> l)) + 2*k]),
                    .b(node[(2*N - (2*N >> l)) + 2*k + 1]),
                    .y(node[(2*N - (2*N >> (l + 1))) + k]));
            end
        end
    endgenerate
    assign q = node[2*N-2];
endmodule

`default_nettype wire
