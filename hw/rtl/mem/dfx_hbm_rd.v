// dfx HBM read engine: reads of contiguous flat ranges, striped over the pseudo-channels.
//
// The ISA's flat HBM space is interleaved at the port width: flat beat b lives on channel b % CH
// at channel beat b / CH (dfx.sim.memory.channel_of). A request names a flat range (first beat,
// beat count) and a tag. It is split into one contiguous range per channel, which each channel's
// AXI4 master reads in INCR bursts (at most MAXB beats, never across a 4 KB page), several bursts
// in flight, into its own read FIFO. A burst is issued only when its FIFO has room for it, so the
// R channels never stall. The merger hands the data back in flat order, tagged:
//   beat mode: one beat per cycle in d_data[PBITS-1:0];
//   tile mode (the range starts on channel 0 and spans whole stripes): one beat of every channel
//   per cycle, channel c in d_data[PBITS*c +: PBITS]: a whole MPU weight tile per cycle.
// Requests are served in order; an RRESP error sets the sticky `err` (data still flows).
`default_nettype none

module dfx_hbm_rd #(
    parameter integer CH = 4,
    parameter integer PBITS = 128,
    parameter integer BA = 40,       // flat beat address bits
    parameter integer MAXB = 16,     // beats per burst
    parameter integer RFD = 64,      // read FIFO depth per channel (beats)
    parameter integer TW = 2,        // tag bits
    parameter integer QD = 4         // queued requests
) (
    input  wire                 clk,
    input  wire                 rst,
    input  wire [64*CH-1:0]     ptr,
    input  wire                 req_valid,
    output wire                 req_ready,
    input  wire [BA-1:0]        req_beat,
    input  wire [15:0]          req_n,
    input  wire                 req_tile,
    input  wire [TW-1:0]        req_tag,
    output wire                 d_valid,
    input  wire                 d_ready,
    output wire [CH*PBITS-1:0]  d_data,
    output wire [TW-1:0]        d_tag,
    output wire                 d_last,
    output reg                  err,
    input  wire                 err_clr,
    output wire                 idle,
    output wire [CH-1:0]        m_arvalid,
    input  wire [CH-1:0]        m_arready,
    output wire [64*CH-1:0]     m_araddr,
    output wire [8*CH-1:0]      m_arlen,
    input  wire [CH-1:0]        m_rvalid,
    output wire [CH-1:0]        m_rready,
    input  wire [PBITS*CH-1:0]  m_rdata,
    input  wire [2*CH-1:0]      m_rresp
);
    localparam integer LCS = $clog2(CH);                        // shift of a flat beat to its channel beat
    localparam integer LC = (CH > 1) ? LCS : 1;                 // channel index bits (one channel: 1)
    localparam integer PB = PBITS / 8;
    localparam integer LPB = $clog2(PB);
    localparam integer PGB = (4096 / PB > 0) ? 4096 / PB : 1;   // beats per 4 KB page
    localparam integer LPG = (PGB > 1) ? $clog2(PGB) : 1;
    localparam integer FC = $clog2(RFD) + 1;
    localparam integer MW = LC + 16 + 1 + TW;                   // merge queue entry
    localparam [16:0] CH_M1 = CH[16:0] - 17'd1;
    localparam [16:0] MAXB_C = MAXB[16:0];
    localparam [16:0] RFD_C = RFD[16:0];

    // ------------------------------------------------------------ request split
    wire [CH-1:0] cq_ready;
    wire mq_ready;
    assign req_ready = (&cq_ready) && mq_ready;
    wire acc = req_valid && req_ready;
    wire [LC-1:0] r0 = (CH > 1) ? req_beat[LC-1:0] : {LC{1'b0}};
    wire [BA-1:0] q0 = req_beat >> LCS;

    wire mq_valid;
    wire [$clog2(QD):0] mq_n_unused;
    wire [MW-1:0] mq_data;
    wire mq_pop;
    dfx_fifo #(.W(MW), .DEPTH(QD)) u_mq (.clk(clk), .rst(rst), .in_valid(acc), .in_ready(mq_ready),
        .in_data({r0, req_n, req_tile, req_tag}), .out_valid(mq_valid), .out_ready(mq_pop),
        .out_data(mq_data), .count(mq_n_unused));

    wire [CH-1:0] fifo_valid;
    wire [CH-1:0] fifo_pop;
    wire [PBITS*CH-1:0] fifo_data;
    wire [CH-1:0] fifo_err;
    wire [CH-1:0] ch_idle;

    genvar c;
    generate
        for (c = 0; c < CH; c = c + 1) begin : g_ch
            localparam [LC-1:0] CI = c;
            // channel c's part of the range: flat beats b0 + off, b0 + off + CH, ...
            wire [LC-1:0] off = CI - r0;
            wire [16:0] nn = {1'b0, req_n};
            wire [16:0] cnt = (nn > {{(17-LC){1'b0}}, off}) ? ((nn - {{(17-LC){1'b0}}, off}) + CH_M1) >> LCS : 17'd0;
            wire [LC:0] cr = {1'b0, CI} - {1'b0, r0};        // borrow: CI < r0
            wire [BA-1:0] cb = q0 + {{(BA-1){1'b0}}, cr[LC]};
            wire cq_v;
            wire [$clog2(QD):0] cq_n_unused;
            wire [BA+16:0] cq_d;
            wire cq_pop;
            dfx_fifo #(.W(BA + 17), .DEPTH(QD)) u_cq (.clk(clk), .rst(rst),
                .in_valid(acc && cnt != 17'd0), .in_ready(cq_ready[c]), .in_data({cb, cnt}),
                .out_valid(cq_v), .out_ready(cq_pop), .out_data(cq_d), .count(cq_n_unused));
            // burst issue
            reg  [BA-1:0] cur;
            reg  [16:0] left;
            reg  busy;
            reg  [FC-1:0] reserved;                     // beats asked for and not yet popped
            wire [LPG:0] to_page = PGB[LPG:0] - {1'b0, cur[LPG-1:0]};
            wire [16:0] l1 = (left < MAXB_C) ? left : MAXB_C;
            wire [16:0] len = (PGB == 1) ? 17'd1 : ((l1 > {{(16-LPG){1'b0}}, to_page}) ? {{(16-LPG){1'b0}}, to_page} : l1);
            wire room = ({{(17-FC){1'b0}}, reserved} + len) <= RFD_C;
            reg  arv;
            reg  [63:0] araddr;
            reg  [7:0] arlen;
            assign m_arvalid[c] = arv;
            assign m_araddr[64*c +: 64] = araddr;
            assign m_arlen[8*c +: 8] = arlen;
            assign cq_pop = !busy && cq_v && !rst;
            wire issue = busy && !arv && room;
            wire popped = fifo_pop[c];
            always @(posedge clk) begin
                if (rst) begin
                    busy <= 1'b0;
                    arv <= 1'b0;
                    reserved <= {FC{1'b0}};
                end else begin
                    if (cq_pop) begin
                        busy <= 1'b1;
                        cur <= cq_d[BA+16:17];
                        left <= cq_d[16:0];
                    end
                    if (arv && m_arready[c]) arv <= 1'b0;
                    if (issue) begin
                        arv <= 1'b1;
                        araddr <= ptr[64*c +: 64] + ({{(64-BA){1'b0}}, cur} << LPB);
                        arlen <= len[7:0] - 8'd1;
                        cur <= cur + {{(BA-17){1'b0}}, len};
                        left <= left - len;
                        if (left == len) busy <= 1'b0;
                    end
                    reserved <= reserved + (issue ? len[FC-1:0] : {FC{1'b0}}) - {{(FC-1){1'b0}}, popped};
                end
            end
            // read data FIFO (never full: bursts are issued against free room)
            wire [PBITS:0] fd;
            wire [$clog2(RFD):0] rf_n_unused;
            dfx_fifo #(.W(PBITS + 1), .DEPTH(RFD)) u_rf (.clk(clk), .rst(rst),
                .in_valid(m_rvalid[c]), .in_ready(m_rready[c]),
                .in_data({m_rresp[2*c+1], m_rdata[PBITS*c +: PBITS]}),
                .out_valid(fifo_valid[c]), .out_ready(fifo_pop[c]), .out_data(fd), .count(rf_n_unused));
            assign fifo_data[PBITS*c +: PBITS] = fd[PBITS-1:0];
            assign fifo_err[c] = fd[PBITS] && fifo_pop[c];
            assign ch_idle[c] = !busy && !cq_v && !arv && (reserved == {FC{1'b0}});
        end
    endgenerate

    // ------------------------------------------------------------ merge in flat order
    wire [LC-1:0] m_r0 = mq_data[MW-1 -: LC];
    wire [15:0] m_n = mq_data[TW+16 -: 16];
    wire m_tile = mq_data[TW];
    assign d_tag = mq_data[TW-1:0];
    reg  [15:0] m_i;
    reg  [LC-1:0] m_ch;
    reg  m_started;
    wire [LC-1:0] ch_now = m_started ? m_ch : m_r0;
    wire [15:0] step = m_tile ? CH[15:0] : 16'd1;
    assign d_valid = mq_valid && (m_tile ? (&fifo_valid) : fifo_valid[ch_now]);
    wire fire = d_valid && d_ready;
    assign d_last = (m_i + step >= m_n);
    assign mq_pop = fire && d_last;
    generate
        for (c = 0; c < CH; c = c + 1) begin : g_pop
            localparam [LC-1:0] CI = c;
            assign fifo_pop[c] = fire && (m_tile || ch_now == CI);
        end
    endgenerate
    reg [CH*PBITS-1:0] beat_ext;
    always @* begin
        beat_ext = 0;
        beat_ext[PBITS-1:0] = fifo_data[PBITS*ch_now +: PBITS];
    end
    assign d_data = m_tile ? fifo_data : beat_ext;
    always @(posedge clk) begin
        if (rst) begin
            m_i <= 16'd0;
            m_started <= 1'b0;
            err <= 1'b0;
        end else begin
            if (fire) begin
                m_i <= d_last ? 16'd0 : m_i + step;
                m_started <= !d_last;
                m_ch <= (CH > 1) ? ch_now + 1'b1 : {LC{1'b0}};
            end
            if (err_clr) err <= 1'b0;
            else if (|fifo_err) err <= 1'b1;
        end
    end
    assign idle = (&ch_idle) && !mq_valid;
    // RRESP: bit 1 is set for SLVERR and DECERR, the errors; bit 0 (EXOKAY) is not one
    wire _unused_ok = &{1'b0, m_rresp, 1'b0};
endmodule

`default_nettype wire
