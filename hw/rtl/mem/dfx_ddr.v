// dfx DDR port: the DMA's reads and writes of the DDR space, on the core's one DDR AXI4 master.
//
// The DMA works in beats of the HBM port (PBITS); the DDR's beat (DBITS) may be narrower, by a
// power of two R = PBITS / DBITS. DMA beat b is DDR beats b*R .. b*R + R-1, DDR beat b*R + j in
// bits [DBITS*j +: DBITS] (byte k of the DMA beat is DDR byte b*PBITS/8 + k either way). Behind
// the width adapter sit the HBM engines with one channel: reads in INCR bursts (<= 16 beats,
// never across a 4 KB page), several in flight; strobed one-beat writes, several awaiting B.
//   read:  a request (first DMA beat, beat count) is one request of R times as many DDR beats;
//          R DDR beats are gathered into each DMA beat (d_last with the last one)
//   write: a DMA beat with its byte strobes is R DDR writes, one per part, each with its strobes
// With R = 1 the adapter is wires. rd_idle / wr_idle: nothing queued, every write has its B
// response; rd_err / wr_err: sticky RRESP / BRESP errors (cleared by err_clr).
`default_nettype none

module dfx_ddr #(
    parameter integer PBITS = 128,
    parameter integer DBITS = 128,
    parameter integer BA = 40
) (
    input  wire                 clk,
    input  wire                 rst,
    input  wire [63:0]          ptr,
    input  wire                 req_valid,
    output wire                 req_ready,
    input  wire [BA-1:0]        req_beat,
    input  wire [15:0]          req_n,
    output wire                 d_valid,
    input  wire                 d_ready,
    output wire [PBITS-1:0]     d_data,
    output wire                 d_last,
    input  wire                 w_valid,
    output wire                 w_ready,
    input  wire [BA-1:0]        w_beat,
    input  wire [PBITS-1:0]     w_data,
    input  wire [PBITS/8-1:0]   w_strb,
    output wire                 rd_err,
    output wire                 wr_err,
    input  wire                 err_clr,
    output wire                 rd_idle,
    output wire                 wr_idle,
    output wire                 m_arvalid,
    input  wire                 m_arready,
    output wire [63:0]          m_araddr,
    output wire [7:0]           m_arlen,
    input  wire                 m_rvalid,
    output wire                 m_rready,
    input  wire [DBITS-1:0]     m_rdata,
    input  wire [1:0]           m_rresp,
    output wire                 m_awvalid,
    input  wire                 m_awready,
    output wire [63:0]          m_awaddr,
    output wire                 m_wvalid,
    input  wire                 m_wready,
    output wire [DBITS-1:0]     m_wdata,
    output wire [DBITS/8-1:0]   m_wstrb,
    input  wire                 m_bvalid,
    output wire                 m_bready,
    input  wire [1:0]           m_bresp
);
    localparam integer R = PBITS / DBITS;
    localparam integer LR = $clog2(R);
    localparam integer DB = DBITS / 8;
    localparam integer LRR = (LR > 0) ? LR : 1;
    localparam [LRR-1:0] R_M1 = R[LRR-1:0] - 1'b1;
    generate
        if (R * DBITS != PBITS || (1 << LR) != R) begin : g_bad_width
            initial begin
                $display("dfx_ddr: the DDR beat (%0d bits) must be the HBM port (%0d bits) divided by a power of two",
                         DBITS, PBITS);
                $finish;
            end
        end
    endgenerate

    // ------------------------------------------------------------ reads
    wire e_valid, e_ready, e_last;
    wire [DBITS-1:0] e_data;
    wire e_tag_unused;
    dfx_hbm_rd #(.CH(1), .PBITS(DBITS), .BA(BA), .TW(1)) u_rd (
        .clk(clk), .rst(rst), .ptr(ptr),
        .req_valid(req_valid), .req_ready(req_ready), .req_beat(req_beat << LR), .req_n(req_n << LR),
        .req_tile(1'b0), .req_tag(1'b0),
        .d_valid(e_valid), .d_ready(e_ready), .d_data(e_data), .d_tag(e_tag_unused), .d_last(e_last),
        .err(rd_err), .err_clr(err_clr), .idle(rd_idle),
        .m_arvalid(m_arvalid), .m_arready(m_arready), .m_araddr(m_araddr), .m_arlen(m_arlen),
        .m_rvalid(m_rvalid), .m_rready(m_rready), .m_rdata(m_rdata), .m_rresp(m_rresp));
    assign d_last = e_last;

    // ------------------------------------------------------------ writes
    wire q_valid, q_ready, q_idle;
    wire [BA-1:0] q_beat;
    wire [DBITS-1:0] q_data;
    wire [DB-1:0] q_strb;
    dfx_hbm_wr #(.CH(1), .PBITS(DBITS), .BA(BA)) u_wr (
        .clk(clk), .rst(rst), .ptr(ptr),
        .w_valid(q_valid), .w_ready(q_ready), .w_beat(q_beat), .w_data(q_data), .w_strb(q_strb),
        .err(wr_err), .err_clr(err_clr), .idle(q_idle),
        .m_awvalid(m_awvalid), .m_awready(m_awready), .m_awaddr(m_awaddr),
        .m_wvalid(m_wvalid), .m_wready(m_wready), .m_wdata(m_wdata), .m_wstrb(m_wstrb),
        .m_bvalid(m_bvalid), .m_bready(m_bready), .m_bresp(m_bresp));

    generate
        if (R == 1) begin : g_same
            assign d_valid = e_valid;
            assign e_ready = d_ready;
            assign d_data = e_data;
            assign q_valid = w_valid;
            assign w_ready = q_ready;
            assign q_beat = w_beat;
            assign q_data = w_data;
            assign q_strb = w_strb;
            assign wr_idle = q_idle;
        end else begin : g_adapt
            // gather: the first R-1 DDR beats of a DMA beat wait in acc (the earliest lowest)
            reg [PBITS-DBITS-1:0] acc;
            reg [LR-1:0] k;
            wire last_part = (k == R_M1);
            wire [PBITS-1:0] acc_n = {e_data, acc} >> DBITS;     // acc shifted down, the new beat on top
            assign d_valid = e_valid && last_part;
            assign e_ready = !last_part || d_ready;
            assign d_data = {e_data, acc};
            always @(posedge clk) begin
                if (rst) k <= {LR{1'b0}};
                else if (e_valid && e_ready) k <= k + 1'b1;       // wraps to 0 after R-1
                if (e_valid && e_ready && !last_part) acc <= acc_n[PBITS-DBITS-1:0];
            end
            // split: the DMA beat waits in h until its R parts went to the write engine
            reg hv;
            reg [BA-1:0] hbeat;
            reg [PBITS-1:0] hdata;
            reg [PBITS/8-1:0] hstrb;
            reg [LR-1:0] j;
            assign w_ready = !hv;
            assign q_valid = hv;
            assign q_beat = {hbeat[BA-LR-1:0], j};
            assign q_data = hdata[DBITS*j +: DBITS];
            assign q_strb = hstrb[DB*j +: DB];
            assign wr_idle = q_idle && !hv;
            always @(posedge clk) begin
                if (rst) begin
                    hv <= 1'b0;
                    j <= {LR{1'b0}};
                end else if (!hv) begin
                    if (w_valid) begin
                        hv <= 1'b1;
                        hbeat <= w_beat;
                        hdata <= w_data;
                        hstrb <= w_strb;
                    end
                end else if (q_ready) begin
                    j <= j + 1'b1;
                    if (j == R_M1) hv <= 1'b0;
                end
            end
            // the top LR bits of a DMA beat address are past any DDR (checked before use); the
            // top DBITS bits of acc_n are zeros
            wire _unused_ok = &{1'b0, hbeat[BA-1:BA-LR], acc_n[PBITS-1:PBITS-DBITS], 1'b0};
        end
    endgenerate
    // bits no logic reads: the read engine's tag (one kind of request)
    wire _unused_ok = &{1'b0, e_tag_unused, 1'b0};
endmodule

`default_nettype wire
