// The matrix unit's tail, pipelined for 200 MHz: one group of L lane results (FP16, masked) in,
// the output register out, with the row maximum (nx.chunked_max over the row's groups) and the
// first argmax (nx.argmax16: NaN reads as -inf, ties keep the lower index) on the row's last
// group. One tree serves both: max16 keeps the left operand on ties and compares +-0 and
// flushed subnormals equal, as the keys do, so without a NaN the row maximum is the argmax's
// value (its bits too); with a NaN anywhere in the row it is 0x7E00. Lanes with a clear `lanes` bit
// (columns >= N) read as -inf. Latency 2 + log2(L) enabled edges: a register stage for the
// lanes' values and keys, one per tree level, then the running row state and the output
// registers. o_v follows v with the same latency (reset clears it). L >= 2.
`default_nettype none

module dfx_mpu_tail #(
    parameter integer L = 4
) (
    input  wire            clk,
    input  wire            rst,
    input  wire            en,
    input  wire            v,
    input  wire            last,
    input  wire            row_last,
    input  wire [31:0]     col0,
    input  wire [L-1:0]    lanes,
    input  wire [16*L-1:0] y,
    output reg             o_v,
    output reg             o_last,
    output reg  [16*L-1:0] o_y,
    output reg  [31:0]     o_col0,
    output reg             o_row_last,
    output reg  [15:0]     o_rowmax,
    output reg  [31:0]     o_argmax,
    output reg  [15:0]     o_argval
);
    localparam integer TL = $clog2(L);
    localparam integer NN = 2 * L - 1;                  // tree nodes: level l at (2L - 2L/2^l) + k
    localparam integer IW = (TL > 0) ? TL : 1;          // a lane index

    // ---------------------------------------------------------------- T0: values and keys
    wire               nn [0:NN-1];                      // a NaN below this node
    wire [15:0]        ak [0:NN-1];                      // argmax tree: key, value, lane
    wire [15:0]        av [0:NN-1];
    wire [IW-1:0]      ai [0:NN-1];
    genvar j, l, k;
    generate
        for (j = 0; j < L; j = j + 1) begin : g_in
            wire [15:0] rv = lanes[j] ? y[16*j +: 16] : 16'hFC00;
            // an ordered key without a carry chain: {!s, mag} for s = 0, {0, ~mag} for s = 1, and
            // one key for +-0 and the subnormals (flushed: dfx_key16's order)
            wire [14:0] mag = (rv[14:10] == 5'd0) ? 15'd0 : rv[14:0];
            wire [15:0] kr = (mag == 15'd0) ? 16'h8000 : rv[15] ? {1'b0, ~mag} : {1'b1, mag};
            wire nan = (rv[14:10] == 5'd31) && (rv[9:0] != 10'd0);
            reg [15:0] rv_r;
            reg [15:0] k_r;
            reg n_r;
            always @(posedge clk)
                if (en) begin
                    rv_r <= rv;
                    k_r <= nan ? 16'h03FF : kr;             // NaN: the key of -inf
                    n_r <= nan;
                end
            assign nn[j] = n_r;
            assign ak[j] = k_r;
            assign av[j] = rv_r;
            localparam integer LI = j;
            assign ai[j] = LI[IW-1:0];
        end
        // ------------------------------------------------------------ one tree level per stage
        for (l = 1; l <= TL; l = l + 1) begin : g_lvl
            localparam integer IN = 2*L - (2*L >> (l - 1));
            localparam integer OUT = 2*L - (2*L >> l);
            for (k = 0; k < (L >> l); k = k + 1) begin : g_node
                wire right = ak[IN + 2*k + 1] > ak[IN + 2*k];   // ties keep the lower lane
                reg [15:0] v_r;
                reg [15:0] k_r;
                reg [IW-1:0] i_r;
                reg n_r;
                always @(posedge clk)
                    if (en) begin
                        n_r <= nn[IN + 2*k] | nn[IN + 2*k + 1];
                        k_r <= right ? ak[IN + 2*k + 1] : ak[IN + 2*k];
                        v_r <= right ? av[IN + 2*k + 1] : av[IN + 2*k];
                        i_r <= right ? ai[IN + 2*k + 1] : ai[IN + 2*k];
                    end
                assign nn[OUT + k] = n_r;
                assign ak[OUT + k] = k_r;
                assign av[OUT + k] = v_r;
                assign ai[OUT + k] = i_r;
            end
        end
    endgenerate

    // ---------------------------------------------------------------- the beat beside the trees
    localparam integer SW = 16 * L + 32 + 2;
    wire [SW-1:0] sb;
    dfx_delay #(.W(SW), .LAT(1 + TL)) u_sb (.clk(clk), .en(en), .d({y, col0, last, row_last}), .q(sb));
    wire [16*L-1:0] y_t = sb[SW-1 -: 16*L];
    wire [31:0] col0_t = sb[33:2];
    wire last_t = sb[1];
    wire row_last_t = sb[0];
    reg  [TL:0] vs;                                      // v at the stages 1 .. 1 + TL
    always @(posedge clk)
        if (rst) vs <= {(TL+1){1'b0}};
        else if (en) vs <= {vs[TL-1:0], v};
    wire v_t = vs[TL];

    // ---------------------------------------------------------------- running row state, outputs
    wire b_nan = nn[NN-1];
    wire [15:0] ab_k = ak[NN-1];
    wire [15:0] ab_v = av[NN-1];
    wire [31:0] ab_i = col0_t + {{(32-IW){1'b0}}, ai[NN-1]};
    reg         run_v;
    reg         run_nan;
    reg  [15:0] run_av;
    reg  [31:0] run_ai;
    reg  [15:0] run_ak;
    wire take = !run_v || (ab_k > run_ak);
    wire r_nan = b_nan || (run_v && run_nan);           // the row so far holds a NaN
    wire [15:0] r_av = take ? ab_v : run_av;
    wire fire = en && v_t && last_t;
    always @(posedge clk) begin
        if (rst)
            run_v <= 1'b0;
        else if (fire)
            run_v <= !row_last_t;
        if (fire) begin
            run_nan <= r_nan;
            if (take) begin
                run_av <= ab_v;
                run_ai <= ab_i;
                run_ak <= ab_k;
            end
        end
        if (rst) o_v <= 1'b0;
        else if (en) o_v <= v_t;
        if (en) begin
            o_last <= last_t;
            o_y <= y_t;
            o_col0 <= col0_t;
            o_row_last <= row_last_t;
            o_rowmax <= r_nan ? 16'h7E00 : r_av;
            o_argval <= r_av;
            o_argmax <= take ? ab_i : run_ai;
        end
    end
endmodule

`default_nettype wire
