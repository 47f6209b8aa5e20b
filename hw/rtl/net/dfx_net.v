// dfx router: send, recv and allgather over the two AXI4-Stream ring ports.
//
// Ring words (arch/kernel.py): RW FP16 payload words, then src [7:0], seq [23:8], check [31:24].
// A message is a header word (kind, rows, cols) and then, row by row, ceil(cols / RW) words
// (the last of a row zero padded); tlast marks its last word. Every word is numbered per link from
// 0 at each start and carries the XOR of its bytes, so the receiver detects a word that was dropped
// or repeated (seq), corrupted (check) or sent by the wrong core (src): a ring fault. A header that
// differs from the one the receiver expects is a sync mismatch; no word for RING_TIMEOUT cycles,
// or a sender blocked that long, is a ring timeout. Words wait in a receive FIFO of RXF words, so
// a core's send completes while its neighbour is busy (a send must fit there: the uneven-split
// gather sends before it receives).
//   send       TX: header + rows of v (stride vs)
//   recv       RX: checks the header, writes rows to v
//   allgather  copies the own slice to dst + core*cols, then ncores-1 steps of TX and RX at once:
//              step s sends the slice received in step s-1 (first: src) and receives the slice of
//              core (core - s) mod ncores into dst + that core * cols.
// Buffer access is shared (the core's port arbiter, docs/hw.md): TX reads words into a small FIFO
// (vr_req, words on vr_data the cycle after vr_gnt); a write waits in bw_* until vw_gnt.
`default_nettype none
`include "dfx_isa.vh"
`include "dfx_kernel.vh"

module dfx_net #(
    parameter integer NB = 8,
    parameter integer RW = 8,
    parameter integer AW = 24,
    parameter integer VBUF_WORDS = 1048576,
    parameter [63:0] HBM_CAP = 64'd1 << 30,
    parameter integer RXF = 1024,
    parameter integer RING_TIMEOUT = 100000
) (
    input  wire                clk,
    input  wire                rst,
    input  wire                run_start,      // a kernel run starts: sequence numbers from 0
    input  wire [7:0]          core_id,
    input  wire [7:0]          ncores,
    input  wire                start,
    input  wire [511:0]        ins,
    input  wire [31:0]         cnt0,
    input  wire [31:0]         cnt1,
    output reg                 busy,
    output reg                 done,
    output reg                 err,
    output reg  [7:0]          err_code,
    output reg  [31:0]         err_d1,
    output reg  [31:0]         err_d2,
    output wire                stall,
    output wire                vr_req,
    output wire [AW-1:0]       vr_addr,
    input  wire                vr_gnt,
    input  wire [16*NB-1:0]    vr_data,
    output reg                 bw_en,
    output reg  [AW-1:0]       bw_addr,
    output reg  [16*NB-1:0]    bw_data,
    output reg  [NB-1:0]       bw_mask,
    input  wire                vw_gnt,
    input  wire                s_tvalid,
    output wire                s_tready,
    input  wire [16*RW+31:0]   s_tdata,
    input  wire                s_tlast,
    output wire                m_tvalid,
    input  wire                m_tready,
    output wire [16*RW+31:0]   m_tdata,
    output wire                m_tlast
);
    `include "dfx_core_fn.vh"
    localparam integer RB = 16 * RW;

    function automatic [7:0] xor_bytes(input [RB-1:0] p, input [7:0] src, input [15:0] seq);
        integer k;
        begin
            xor_bytes = src ^ seq[7:0] ^ seq[15:8];
            for (k = 0; k < RB / 8; k = k + 1) xor_bytes = xor_bytes ^ p[8*k +: 8];
        end
    endfunction
    function automatic [RB-1:0] hdr_payload(input [15:0] kind, input [31:0] r, input [31:0] c);
        hdr_payload = {{(RB-80){1'b0}}, c, r, kind};
    endfunction

    reg [511:0] I;
    reg [5:0] op;
    reg [31:0] rows, cols;
    wire [23:0] n_v  = I[`DFX_NET_V_LSB +: 24];
    wire [15:0] n_vs = I[`DFX_NET_VS_LSB +: 16];
    wire [23:0] g_src = I[`DFX_GATHER_SRC_LSB +: 24];
    wire [15:0] g_ss  = I[`DFX_GATHER_SS_LSB +: 16];
    wire [23:0] g_dst = I[`DFX_GATHER_DST_LSB +: 24];
    wire [15:0] g_ds  = I[`DFX_GATHER_DS_LSB +: 16];
    wire [7:0] prev = (core_id == 8'd0) ? ncores - 8'd1 : core_id - 8'd1;

    reg [1:0] ck;
    always @* begin
        if (op == `DFX_OP_ALLGATHER) begin
            ck = vb_check({24'd0, g_src}, rows, cols, {16'd0, g_ss});
            if (ck == 2'b00) ck = vb_check({24'd0, g_dst}, rows, cols * ncores, {16'd0, g_ds});
        end else ck = vb_check({24'd0, n_v}, rows, cols, {16'd0, n_vs});
    end

    // ------------------------------------------------------------ TX engine
    reg        tx_go, tx_busy, tx_local, tx_hdr;
    reg [15:0] tx_kind;
    reg [47:0] tx_base, tx_dbase;
    reg [31:0] tx_stride, tx_dstride;
    reg [31:0] ti, tc;                     // the word sent next
    reg [31:0] qi, qc;                     // the word read next
    reg        q_more;                     // words left to read
    reg        t_pend;                     // a read was granted last cycle: its words are on vr_data
    reg [15:0] tx_seq;
    reg [31:0] tx_wait;
    wire wslot = !bw_en || vw_gnt;         // the write register is free next cycle
    localparam integer TQ = 4;             // words read ahead of the sender
    wire tf_v;
    wire [RB-1:0] tf_d;
    wire [$clog2(TQ):0] tf_n;
    wire [RB-1:0] t_pay;
    genvar l;
    generate
        for (l = 0; l < RW; l = l + 1) begin : g_tp
            assign t_pay[16*l +: 16] = (tc + l < cols) ? tf_d[16*l +: 16] : 16'd0;
        end
    endgenerate
    wire [RB-1:0] tx_pay = tx_hdr ? hdr_payload(tx_kind, rows, cols) : t_pay;
    wire t_last = !tx_hdr && (tc + RW >= cols) && (ti + 1 == rows);
    assign m_tvalid = tx_busy && !tx_local && (tx_hdr || tf_v);
    assign m_tdata = {xor_bytes(tx_pay, core_id, tx_seq), tx_seq, core_id, tx_pay};
    assign m_tlast = t_last;
    wire t_fire = tx_busy && (tx_hdr ? m_tready : (tf_v && (tx_local ? wslot : m_tready)));
    wire [31:0] tc_n = (tc + RW >= cols) ? 32'd0 : tc + RW;
    wire [31:0] ti_n = (tc + RW >= cols) ? ti + 1 : ti;
    wire [47:0] t_addr = tx_base + {16'd0, qi} * {16'd0, tx_stride} + {16'd0, qc};
    localparam integer LTQ = $clog2(TQ);
    localparam [LTQ+1:0] TQ_C = TQ[LTQ+1:0];
    wire [LTQ+1:0] t_occ = {1'b0, tf_n} + {{(LTQ+1){1'b0}}, t_pend};
    wire tq_in_ready_unused;                               // t_occ < TQ: the FIFO always has room
    assign vr_req = tx_busy && q_more && (t_occ < TQ_C);
    assign vr_addr = t_addr[AW-1:0];
    dfx_fifo #(.W(RB), .DEPTH(TQ)) u_tq (.clk(clk), .rst(rst || tx_go), .in_valid(t_pend), .in_ready(tq_in_ready_unused),
        .in_data(vr_data[RB-1:0]), .out_valid(tf_v), .out_ready(t_fire && !tx_hdr), .out_data(tf_d), .count(tf_n));
    wire [47:0] t_daddr = tx_dbase + {16'd0, ti} * {16'd0, tx_dstride} + {16'd0, tc};

    // ------------------------------------------------------------ RX engine
    wire f_v;
    wire [RB+32:0] f_d;
    wire [$clog2(RXF):0] rx_n_unused;
    wire f_pop;
    dfx_fifo #(.W(RB + 33), .DEPTH(RXF)) u_rx (.clk(clk), .rst(rst), .in_valid(s_tvalid), .in_ready(s_tready),
        .in_data({s_tlast, s_tdata}), .out_valid(f_v), .out_ready(f_pop), .out_data(f_d), .count(rx_n_unused));
    wire [RB-1:0] r_pay = f_d[RB-1:0];
    wire [7:0] r_src = f_d[RB +: 8];
    wire [15:0] r_seq = f_d[RB+8 +: 16];
    wire [7:0] r_chk = f_d[RB+24 +: 8];
    reg        rx_go, rx_busy, rx_hdr;
    reg [15:0] rx_kind;
    reg [47:0] rx_base;
    reg [31:0] rx_stride;
    reg [31:0] ri, rc;
    reg [15:0] rx_seq;
    reg [31:0] rx_wait;
    assign f_pop = rx_busy && f_v && (rx_hdr || bad_word != 8'd0 || wslot);
    wire [7:0] bad_word = (r_src != prev) ? 8'd1 : (r_seq != rx_seq) ? 8'd2 :
                          (r_chk != xor_bytes(r_pay, r_src, r_seq)) ? 8'd3 : 8'd0;
    wire [31:0] want_h = {rx_kind[7:0], rows[11:0], cols[11:0]};
    wire [31:0] got_h = {r_pay[7:0], r_pay[16 +: 12], r_pay[48 +: 12]};
    wire hdr_bad = (r_pay[15:0] != rx_kind) || (r_pay[47:16] != rows) || (r_pay[79:48] != cols);
    wire [16*NB-1:0] r_ext, t_ext;
    generate
        if (NB > RW) begin : g_ext
            assign r_ext = {{(16*NB-RB){1'b0}}, r_pay};
            assign t_ext = {{(16*NB-RB){1'b0}}, tf_d};
        end else begin : g_same
            assign r_ext = r_pay;
            assign t_ext = tf_d;
        end
    endgenerate
    wire [47:0] r_addr = rx_base + {16'd0, ri} * {16'd0, rx_stride} + {16'd0, rc};

    // ------------------------------------------------------------ sequencer
    localparam [2:0] S_IDLE = 0, S_CHECK = 1, S_STEP = 2, S_WAIT = 3, S_ERR = 4;
    reg [2:0] st;
    reg [7:0] step;
    reg fault;
    reg [7:0] f_code;
    reg [31:0] f_d1, f_d2;
    assign stall = (tx_busy && !t_fire) || (rx_busy && !f_v);
    wire [7:0] src_core = (core_id >= step) ? core_id - step : core_id + ncores - step;     // received in step
    wire [7:0] fwd_core = (core_id >= step - 8'd1) ? core_id - (step - 8'd1) : core_id + ncores - (step - 8'd1);

    always @(posedge clk) begin
        done <= 1'b0;
        err <= 1'b0;
        if (vw_gnt) bw_en <= 1'b0;
        tx_go <= 1'b0;
        rx_go <= 1'b0;
        t_pend <= vr_req && vr_gnt;
        if (vr_req && vr_gnt) begin
            if (qc + RW >= cols) begin
                qc <= 0;
                qi <= qi + 1;
                if (qi + 1 == rows) q_more <= 1'b0;
            end else qc <= qc + RW;
        end
        if (rst) begin
            st <= S_IDLE;
            busy <= 1'b0;
            bw_en <= 1'b0;
            tx_busy <= 1'b0;
            rx_busy <= 1'b0;
            q_more <= 1'b0;
            fault <= 1'b0;
            tx_seq <= 16'd0;
            rx_seq <= 16'd0;
        end else begin
            if (run_start) begin
                tx_seq <= 16'd0;
                rx_seq <= 16'd0;
            end
            // ---------------- TX
            if (tx_go) begin
                tx_busy <= 1'b1;
                ti <= 0;
                tc <= 0;
                qi <= 0;
                qc <= 0;
                q_more <= 1'b1;
                t_pend <= 1'b0;
                tx_hdr <= !tx_local;
                tx_wait <= 0;
            end else if (tx_busy) begin
                tx_wait <= (m_tvalid && !m_tready) ? tx_wait + 1 : 32'd0;     // blocked by the ring
                if (t_fire && !tx_local) tx_seq <= tx_seq + 1'b1;
                if (t_fire && tx_local) begin
                    bw_en <= 1'b1;
                    bw_addr <= t_daddr[AW-1:0];
                    bw_data <= t_ext;
                    bw_mask <= lanes_left(cols - tc);
                end
                if (t_fire) begin
                    if (tx_hdr) begin
                        tx_hdr <= 1'b0;
                    end else if (tc + RW >= cols && ti + 1 == rows) begin
                        tx_busy <= 1'b0;
                        q_more <= 1'b0;
                        ti <= 0;
                        tc <= 0;
                    end else begin
                        tc <= tc_n;
                        ti <= ti_n;
                    end
                end
                if (tx_wait > RING_TIMEOUT) begin
                    fault <= 1'b1;
                    f_code <= `DFX_ERR_RING_TIMEOUT;
                    f_d1 <= 32'd1;
                    f_d2 <= {24'd0, core_id};
                    tx_busy <= 1'b0;
                end
            end
            // ---------------- RX
            if (rx_go) begin
                rx_busy <= 1'b1;
                rx_hdr <= 1'b1;
                ri <= 0;
                rc <= 0;
                rx_wait <= 0;
            end else if (rx_busy) begin
                rx_wait <= f_v ? 32'd0 : rx_wait + 1;
                if (f_pop) begin
                    rx_seq <= rx_seq + 1'b1;
                    if (bad_word != 8'd0) begin
                        fault <= 1'b1;
                        f_code <= `DFX_ERR_RING_FAULT;
                        f_d1 <= {24'd0, bad_word};
                        f_d2 <= {24'd0, prev};
                        rx_busy <= 1'b0;
                    end else if (rx_hdr) begin
                        rx_hdr <= 1'b0;
                        if (hdr_bad) begin
                            fault <= 1'b1;
                            f_code <= `DFX_ERR_SYNC_MISMATCH;
                            f_d1 <= got_h;
                            f_d2 <= want_h;
                            rx_busy <= 1'b0;
                        end
                    end else begin
                        bw_en <= 1'b1;
                        bw_addr <= r_addr[AW-1:0];
                        bw_data <= r_ext;
                        bw_mask <= lanes_left(cols - rc);
                        if (rc + RW >= cols) begin
                            rc <= 0;
                            ri <= ri + 1;
                            if (ri + 1 == rows) rx_busy <= 1'b0;
                        end else rc <= rc + RW;
                    end
                end
                if (rx_wait > RING_TIMEOUT) begin
                    fault <= 1'b1;
                    f_code <= `DFX_ERR_RING_TIMEOUT;
                    f_d1 <= 32'd0;
                    f_d2 <= {24'd0, prev};
                    rx_busy <= 1'b0;
                end
            end
            // ---------------- sequencer
            case (st)
                S_IDLE: if (start) begin
                    I <= ins;
                    op <= ins[5:0];
                    rows <= cnt0;
                    cols <= cnt1;
                    busy <= 1'b1;
                    fault <= 1'b0;
                    st <= S_CHECK;
                end
                S_CHECK: begin
                    step <= 8'd0;
                    if (ck != 2'b00) begin
                        err_code <= (ck == 2'b01) ? `DFX_ERR_ILLEGAL_INSTRUCTION : `DFX_ERR_ADDRESS;
                        err_d1 <= 0;
                        err_d2 <= 0;
                        st <= S_ERR;
                    end else if (rows == 0 || cols == 0) begin
                        busy <= 1'b0;
                        done <= 1'b1;
                        st <= S_IDLE;
                    end else st <= S_STEP;
                end
                S_STEP: begin                       // start the engines for this instruction / step
                    st <= S_WAIT;
                    if (op == `DFX_OP_SEND) begin
                        tx_go <= 1'b1; tx_local <= 1'b0; tx_kind <= `DFX_RING_KIND_SEND;
                        tx_base <= {24'd0, n_v}; tx_stride <= {16'd0, n_vs};
                    end else if (op == `DFX_OP_RECV) begin
                        rx_go <= 1'b1; rx_kind <= `DFX_RING_KIND_SEND;
                        rx_base <= {24'd0, n_v}; rx_stride <= {16'd0, n_vs};
                    end else if (step == 8'd0) begin    // allgather: own slice into place
                        tx_go <= 1'b1; tx_local <= 1'b1;
                        tx_base <= {24'd0, g_src}; tx_stride <= {16'd0, g_ss};
                        tx_dbase <= {24'd0, g_dst} + {16'd0, core_id} * cols; tx_dstride <= {16'd0, g_ds};
                    end else begin
                        tx_go <= 1'b1; tx_local <= 1'b0; tx_kind <= `DFX_RING_KIND_ALLGATHER;
                        if (step == 8'd1) begin
                            tx_base <= {24'd0, g_src}; tx_stride <= {16'd0, g_ss};
                        end else begin
                            tx_base <= {24'd0, g_dst} + {16'd0, fwd_core} * cols; tx_stride <= {16'd0, g_ds};
                        end
                        rx_go <= 1'b1; rx_kind <= `DFX_RING_KIND_ALLGATHER;
                        rx_base <= {24'd0, g_dst} + {16'd0, src_core} * cols; rx_stride <= {16'd0, g_ds};
                    end
                end
                S_WAIT: if (fault) begin             // stop both engines
                    tx_busy <= 1'b0;
                    rx_busy <= 1'b0;
                    q_more <= 1'b0;
                    ti <= 0;
                    tc <= 0;
                    err_code <= f_code;
                    err_d1 <= f_d1;
                    err_d2 <= f_d2;
                    st <= S_ERR;
                end else if (!tx_go && !rx_go && !tx_busy && !rx_busy && !bw_en) begin
                    if (op == `DFX_OP_ALLGATHER && step + 1 < ncores) begin
                        step <= step + 1;
                        st <= S_STEP;
                    end else begin
                        busy <= 1'b0;
                        done <= 1'b1;
                        st <= S_IDLE;
                    end
                end
                S_ERR: begin
                    busy <= 1'b0;
                    err <= 1'b1;
                    st <= S_IDLE;
                end
                default: st <= S_IDLE;
            endcase
        end
    end

    function automatic [NB-1:0] lanes_left(input [31:0] n);
        integer k;
        begin
            lanes_left = {NB{1'b0}};
            for (k = 0; k < RW; k = k + 1) lanes_left[k] = (k < n);
        end
    endfunction
    // bits no logic reads: instruction bits of other formats, TLAST (every word stands alone),
    // buffer addresses past AW bits (checked before the transfer starts), buffer words past one
    // ring word (a ring word may be narrower than a buffer access: u280's 30 words against 64)
    wire _unused_ok = &{1'b0, I, f_d[RB+32], t_addr[47:AW], t_daddr[47:AW], r_addr[47:AW], vr_data, 1'b0};
endmodule

`default_nettype wire
