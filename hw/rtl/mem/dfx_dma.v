// dfx DMA unit: load, store, embed and kvstore between external memory and the on-chip buffer.
//
// Every instruction is cut into rows: a contiguous run of FP16 words at a memory byte address
// and a buffer word address. A row is read as one range of the HBM read engine (beat mode) and
// each arriving beat is one masked write of the buffer; a stored row is one buffer read per beat
// and one strobed write to the HBM write engine. Rows by instruction:
//   load/store  row i: mem base + i*ms (base = m + r[mreg]*mregs), buffer v + i*vs, cols words
//   embed       row i: the int32 id at ids + 4i (checked against limit), then mem m + id*ms
//   kvstore     K (tr=0): per batch b, token row i and W-aligned group of head dims, one run of
//               W words in the cache's tile layout; V (tr=1): one word per head dim (the
//               transpose: a token's values land in W-word lanes of different tiles), not cut
//               into rows but streamed: one buffer read and one strobed one-word write per cycle
//               (S_VT), each write carrying its own beat and lane through the store FIFO
// Memory: load, store and embed's table rows are in the space the instruction names (HBM or,
// where the core has one, DDR: mem_ddr routes the requests and writes there); embed's ids and
// kvstore are in HBM. Addresses are checked against the size of the space they are in.
// Checks (before anything moves, in the simulator's order) give the simulator's error types.
// The unit finishes when its last write has its B response, so later reads see it.
// Buffer access is shared (the core's port arbiter, docs/hw.md): a read is asked for with vr_req
// and its words arrive on vr_data the cycle after vr_gnt; a write waits in bw_* until vw_gnt.
`default_nettype none
`include "dfx_isa.vh"
`include "dfx_kernel.vh"

module dfx_dma #(
    parameter integer LANES = 4,
    parameter integer WIDTH = 8,
    parameter integer NB = 8,
    parameter integer PBITS = 128,
    parameter integer BA = 40,
    parameter integer AW = 24,
    parameter integer VBUF_WORDS = 1048576,
    parameter [63:0] HBM_CAP = 64'd1 << 30,
    parameter integer HAS_DDR = 0,
    parameter [63:0] DDR_CAP = 64'd1 << 30
) (
    input  wire                clk,
    input  wire                rst,
    input  wire                start,
    input  wire [511:0]        ins,
    input  wire [31:0]         cnt0,
    input  wire [31:0]         cnt1,
    input  wire [511:0]        regs,
    output reg                 busy,
    output reg                 done,
    output reg                 err,
    output reg  [7:0]          err_code,
    output reg  [31:0]         err_d1,
    output reg  [31:0]         err_d2,
    output wire                stall,
    output wire                mem_ddr,      // the memory requests and writes of now go to the DDR
    // buffer
    output wire                vr_req,
    output wire [AW-1:0]       vr_addr,
    input  wire                vr_gnt,
    input  wire [16*NB-1:0]    vr_data,
    output reg                 bw_en,
    output reg  [AW-1:0]       bw_addr,
    output reg  [16*NB-1:0]    bw_data,
    output reg  [NB-1:0]       bw_mask,
    input  wire                vw_gnt,
    // HBM read engine (beat mode)
    output reg                 rq_valid,
    input  wire                rq_ready,
    output reg  [BA-1:0]       rq_beat,
    output reg  [15:0]         rq_n,
    input  wire                rd_valid,
    output wire                rd_ready,
    input  wire [PBITS-1:0]    rd_data,
    input  wire                rd_last,
    // HBM write engine
    output wire                wq_valid,
    input  wire                wq_ready,
    output wire [BA-1:0]       wq_beat,
    output wire [PBITS-1:0]    wq_data,
    output wire [PBITS/8-1:0]  wq_strb,
    input  wire                wr_idle
);
    `include "dfx_core_fn.vh"
    localparam integer PB = PBITS / 8;
    localparam integer PW = PBITS / 16;          // FP16 words per beat
    localparam integer LPB = $clog2(PB);
    localparam integer LPW = $clog2(PW);
    localparam integer LL = $clog2(LANES);
    localparam integer LW = $clog2(WIDTH);
    localparam integer TW = LANES * WIDTH;       // words per tile
    localparam integer LTB = $clog2(TW * 2);     // log2 tile bytes

    localparam [3:0] S_IDLE = 0, S_CHECK = 1, S_ROW = 2, S_IDREQ = 3, S_IDWAIT = 4, S_GO = 5,
                     S_LOAD = 6, S_STORE = 7, S_NEXT = 8, S_DRAIN = 9, S_ERR = 10,
                     S_VT = 11, S_VEND = 12;
    reg [3:0] st;
    reg [5:0] op;
    reg [511:0] I;
    reg [31:0] rows, cols;

    // fields (mem / embed / kv formats)
    wire [1:0]  f_space = I[`DFX_MEM_SPACE_LSB +: 2];
    wire [23:0] f_v     = I[`DFX_MEM_V_LSB +: 24];
    wire [15:0] f_vs    = I[`DFX_MEM_VS_LSB +: 16];
    wire [39:0] f_m     = I[`DFX_MEM_M_LSB +: 40];
    wire [31:0] f_ms    = I[`DFX_MEM_MS_LSB +: 32];
    wire [3:0]  f_mreg  = I[`DFX_MEM_MREG_LSB +: 4];
    wire [31:0] f_mregs = I[`DFX_MEM_MREGS_LSB +: 32];
    wire [39:0] e_ids   = I[`DFX_EMBED_IDS_LSB +: 40];
    wire [23:0] e_limit = I[`DFX_EMBED_LIMIT_LSB +: 24];
    wire        k_tr    = I[`DFX_KV_TR_LSB];
    wire [7:0]  k_batch = I[`DFX_KV_BATCH_LSB +: 8];
    wire [23:0] k_v     = I[`DFX_KV_V_LSB +: 24];
    wire [15:0] k_vs    = I[`DFX_KV_VS_LSB +: 16];
    wire [15:0] k_vbs   = I[`DFX_KV_VBS_LSB +: 16];
    wire [39:0] k_m     = I[`DFX_KV_M_LSB +: 40];
    wire [15:0] k_wn    = I[`DFX_KV_WN_LSB +: 16];
    wire [31:0] k_mbs   = I[`DFX_KV_MBS_LSB +: 32];
    wire [3:0]  k_preg  = I[`DFX_KV_PREG_LSB +: 4];
    wire is_load = (op == `DFX_OP_LOAD);
    wire is_store = (op == `DFX_OP_STORE);
    wire is_embed = (op == `DFX_OP_EMBED);
    wire is_kv = (op == `DFX_OP_KVSTORE);
    wire sp_ddr = (f_space == 2'd1) && !is_kv;         // load / store / embed rows: the DDR space
    wire no_ddr = sp_ddr && (HAS_DDR == 0);            // ... on a core without one: illegal
    wire [63:0] cap = sp_ddr ? DDR_CAP : HBM_CAP;       // size of the space of the rows
    assign mem_ddr = sp_ddr && (HAS_DDR != 0) && st != S_IDREQ && st != S_IDWAIT;

    function automatic [31:0] reg_of(input [3:0] r);
        reg_of = regs[32*r +: 32];
    endfunction
    // sign-extend helpers
    function automatic [63:0] sx32(input [31:0] v);
        sx32 = {{32{v[31]}}, v};
    endfunction

    wire [63:0] base = {24'd0, f_m} + sx32(reg_of(f_mreg)) * sx32(f_mregs);      // load/store
    wire [31:0] kbatch = (k_batch == 8'd0) ? 32'd1 : {24'd0, k_batch};
    wire [31:0] preg0 = reg_of(k_preg);

    // ------------------------------------------------------------ loop state
    reg [31:0] i;          // row (token)
    reg [31:0] b;          // batch (kvstore)
    reg [31:0] c;          // column group start (kvstore)
    reg [63:0] ma;         // row memory byte address
    reg [31:0] nw;         // row words
    reg [47:0] va;         // row buffer word address
    reg [BA-1:0] beatN, bj;
    wire [31:0] p = preg0 + i;
    wire [31:0] kmax_k = cols - 32'd1;
    wire [31:0] kmax_v = preg0 + rows - 32'd1;

    // kvstore row address (tile layout of dfx.arch.layout)
    wire [63:0] kv_head = {24'd0, k_m} + ({32'd0, b} * {32'd0, k_mbs} << LTB);
    localparam [31:0] LM = LANES - 1;
    localparam [31:0] WM = WIDTH - 1;
    wire [31:0] p_lo = p & LM;
    wire [31:0] p_wlo = p & WM;
    wire [31:0] c_lo = c & LM;
    wire [63:0] kv_k_words = (({32'd0, p >> LL} * {48'd0, k_wn} + {32'd0, c >> LW}) * TW)
                             + {32'd0, p_lo} * WIDTH;
    wire [63:0] kv_v_words = (({32'd0, c >> LL} * {48'd0, k_wn} + {32'd0, p >> LW}) * TW)
                             + {32'd0, c_lo} * WIDTH + {32'd0, p_wlo};
    wire [31:0] kv_left = cols - c;
    wire [47:0] kv_va = {24'd0, k_v} + {16'd0, b} * {32'd0, k_vbs} + {16'd0, i} * {32'd0, k_vs} + {16'd0, c};
    // the transposed word (b, i, c) of S_VT: its memory word vt_mw (beat and lane) and the buffer
    // read address whose lane vt_mw[LPW-1:0] is buffer word kv_va (as beat_va does for a row)
    wire [63:0] vt_ma = kv_head + (kv_v_words << 1);
    wire [63:0] vt_mw = {1'b0, vt_ma[63:1]};
    wire [AW-1:0] vt_raddr = kv_va[AW-1:0] - {{(AW-LPW){1'b0}}, vt_mw[LPW-1:0]};
    wire vt_bad = vt_ma[0] || mem_bad(vt_ma, 64'd2, HBM_CAP);
    reg v_bad;             // S_VT met a bad address: S_VEND ends in S_ERR
    reg [BA+LPW-1:0] s_tag;    // the granted word's memory word address (beat, lane)

    // checks
    reg [1:0] ck;
    reg [7:0] ck_code;
    always @* begin
        ck = 2'b00;
        ck_code = `DFX_ERR_ADDRESS;
        if (no_ddr && !is_embed) ck = 2'b01;                              // no DDR on this core
        else if (is_load || is_store) begin
            if (rows != 0 && cols != 0) begin
                if (is_store) ck = vb_check({24'd0, f_v}, rows, cols, {16'd0, f_vs});
                if (ck == 2'b00 && (base[0] || f_ms[0])) ck = 2'b10;
                if (ck == 2'b00 && mem_bad(base, ({32'd0, rows} - 64'd1) * {32'd0, f_ms} + {31'd0, cols, 1'b0}, cap)) ck = 2'b10;
                if (ck == 2'b00 && is_load) ck = vb_check({24'd0, f_v}, rows, cols, {16'd0, f_vs});
            end
        end else if (is_embed) begin
            if (e_ids[1:0] != 2'd0) ck = 2'b01;
            else if (hbm_bad({24'd0, e_ids}, {30'd0, rows, 2'b00})) ck = 2'b10;
            else if (no_ddr) ck = 2'b01;                  // the simulator reads the ids first
            else ck = vb_check({24'd0, f_v}, rows, cols, {16'd0, f_vs});
        end else if (is_kv) begin
            if (rows != 0 && cols != 0) begin
                ck = vb_check({24'd0, k_v}, rows, cols, {16'd0, k_vs});
                if (ck == 2'b00)
                    ck = vb_check({24'd0, k_v} + ({16'd0, kbatch} - 48'd1) * {32'd0, k_vbs}, rows, cols, {16'd0, k_vs});
                if (ck == 2'b00 && k_m[LTB-1:0] != {LTB{1'b0}}) ck = 2'b01;
                if (ck == 2'b00 && ((k_tr ? kmax_v : kmax_k) >= ({16'd0, k_wn} << LW))) ck = 2'b10;
            end
        end
    end

    // ------------------------------------------------------------ beat datapath
    wire [47:0] ofs = va - ma[48:1];                          // buffer address of memory word 0
    wire [63:0] mw0 = {1'b0, ma[63:1]};                       // first word of the row
    wire [63:0] mw1 = mw0 + {32'd0, nw};                      // one past the last
    // These functions read nothing but their arguments: a simulator may evaluate `assign x = f(a)`
    // again only when a changes (Icarus 11 does), so a function reading a module signal (the row's
    // mw0, mw1 or ofs) would leave a stale value on a continuous assignment.
    function automatic [NB-1:0] lane_mask(input [BA-1:0] beat, input [63:0] w0, input [63:0] w1);
        integer l;
        reg [63:0] w;
        begin
            lane_mask = {NB{1'b0}};
            for (l = 0; l < PW; l = l + 1) begin
                w = ({{(64-BA){1'b0}}, beat} << LPW) + {32'd0, l};
                lane_mask[l] = (w >= w0) && (w < w1);
            end
        end
    endfunction
    function automatic [AW-1:0] beat_va(input [AW-1:0] beat, input [AW-1:0] o);   // low AW bits of the beat
        beat_va = o + (beat << LPW);          // modulo 2^AW, as the buffer wraps
    endfunction

    // the ids of embed: the 4-byte id of row i, its beat and its byte in the beat
    wire [63:0] id_addr = {24'd0, e_ids} + {30'd0, i, 2'b00};
    wire [LPB-1:0] id_off = id_addr[LPB-1:0];
    // the row's last byte and its beat count (a row of nw words from byte ma)
    wire [BA+LPB-1:0] m_end = ma[BA+LPB-1:0] + {{(BA+LPB-33){1'b0}}, nw, 1'b0} - {{(BA+LPB-1){1'b0}}, 1'b1};
    wire [BA-1:0] m_nb = m_end[BA+LPB-1:LPB] - ma[BA+LPB-1:LPB] + {{(BA-1){1'b0}}, 1'b1};

    wire wslot = !bw_en || vw_gnt;                           // the write register is free next cycle
    assign rd_ready = ((st == S_LOAD) && wslot) || (st == S_IDWAIT);
    wire [16*NB-1:0] rd_ext;
    generate
        if (NB > PW) begin : g_ext
            assign rd_ext = {{(16*(NB-PW)){1'b0}}, rd_data};
        end else begin : g_same
            assign rd_ext = rd_data;
        end
    endgenerate

    // store pipeline: buffer reads of beats rj .. beatN fill a small FIFO (at most SQ words held or
    // in flight), whose head beat bj goes to the HBM write engine
    localparam integer SQ = 4;
    reg [BA-1:0] rj;       // next beat to read
    reg s_pend;            // a read was granted last cycle: its words are on vr_data now
    wire sf_v;
    wire [PBITS-1:0] sf_d;
    wire [BA+LPW-1:0] sf_tag;                               // S_VT: the word's beat and lane
    wire vmode = (st == S_VT) || (st == S_VEND);
    wire [$clog2(SQ):0] sf_n;
    wire s_fire = sf_v && wq_ready && (st == S_STORE || vmode);
    localparam integer LSQ = $clog2(SQ);
    localparam [LSQ+1:0] SQ_C = SQ[LSQ+1:0];
    wire [LSQ+1:0] s_occ = {1'b0, sf_n} + {{(LSQ+1){1'b0}}, s_pend};
    wire sq_in_ready;                                      // s_occ < SQ: the FIFO always has room
    assign vr_req = (((st == S_STORE) && (rj <= beatN)) || ((st == S_VT) && !vt_bad)) && (s_occ < SQ_C);
    assign vr_addr = (st == S_VT) ? vt_raddr : beat_va(rj[AW-1:0], ofs[AW-1:0]);
    dfx_fifo #(.W(BA + LPW + PBITS), .DEPTH(SQ)) u_sq (.clk(clk), .rst(rst), .in_valid(s_pend),
        .in_ready(sq_in_ready), .in_data({s_tag, vr_data[PBITS-1:0]}), .out_valid(sf_v), .out_ready(s_fire),
        .out_data({sf_tag, sf_d}), .count(sf_n));
    wire [NB-1:0] s_mask = vmode ? ({{(NB-1){1'b0}}, 1'b1} << sf_tag[LPW-1:0]) : lane_mask(bj, mw0, mw1);
    assign stall = busy && (((st == S_LOAD || st == S_IDWAIT) && !rd_valid) || ((st == S_STORE || vmode) && !s_fire) ||
                            st == S_DRAIN);
    assign wq_valid = sf_v && (st == S_STORE || vmode);
    assign wq_beat = vmode ? sf_tag[BA+LPW-1:LPW] : bj;
    assign wq_data = sf_d;
    genvar l;
    generate
        for (l = 0; l < PW; l = l + 1) begin : g_strb
            assign wq_strb[2*l +: 2] = {2{s_mask[l]}};
        end
    endgenerate

    // kvstore's next segment: the next head-dim group c (a W-word run, or one word transposed),
    // then token i, then batch b; after the last, state `fin`
    task automatic kv_next(input [3:0] fin);
        begin
            if (c + (k_tr ? 32'd1 : WIDTH) < cols) c <= c + (k_tr ? 32'd1 : WIDTH);
            else begin
                c <= 32'd0;
                if (i + 1 < rows) i <= i + 1;
                else begin
                    i <= 32'd0;
                    if (b + 1 < kbatch) b <= b + 1;
                    else st <= fin;
                end
            end
        end
    endtask

    always @(posedge clk) begin
        done <= 1'b0;
        err <= 1'b0;
        if (vw_gnt) bw_en <= 1'b0;
        s_pend <= vr_req && vr_gnt;
        if (vr_req && vr_gnt) rj <= rj + 1'b1;
        if (vr_req && vr_gnt) s_tag <= vt_mw[BA+LPW-1:0];
        if (rst) begin
            st <= S_IDLE;
            busy <= 1'b0;
            bw_en <= 1'b0;
            rq_valid <= 1'b0;
        end else begin
            if (rq_valid && rq_ready) rq_valid <= 1'b0;
            case (st)
                S_IDLE: if (start) begin
                    I <= ins;
                    op <= ins[5:0];
                    rows <= cnt0;
                    cols <= cnt1;
                    busy <= 1'b1;
                    st <= S_CHECK;
                end
                S_CHECK: begin
                    i <= 32'd0;
                    b <= 32'd0;
                    c <= 32'd0;
                    v_bad <= 1'b0;
                    if (ck != 2'b00) begin
                        err_code <= (ck == 2'b01) ? `DFX_ERR_ILLEGAL_INSTRUCTION : ck_code;
                        err_d1 <= 32'd0;
                        err_d2 <= 32'd0;
                        st <= S_ERR;
                    end else if (rows == 0 || cols == 0) st <= S_DRAIN;
                    else st <= (is_kv && k_tr) ? S_VT : S_ROW;
                end
                S_ROW: begin
                    if (is_load || is_store) begin
                        ma <= base + {32'd0, i} * {32'd0, f_ms};
                        va <= {24'd0, f_v} + {16'd0, i} * {32'd0, f_vs};
                        nw <= cols;
                        st <= S_GO;
                    end else if (is_embed) begin
                        va <= {24'd0, f_v} + {16'd0, i} * {32'd0, f_vs};
                        nw <= cols;
                        st <= S_IDREQ;
                    end else begin
                        va <= kv_va;                                 // K only: V streams in S_VT
                        ma <= kv_head + (kv_k_words << 1);
                        nw <= (kv_left < WIDTH) ? kv_left : WIDTH;
                        st <= S_GO;
                    end
                end
                S_IDREQ: if (!rq_valid) begin
                    rq_valid <= 1'b1;
                    rq_beat <= id_addr[BA+LPB-1:LPB];
                    rq_n <= 16'd1;
                    st <= S_IDWAIT;
                end
                S_IDWAIT: if (rd_valid) begin : idw
                    reg [31:0] id;
                    id = rd_data[{id_off, 3'b000} +: 32];
                    if (id[31] || id >= {8'd0, e_limit}) begin
                        err_code <= `DFX_ERR_EMBED_ID;
                        err_d1 <= id;
                        err_d2 <= i;
                        st <= S_ERR;
                    end else begin
                        ma <= {24'd0, f_m} + {32'd0, id} * {32'd0, f_ms};
                        st <= S_GO;
                    end
                end
                S_GO: begin
                    if (ma[0] || mem_bad(ma, {31'd0, nw, 1'b0}, cap)) begin
                        err_code <= `DFX_ERR_ADDRESS;
                        err_d1 <= ma[31:0];
                        err_d2 <= ma[63:32];
                        st <= S_ERR;
                    end else begin
                        beatN <= m_end[BA+LPB-1:LPB];
                        bj <= ma[BA+LPB-1:LPB];
                        rj <= ma[BA+LPB-1:LPB];
                        if (is_store || is_kv) begin
                            st <= S_STORE;
                        end else begin
                            rq_valid <= 1'b1;
                            rq_beat <= ma[BA+LPB-1:LPB];
                            rq_n <= m_nb[15:0];
                            st <= S_LOAD;
                        end
                    end
                end
                S_LOAD: if (rd_valid && wslot) begin
                    bw_en <= 1'b1;
                    bw_addr <= beat_va(bj[AW-1:0], ofs[AW-1:0]);
                    bw_data <= rd_ext;
                    bw_mask <= lane_mask(bj, mw0, mw1);
                    bj <= bj + 1'b1;
                    if (rd_last) st <= S_NEXT;
                end
                S_STORE: if (s_fire) begin
                    if (bj == beatN) st <= S_NEXT;
                    else bj <= bj + 1'b1;
                end
                S_NEXT: begin
                    st <= S_ROW;
                    if (is_kv) kv_next(S_DRAIN);
                    else if (i + 1 < rows) i <= i + 1;
                    else st <= S_DRAIN;
                end
                S_VT: if (vt_bad) begin                  // as S_GO would: the words before it are written
                    err_code <= `DFX_ERR_ADDRESS;
                    err_d1 <= vt_ma[31:0];
                    err_d2 <= vt_ma[63:32];
                    v_bad <= 1'b1;
                    st <= S_VEND;
                end else if (vr_req && vr_gnt) kv_next(S_VEND);   // the next word
                S_VEND: if (!s_pend && !sf_v) st <= v_bad ? S_ERR : S_DRAIN;   // the store FIFO empty
                S_DRAIN: if (wr_idle && !rq_valid && !bw_en) begin
                    busy <= 1'b0;
                    done <= 1'b1;
                    st <= S_IDLE;
                end
                S_ERR: if (wr_idle && !rq_valid && !bw_en) begin
                    busy <= 1'b0;
                    err <= 1'b1;
                    st <= S_IDLE;
                end
                default: st <= S_IDLE;
            endcase
        end
    end
    // bits no logic reads: instruction bits of other formats, buffer words past one beat, the
    // upper bytes of addresses (checked against the memory sizes before use)
    wire _unused_ok = &{1'b0, I, vr_data, s_mask, sq_in_ready, vt_mw[63:BA+LPW], kv_va[47:AW], m_nb[BA-1:16], m_end[LPB-1:0], id_addr[63:BA+LPB], ofs[47:AW], 1'b0};
endmodule

`default_nettype wire
