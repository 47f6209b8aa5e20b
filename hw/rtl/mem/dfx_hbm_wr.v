// dfx HBM write engine: single flat beats with byte strobes, routed to their pseudo-channel.
//
// Each write names a flat beat (channel beat % CH, channel beat b / CH), the data and the byte
// strobes. Every channel has a small queue and its own AXI4 AW/W/B handshakes (one-beat bursts,
// several in flight). `idle` is high when every queued write has its B response, which is how a
// unit makes its writes visible before the next instruction reads them. A BRESP error sets the
// sticky `err`.
`default_nettype none

module dfx_hbm_wr #(
    parameter integer CH = 4,
    parameter integer PBITS = 128,
    parameter integer BA = 40,
    parameter integer QD = 4,        // queued writes per channel
    parameter integer OUT = 8        // writes awaiting B per channel
) (
    input  wire                 clk,
    input  wire                 rst,
    input  wire [64*CH-1:0]     ptr,
    input  wire                 w_valid,
    output wire                 w_ready,
    input  wire [BA-1:0]        w_beat,
    input  wire [PBITS-1:0]     w_data,
    input  wire [PBITS/8-1:0]   w_strb,
    output reg                  err,
    input  wire                 err_clr,
    output wire                 idle,
    output wire [CH-1:0]        m_awvalid,
    input  wire [CH-1:0]        m_awready,
    output wire [64*CH-1:0]     m_awaddr,
    output wire [CH-1:0]        m_wvalid,
    input  wire [CH-1:0]        m_wready,
    output wire [PBITS*CH-1:0]  m_wdata,
    output wire [PBITS/8*CH-1:0] m_wstrb,
    input  wire [CH-1:0]        m_bvalid,
    output wire [CH-1:0]        m_bready,
    input  wire [2*CH-1:0]      m_bresp
);
    localparam integer LCS = $clog2(CH);          // flat beat -> channel beat shift (one channel: 0)
    localparam integer LC = (CH > 1) ? LCS : 1;   // channel index bits
    localparam integer PB = PBITS / 8;
    localparam integer LPB = $clog2(PB);
    localparam integer OW = $clog2(OUT) + 1;
    localparam [OW-1:0] OUT_C = OUT[OW-1:0];
    wire [LC-1:0] wch = (CH > 1) ? w_beat[LC-1:0] : {LC{1'b0}};
    wire [CH-1:0] q_ready;
    wire [CH-1:0] ch_idle;
    wire [CH-1:0] berr;
    assign w_ready = q_ready[wch];
    genvar c;
    generate
        for (c = 0; c < CH; c = c + 1) begin : g_ch
            localparam [LC-1:0] CI = c;
            wire qv;
            wire [BA-LCS+PBITS+PB-1:0] qd;
            wire qpop;
            wire [$clog2(QD):0] q_n_unused;
            dfx_fifo #(.W(BA - LCS + PBITS + PB), .DEPTH(QD)) u_q (.clk(clk), .rst(rst),
                .in_valid(w_valid && wch == CI), .in_ready(q_ready[c]),
                .in_data({w_beat[BA-1:LCS], w_data, w_strb}),
                .out_valid(qv), .out_ready(qpop), .out_data(qd), .count(q_n_unused));
            reg aw_done;
            reg w_done;
            reg [OW-1:0] pend;
            wire room = pend < OUT_C;
            wire aw_fire = m_awvalid[c] && m_awready[c];
            wire w_fire = m_wvalid[c] && m_wready[c];
            assign m_awvalid[c] = qv && room && !aw_done;
            assign m_wvalid[c] = qv && room && !w_done;
            assign m_awaddr[64*c +: 64] = ptr[64*c +: 64] + ({{(64-BA+LCS){1'b0}}, qd[BA-LCS+PBITS+PB-1 -: BA-LCS]} << LPB);
            assign m_wdata[PBITS*c +: PBITS] = qd[PB +: PBITS];
            assign m_wstrb[PB*c +: PB] = qd[PB-1:0];
            assign qpop = qv && room && (aw_done || aw_fire) && (w_done || w_fire);
            assign m_bready[c] = 1'b1;
            wire b_fire = m_bvalid[c];
            always @(posedge clk) begin
                if (rst) begin
                    aw_done <= 1'b0;
                    w_done <= 1'b0;
                    pend <= {OW{1'b0}};
                end else begin
                    aw_done <= qpop ? 1'b0 : (aw_done || aw_fire);
                    w_done <= qpop ? 1'b0 : (w_done || w_fire);
                    pend <= pend + {{(OW-1){1'b0}}, qpop} - {{(OW-1){1'b0}}, b_fire};
                end
            end
            assign berr[c] = b_fire && m_bresp[2*c+1];
            assign ch_idle[c] = !qv && pend == {OW{1'b0}};
        end
    endgenerate
    always @(posedge clk)
        if (rst || err_clr) err <= 1'b0;
        else if (|berr) err <= 1'b1;
    assign idle = &ch_idle;
    // BRESP: bit 1 is set for SLVERR and DECERR, the errors; bit 0 (EXOKAY) is not one
    wire _unused_ok = &{1'b0, m_bresp, 1'b0};
endmodule

`default_nettype wire
