// dfx_core: one dfx core as an XRT-managed RTL kernel (ap_ctrl_hs), with its per-channel AXI
// ports flattened into vectors. The generated top hw/gen/<target>/dfx_core.v names them
// (m_axi_hbm00 ...) and instantiates this module with the target's parameters.
//
// Blocks:  s_axi_control (registers, arguments: arch/kernel.py)
//          controller: fetch (prefetch queue of IQ_DEPTH instructions from HBM), decode (the
//                      generated dfx_isa_decode.vh), registers r0..r15 and their ALU ops, issue,
//                      cycle counters, status record
//          DMA, MPU path, VPU path, router (dfx_dma, dfx_mpu_path, dfx_vpu_path, dfx_net)
//          on-chip buffer (dfx_vbuf), HBM read and write engines (dfx_hbm_rd, dfx_hbm_wr),
//          DDR port (dfx_ddr: the same engines with one channel, for the DMA's DDR space; HAS_DDR)
// Issue is in program order into three unit queues (DMA, compute = MPU or VPU, router) that run
// in parallel under the scoreboard rule of arch/isa.py (see "issue queues and scoreboard").
// END waits for every unit and write, writes the status record and raises ap_done; an error
// stops issue, lets the running units finish, and does the same with the error code, pc and word.
`default_nettype none
`include "dfx_isa.vh"
`include "dfx_kernel.vh"

module dfx_core_flat #(
    parameter integer LANES = 4,
    parameter integer WIDTH = 8,
    parameter integer VWIDTH = 8,
    parameter integer MUL_LAT = 5,
    parameter integer ADD_LAT = 7,
    parameter integer RECIP_LAT = 2,
    parameter integer RSQRT_LAT = 2,
    parameter integer CH = 4,
    parameter integer HBM_BITS = 128,
    parameter integer CH_BYTES_LOG2 = 28,
    // the DDR (HAS_DDR): DDR_BITS per beat, a power of two dividing HBM_BITS; 2^DDR_BYTES_LOG2 bytes
    parameter integer HAS_DDR = 0,
    parameter integer DDR_BITS = 512,
    parameter integer DDR_BYTES_LOG2 = 35,
    parameter integer VBUF_WORDS = 1048576,
    parameter integer RING_WORDS = 8,
    parameter integer IQ_DEPTH = 8,
    parameter integer UQ = 4,                                // slots per unit queue, a power of two
    parameter integer RD_QD = 4,                             // read requests the HBM read engine holds
    parameter integer CTRL_AW = 8,
    parameter integer RING_TIMEOUT = 100000
) (
    input  wire                     ap_clk,
    input  wire                     ap_rst_n,
    output wire                     interrupt,
    input  wire                     s_axi_control_awvalid,
    output wire                     s_axi_control_awready,
    input  wire [CTRL_AW-1:0]       s_axi_control_awaddr,
    input  wire                     s_axi_control_wvalid,
    output wire                     s_axi_control_wready,
    input  wire [31:0]              s_axi_control_wdata,
    input  wire [3:0]               s_axi_control_wstrb,
    output wire                     s_axi_control_bvalid,
    input  wire                     s_axi_control_bready,
    output wire [1:0]               s_axi_control_bresp,
    input  wire                     s_axi_control_arvalid,
    output wire                     s_axi_control_arready,
    input  wire [CTRL_AW-1:0]       s_axi_control_araddr,
    output wire                     s_axi_control_rvalid,
    input  wire                     s_axi_control_rready,
    output wire [31:0]              s_axi_control_rdata,
    output wire [1:0]               s_axi_control_rresp,
    output wire [CH-1:0]            hbm_awvalid,
    input  wire [CH-1:0]            hbm_awready,
    output wire [64*CH-1:0]         hbm_awaddr,
    output wire [8*CH-1:0]          hbm_awlen,
    output wire [3*CH-1:0]          hbm_awsize,
    output wire [2*CH-1:0]          hbm_awburst,
    output wire [CH-1:0]            hbm_wvalid,
    input  wire [CH-1:0]            hbm_wready,
    output wire [HBM_BITS*CH-1:0]   hbm_wdata,
    output wire [HBM_BITS/8*CH-1:0] hbm_wstrb,
    output wire [CH-1:0]            hbm_wlast,
    input  wire [CH-1:0]            hbm_bvalid,
    output wire [CH-1:0]            hbm_bready,
    input  wire [2*CH-1:0]          hbm_bresp,
    output wire [CH-1:0]            hbm_arvalid,
    input  wire [CH-1:0]            hbm_arready,
    output wire [64*CH-1:0]         hbm_araddr,
    output wire [8*CH-1:0]          hbm_arlen,
    output wire [3*CH-1:0]          hbm_arsize,
    output wire [2*CH-1:0]          hbm_arburst,
    input  wire [CH-1:0]            hbm_rvalid,
    output wire [CH-1:0]            hbm_rready,
    input  wire [HBM_BITS*CH-1:0]   hbm_rdata,
    input  wire [2*CH-1:0]          hbm_rresp,
    input  wire [CH-1:0]            hbm_rlast,
    output wire                     ddr_awvalid,
    input  wire                     ddr_awready,
    output wire [63:0]              ddr_awaddr,
    output wire [7:0]               ddr_awlen,
    output wire [2:0]               ddr_awsize,
    output wire [1:0]               ddr_awburst,
    output wire                     ddr_wvalid,
    input  wire                     ddr_wready,
    output wire [DDR_BITS-1:0]      ddr_wdata,
    output wire [DDR_BITS/8-1:0]    ddr_wstrb,
    output wire                     ddr_wlast,
    input  wire                     ddr_bvalid,
    output wire                     ddr_bready,
    input  wire [1:0]               ddr_bresp,
    output wire                     ddr_arvalid,
    input  wire                     ddr_arready,
    output wire [63:0]              ddr_araddr,
    output wire [7:0]               ddr_arlen,
    output wire [2:0]               ddr_arsize,
    output wire [1:0]               ddr_arburst,
    input  wire                     ddr_rvalid,
    output wire                     ddr_rready,
    input  wire [DDR_BITS-1:0]      ddr_rdata,
    input  wire [1:0]               ddr_rresp,
    input  wire                     ddr_rlast,
    input  wire                     s_axis_ring_tvalid,
    output wire                     s_axis_ring_tready,
    input  wire [16*RING_WORDS+31:0] s_axis_ring_tdata,
    input  wire                     s_axis_ring_tlast,
    output wire                     m_axis_ring_tvalid,
    input  wire                     m_axis_ring_tready,
    output wire [16*RING_WORDS+31:0] m_axis_ring_tdata,
    output wire                     m_axis_ring_tlast
);
    `include "dfx_isa_decode.vh"
    localparam integer PB = HBM_BITS / 8;
    localparam integer LPB = $clog2(PB);
    localparam integer LC = $clog2(CH);
    localparam integer PW = HBM_BITS / 16;
    localparam integer M1 = (VWIDTH > WIDTH) ? VWIDTH : WIDTH;
    localparam integer M2 = (PW > RING_WORDS) ? PW : RING_WORDS;
    localparam integer NB = (M1 > M2) ? M1 : M2;          // buffer words per access
    localparam integer BA = 40;
    localparam integer AW = 24;
    localparam [63:0] HBM_CAP = 64'd1 << (CH_BYTES_LOG2 + LC);
    localparam [63:0] DDR_CAP = 64'd1 << DDR_BYTES_LOG2;
    localparam integer BPI = (PB >= 64) ? 1 : 64 / PB;    // beats per instruction
    localparam integer SBEATS = (`DFX_STATUS_BYTES + PB - 1) / PB;
    localparam [7:0] BPI_M1 = BPI[7:0] - 8'd1;
    localparam [7:0] SBEATS_M1 = SBEATS[7:0] - 8'd1;
    localparam integer NARG = 8 + 2 * CH + 2;             // 32-bit argument registers from 0x10
    localparam integer LNA = $clog2(NARG);
    localparam [CTRL_AW-3:0] NARG_C = NARG[CTRL_AW-3:0];
    wire clk = ap_clk;
    wire rst = !ap_rst_n;

    // ================================================================ AXI4-Lite control
    reg  [31:0] argr [0:NARG-1];
    reg  ap_start, ap_done, ap_idle, ap_ready_r, gie;
    reg  [1:0] ier, isr;
    reg  aw_got, w_got, bvalid;
    reg  [CTRL_AW-1:0] awaddr_q;
    reg  [31:0] wdata_q;
    reg  rvalid;
    reg  [31:0] rdata;
    wire core_start;                                     // the controller takes ap_start
    wire core_done;                                      // the controller finished a run
    assign s_axi_control_awready = !aw_got && !bvalid;
    assign s_axi_control_wready = !w_got && !bvalid;
    assign s_axi_control_bvalid = bvalid;
    assign s_axi_control_bresp = 2'b00;
    assign s_axi_control_arready = !rvalid;
    assign s_axi_control_rvalid = rvalid;
    assign s_axi_control_rdata = rdata;
    assign s_axi_control_rresp = 2'b00;
    assign interrupt = gie && |(isr & ier);
    wire [CTRL_AW-1:0] wa = s_axi_control_awvalid && !aw_got ? s_axi_control_awaddr : awaddr_q;
    // argument register index of a write / read address (offset from the first argument, in words)
    wire [CTRL_AW-1:0] wa_rel = wa - `DFX_ARG_ENTRY;
    wire [CTRL_AW-1:0] ra_rel = s_axi_control_araddr - `DFX_ARG_ENTRY;
    wire wa_arg = (wa >= `DFX_ARG_ENTRY) && (wa_rel[CTRL_AW-1:2] < NARG_C);
    wire ra_arg = (s_axi_control_araddr >= `DFX_ARG_ENTRY) && (ra_rel[CTRL_AW-1:2] < NARG_C);
    wire [31:0] wd = s_axi_control_wvalid && !w_got ? s_axi_control_wdata : wdata_q;
    wire aw_now = aw_got || (s_axi_control_awvalid && s_axi_control_awready);
    wire w_now = w_got || (s_axi_control_wvalid && s_axi_control_wready);
    wire wr_do = aw_now && w_now && !bvalid;
    wire rd_do = s_axi_control_arvalid && s_axi_control_arready;
    integer k;
    always @(posedge clk) begin
        if (rst) begin
            aw_got <= 1'b0; w_got <= 1'b0; bvalid <= 1'b0; rvalid <= 1'b0;
            ap_start <= 1'b0; ap_done <= 1'b0; ap_idle <= 1'b1; ap_ready_r <= 1'b0;
            gie <= 1'b0; ier <= 2'b00; isr <= 2'b00;
            for (k = 0; k < NARG; k = k + 1) argr[k] <= 32'd0;
        end else begin
            if (s_axi_control_awvalid && s_axi_control_awready) awaddr_q <= s_axi_control_awaddr;
            if (s_axi_control_wvalid && s_axi_control_wready) wdata_q <= s_axi_control_wdata;
            aw_got <= wr_do ? 1'b0 : aw_now;
            w_got <= wr_do ? 1'b0 : w_now;
            if (wr_do) bvalid <= 1'b1;
            else if (s_axi_control_bready) bvalid <= 1'b0;
            if (core_start) begin
                ap_start <= 1'b0;
                ap_idle <= 1'b0;
                ap_ready_r <= 1'b1;
                if (ier[1]) isr[1] <= 1'b1;
            end
            if (core_done) begin
                ap_done <= 1'b1;
                ap_idle <= 1'b1;
                if (ier[0]) isr[0] <= 1'b1;
            end
            if (wr_do) begin
                if (wa == `DFX_REG_CTRL && wd[0]) ap_start <= 1'b1;
                else if (wa == `DFX_REG_GIE) gie <= wd[0];
                else if (wa == `DFX_REG_IER) ier <= wd[1:0];
                else if (wa == `DFX_REG_ISR) isr <= isr ^ wd[1:0];
                else if (wa_arg) argr[wa_rel[LNA+1:2]] <= wd;
            end
            if (rd_do) begin
                rvalid <= 1'b1;
                if (s_axi_control_araddr == `DFX_REG_CTRL) begin
                    rdata <= {28'd0, ap_ready_r, ap_idle, ap_done, ap_start};
                    ap_done <= core_done;            // clear on read
                    ap_ready_r <= 1'b0;
                end else if (s_axi_control_araddr == `DFX_REG_GIE) rdata <= {31'd0, gie};
                else if (s_axi_control_araddr == `DFX_REG_IER) rdata <= {30'd0, ier};
                else if (s_axi_control_araddr == `DFX_REG_ISR) rdata <= {30'd0, isr};
                else if (ra_arg) rdata <= argr[ra_rel[LNA+1:2]];
                else rdata <= 32'd0;
            end else if (s_axi_control_rready) rvalid <= 1'b0;
        end
    end
    localparam integer A_ENTRY = (`DFX_ARG_ENTRY - `DFX_ARG_ENTRY) / 4;
    localparam integer A_NTOK = (`DFX_ARG_NTOK - `DFX_ARG_ENTRY) / 4;
    localparam integer A_POS = (`DFX_ARG_POS - `DFX_ARG_ENTRY) / 4;
    localparam integer A_CORE = (`DFX_ARG_CORE - `DFX_ARG_ENTRY) / 4;
    localparam integer A_NCORES = (`DFX_ARG_NCORES - `DFX_ARG_ENTRY) / 4;
    localparam integer A_STATUS = (`DFX_ARG_STATUS - `DFX_ARG_ENTRY) / 4;
    localparam integer A_ENTRY_HI = (`DFX_ARG_ENTRY_HI - `DFX_ARG_ENTRY) / 4;
    localparam integer A_STATUS_HI = (`DFX_ARG_STATUS_HI - `DFX_ARG_ENTRY) / 4;
    localparam integer A_PTR = (`DFX_ARG_PTR_BASE - `DFX_ARG_ENTRY) / 4;
    wire [63:0] a_entry = {argr[A_ENTRY_HI], argr[A_ENTRY]};
    wire [63:0] a_status = {argr[A_STATUS_HI], argr[A_STATUS]};
    wire [7:0] core_id = argr[A_CORE][7:0];
    wire [7:0] ncores = argr[A_NCORES][7:0];
    wire [64*CH-1:0] ptrs;
    genvar c;
    generate
        for (c = 0; c < CH; c = c + 1) begin : g_ptr
            assign ptrs[64*c +: 64] = {argr[A_PTR + 2*c + 1], argr[A_PTR + 2*c]};
        end
    endgenerate

    // ================================================================ HBM engines
    localparam [1:0] T_FETCH = 0, T_DMA = 1, T_MPU = 2;
    wire rq_ready;
    reg  rq_valid;
    reg  [BA-1:0] rq_beat;
    reg  [15:0] rq_n;
    reg  rq_tile;
    reg  [1:0] rq_tag;
    wire d_valid, d_last;
    wire d_ready;
    wire [CH*HBM_BITS-1:0] d_data;
    wire [1:0] d_tag;
    wire rd_err, wr_err, rd_idle, wr_idle;        // both memories: HBM and DDR
    wire hrd_err, hwr_err, hrd_idle, hwr_idle;    // HBM alone
    reg  err_clr;
    dfx_hbm_rd #(.CH(CH), .PBITS(HBM_BITS), .BA(BA), .TW(2), .QD(RD_QD)) u_rd (
        .clk(clk), .rst(rst), .ptr(ptrs),
        .req_valid(rq_valid), .req_ready(rq_ready), .req_beat(rq_beat), .req_n(rq_n), .req_tile(rq_tile),
        .req_tag(rq_tag), .d_valid(d_valid), .d_ready(d_ready), .d_data(d_data), .d_tag(d_tag), .d_last(d_last),
        .err(hrd_err), .err_clr(err_clr), .idle(hrd_idle),
        .m_arvalid(hbm_arvalid), .m_arready(hbm_arready), .m_araddr(hbm_araddr), .m_arlen(hbm_arlen),
        .m_rvalid(hbm_rvalid), .m_rready(hbm_rready), .m_rdata(hbm_rdata), .m_rresp(hbm_rresp));
    generate
        for (c = 0; c < CH; c = c + 1) begin : g_axi
            assign hbm_arsize[3*c +: 3] = LPB[2:0];
            assign hbm_arburst[2*c +: 2] = 2'b01;
            assign hbm_awsize[3*c +: 3] = LPB[2:0];
            assign hbm_awburst[2*c +: 2] = 2'b01;
            assign hbm_awlen[8*c +: 8] = 8'd0;
            assign hbm_wlast[c] = 1'b1;
        end
    endgenerate
    wire wq_valid, wq_ready;
    wire [BA-1:0] wq_beat;
    wire [HBM_BITS-1:0] wq_data;
    wire [PB-1:0] wq_strb;
    dfx_hbm_wr #(.CH(CH), .PBITS(HBM_BITS), .BA(BA)) u_wr (
        .clk(clk), .rst(rst), .ptr(ptrs),
        .w_valid(wq_valid), .w_ready(wq_ready), .w_beat(wq_beat), .w_data(wq_data), .w_strb(wq_strb),
        .err(hwr_err), .err_clr(err_clr), .idle(hwr_idle),
        .m_awvalid(hbm_awvalid), .m_awready(hbm_awready), .m_awaddr(hbm_awaddr),
        .m_wvalid(hbm_wvalid), .m_wready(hbm_wready), .m_wdata(hbm_wdata), .m_wstrb(hbm_wstrb),
        .m_bvalid(hbm_bvalid), .m_bready(hbm_bready), .m_bresp(hbm_bresp));

    // DDR (HAS_DDR): the DMA's requests and writes of the DDR space (dma_ddr), on the DDR port;
    // without a DDR the port is tied off and DDR instructions are illegal (the DMA refuses them)
    wire dma_ddr;
    wire dma_rq_valid, dma_rd_ready;
    wire [BA-1:0] dma_rq_beat;
    wire [15:0] dma_rq_n;
    wire dma_wq_valid;
    wire [BA-1:0] dma_wq_beat;
    wire [HBM_BITS-1:0] dma_wq_data;
    wire [PB-1:0] dma_wq_strb;
    wire dd_rq_ready, dd_valid, dd_last, dd_w_ready;
    wire [HBM_BITS-1:0] dd_data;
    wire drd_err, dwr_err, drd_idle, dwr_idle;
    generate
        if (HAS_DDR != 0) begin : g_ddr
            localparam integer LDB = $clog2(DDR_BITS / 8);
            dfx_ddr #(.PBITS(HBM_BITS), .DBITS(DDR_BITS), .BA(BA)) u_ddr (
                .clk(clk), .rst(rst), .ptr({argr[A_PTR + 2*CH + 1], argr[A_PTR + 2*CH]}),
                .req_valid(dma_rq_valid && dma_ddr), .req_ready(dd_rq_ready), .req_beat(dma_rq_beat),
                .req_n(dma_rq_n), .d_valid(dd_valid), .d_ready(dma_rd_ready && dma_ddr), .d_data(dd_data),
                .d_last(dd_last), .w_valid(dma_wq_valid && dma_ddr), .w_ready(dd_w_ready), .w_beat(dma_wq_beat),
                .w_data(dma_wq_data), .w_strb(dma_wq_strb), .rd_err(drd_err), .wr_err(dwr_err), .err_clr(err_clr),
                .rd_idle(drd_idle), .wr_idle(dwr_idle),
                .m_arvalid(ddr_arvalid), .m_arready(ddr_arready), .m_araddr(ddr_araddr), .m_arlen(ddr_arlen),
                .m_rvalid(ddr_rvalid), .m_rready(ddr_rready), .m_rdata(ddr_rdata), .m_rresp(ddr_rresp),
                .m_awvalid(ddr_awvalid), .m_awready(ddr_awready), .m_awaddr(ddr_awaddr),
                .m_wvalid(ddr_wvalid), .m_wready(ddr_wready), .m_wdata(ddr_wdata), .m_wstrb(ddr_wstrb),
                .m_bvalid(ddr_bvalid), .m_bready(ddr_bready), .m_bresp(ddr_bresp));
            assign ddr_arsize = LDB[2:0]; assign ddr_arburst = 2'b01;
            assign ddr_awsize = LDB[2:0]; assign ddr_awburst = 2'b01;
            assign ddr_awlen = 8'd0; assign ddr_wlast = 1'b1;
            // RLAST: the engine counts the beats of its bursts
            wire _unused_ok = &{1'b0, ddr_rlast, 1'b0};
        end else begin : g_no_ddr
            assign ddr_awvalid = 1'b0; assign ddr_awaddr = 64'd0; assign ddr_awlen = 8'd0;
            assign ddr_awsize = 3'd0; assign ddr_awburst = 2'b01;
            assign ddr_wvalid = 1'b0; assign ddr_wdata = {DDR_BITS{1'b0}}; assign ddr_wstrb = {(DDR_BITS/8){1'b0}};
            assign ddr_wlast = 1'b0; assign ddr_bready = 1'b1;
            assign ddr_arvalid = 1'b0; assign ddr_araddr = 64'd0; assign ddr_arlen = 8'd0;
            assign ddr_arsize = 3'd0; assign ddr_arburst = 2'b01; assign ddr_rready = 1'b1;
            assign dd_rq_ready = 1'b0; assign dd_valid = 1'b0; assign dd_last = 1'b0; assign dd_w_ready = 1'b0;
            assign dd_data = {HBM_BITS{1'b0}};
            assign drd_err = 1'b0; assign dwr_err = 1'b0; assign drd_idle = 1'b1; assign dwr_idle = 1'b1;
            // the tied-off port's inputs, and what a DDR port would answer the DMA
            wire _unused_ok = &{1'b0, ddr_awready, ddr_wready, ddr_bvalid, ddr_bresp, ddr_arready, ddr_rvalid,
                                ddr_rdata, ddr_rresp, ddr_rlast, dma_ddr, dd_rq_ready, dd_valid, dd_last,
                                dd_w_ready, dd_data, 1'b0};
        end
    endgenerate
    assign rd_err = hrd_err || drd_err;
    assign wr_err = hwr_err || dwr_err;
    assign rd_idle = hrd_idle && drd_idle;
    assign wr_idle = hwr_idle && dwr_idle;

    // ================================================================ controller state
    localparam [3:0] C_IDLE = 0, C_RUN = 1, C_HALT = 2, C_END = 3, C_ERR = 4, C_STATUS = 5,
                     C_SDRAIN = 6, C_DONE = 7, C_START = 8;
    reg [3:0] cs;
    reg [31:0] R [0:15];
    wire [511:0] regs_flat;
    generate
        for (c = 0; c < 16; c = c + 1) begin : g_regs
            assign regs_flat[32*c +: 32] = R[c];
        end
    endgenerate
    reg [31:0] pc;                       // the instruction at the head of the fetch queue
    reg [511:0] cur;                     // the instruction that ended the run (status record)
    reg [31:0] e_pc;                     // its pc
    reg [7:0] e_code;
    reg [31:0] e_d1, e_d2;
    reg e_pend;                          // an error was seen: nothing more issues or starts
    reg [63:0] n_cycles, n_retired;
    reg [63:0] n_busy [0:3];
    reg [63:0] n_stall [0:3];
    assign core_start = (cs == C_IDLE) && ap_start;
    assign core_done = (cs == C_DONE);

    // ================================================================ fetch
    wire iq_valid;
    wire [511:0] iq_data;
    wire iq_pop;
    wire [$clog2(IQ_DEPTH):0] iq_count;
    reg  [63:0] fa;                      // next instruction address to request
    reg  [$clog2(IQ_DEPTH):0] f_inflight;
    reg  f_on;                           // fetching for the current run
    reg  f_end;                          // no further instruction fits in HBM
    localparam integer FAW = (HBM_BITS < 512) ? 512 - HBM_BITS : 1;
    reg  [FAW-1:0] f_acc;                // the beats of an instruction so far (narrow ports)
    reg  [7:0] f_beats;
    wire f_d = d_valid && d_tag == T_FETCH;
    wire f_push_now;
    wire [511:0] f_word;
    wire iq_in_ready;
    reg  [63:0] fpush;                   // address of the next instruction to arrive
    generate
        if (PB > 64) begin : g_fw
            assign f_word = d_data[512*fpush[LPB-1:6] +: 512];
            assign f_push_now = f_d;
        end else if (PB == 64) begin : g_f1
            assign f_word = d_data[511:0];
            assign f_push_now = f_d;
        end else begin : g_fn
            assign f_word = {d_data[HBM_BITS-1:0], f_acc};
            assign f_push_now = f_d && (f_beats == BPI_M1);
        end
    endgenerate
    dfx_fifo #(.W(512), .DEPTH(IQ_DEPTH)) u_iq (.clk(clk), .rst(rst || cs == C_START),
        .in_valid(f_push_now && f_on), .in_ready(iq_in_ready), .in_data(f_word),
        .out_valid(iq_valid), .out_ready(iq_pop), .out_data(iq_data), .count(iq_count));
    // fetch requests only what the queue has room for, so iq_in_ready is never low when it pushes
    localparam integer LIQ = $clog2(IQ_DEPTH);
    localparam [LIQ+1:0] IQ_C = IQ_DEPTH[LIQ+1:0];
    wire [LIQ+1:0] f_occ = {1'b0, f_inflight} + {1'b0, iq_count};
    wire f_req = f_on && !f_end && (f_occ < IQ_C) && (cs == C_RUN);


    // ================================================================ units
    wire dma_busy, dma_done, dma_err, dma_stall;
    wire mpu_busy, mpu_done, mpu_err, mpu_stall;
    wire vpu_busy, vpu_done, vpu_err;
    wire net_busy, net_done, net_err, net_stall;
    wire [7:0] dma_code, mpu_code, vpu_code, net_code;
    wire [31:0] dma_d1, dma_d2, net_d1, net_d2;
    reg  u_start [1:4];
    wire [AW-1:0] mpu_ra, mpu_rb, vpu_ra, vpu_rb, dma_vra, net_vra;
    wire [16*NB-1:0] ra_data, rb_data;
    wire dma_vrq, net_vrq;
    wire mpu_ua, mpu_ub, vpu_ua, vpu_ub;
    wire dma_bw, mpu_bw, vpu_bw, net_bw;
    wire [AW-1:0] dma_ba, mpu_ba, vpu_ba, net_ba;
    wire [16*NB-1:0] dma_bd, mpu_bd, vpu_bd, net_bd;
    wire [NB-1:0] dma_bm, mpu_bm, vpu_bm, net_bm;
    wire mpu_rq_valid, mpu_rd_ready;
    wire [BA-1:0] mpu_rq_beat;
    wire [15:0] mpu_rq_n;

    // HBM read arbitration: the fetch unit and the units alternate, and so do the DMA and the MPU
    reg last_fetch, last_dma;
    wire dma_hrq = dma_rq_valid && !dma_ddr;               // the DMA's HBM requests (DDR: dfx_ddr)
    wire u_rq = dma_hrq || mpu_rq_valid;
    wire grant_unit = u_rq && (!f_req || last_fetch);
    wire pick_dma = dma_hrq && (!mpu_rq_valid || !last_dma);
    wire req_take = !rq_valid || rq_ready;
    wire dma_rq_ready = dma_ddr ? dd_rq_ready : req_take && grant_unit && pick_dma;
    wire mpu_rq_ready = req_take && grant_unit && !pick_dma;
    wire f_take = req_take && !grant_unit && f_req;
    always @(posedge clk) begin
        if (rst) begin
            rq_valid <= 1'b0;
            last_fetch <= 1'b0;
            last_dma <= 1'b0;
        end else if (req_take) begin
            rq_valid <= grant_unit || f_req;
            if (grant_unit) begin
                last_fetch <= 1'b0;
                last_dma <= pick_dma;
                rq_tile <= !pick_dma;
                rq_tag <= pick_dma ? T_DMA : T_MPU;
                rq_beat <= pick_dma ? dma_rq_beat : mpu_rq_beat;
                rq_n <= pick_dma ? dma_rq_n : mpu_rq_n;
            end else if (f_req) begin
                last_fetch <= 1'b1;
                rq_tile <= 1'b0;
                rq_tag <= T_FETCH;
                rq_beat <= fa[BA+LPB-1:LPB];
                rq_n <= BPI[15:0];
            end
        end
    end
    assign d_ready = (d_tag == T_FETCH) ? 1'b1 : (d_tag == T_DMA) ? dma_rd_ready && !dma_ddr : mpu_rd_ready;

    // fetch bookkeeping
    always @(posedge clk) begin
        if (rst) begin
            f_on <= 1'b0;
            f_inflight <= 0;
            f_beats <= 8'd0;
        end else begin
            f_inflight <= f_inflight + {{($clog2(IQ_DEPTH)){1'b0}}, f_take} - {{($clog2(IQ_DEPTH)){1'b0}}, f_push_now};
            if (f_d) begin
                f_acc <= f_word[511 -: FAW];
                f_beats <= f_push_now ? 8'd0 : f_beats + 8'd1;
            end
            if (f_take) begin
                fa <= fa + 64'd64;
                if (fa + 64'd128 > HBM_CAP) f_end <= 1'b1;
            end
            if (f_push_now) fpush <= fpush + 64'd64;
            if (cs == C_START) begin
                fpush <= a_entry;
                f_on <= 1'b1;
                f_end <= (a_entry + 64'd64 > HBM_CAP);
                fa <= a_entry;
            end else if (cs == C_END || cs == C_ERR) f_on <= 1'b0;
        end
    end


    // ================================================================ buffer ports
    // Two read ports (A, B) and one write port. The compute unit running (MPU or VPU: one at a
    // time) holds the ports it uses and is never refused; the DMA and the router take what it
    // leaves, one read port each per cycle and the write port in turn (their priority alternates
    // every cycle), and wait when refused.
    reg sp;                              // 0: the DMA asks first, 1: the router
    wire cu_a = mpu_ua || vpu_ua;
    wire cu_b = mpu_ub || vpu_ub;
    reg dma_ga, dma_gb, net_ga, net_gb;
    always @* begin
        dma_ga = 1'b0; dma_gb = 1'b0; net_ga = 1'b0; net_gb = 1'b0;
        if (!sp) begin
            if (dma_vrq) begin if (!cu_a) dma_ga = 1'b1; else if (!cu_b) dma_gb = 1'b1; end
            if (net_vrq) begin if (!cu_a && !dma_ga) net_ga = 1'b1; else if (!cu_b && !dma_gb) net_gb = 1'b1; end
        end else begin
            if (net_vrq) begin if (!cu_a) net_ga = 1'b1; else if (!cu_b) net_gb = 1'b1; end
            if (dma_vrq) begin if (!cu_a && !net_ga) dma_ga = 1'b1; else if (!cu_b && !net_gb) dma_gb = 1'b1; end
        end
    end
    wire cu_w = mpu_bw || vpu_bw;
    wire dma_wg = dma_bw && !cu_w && (!net_bw || !sp);
    wire net_wg = net_bw && !cu_w && !dma_wg;
    reg dma_sel, net_sel;                // the read granted last cycle came from port B
    always @(posedge clk) begin
        sp <= rst ? 1'b0 : !sp;
        dma_sel <= dma_gb;
        net_sel <= net_gb;
    end
    wire [AW-1:0] ra_addr = mpu_ua ? mpu_ra : vpu_ua ? vpu_ra : dma_ga ? dma_vra : net_vra;
    wire [AW-1:0] rb_addr = mpu_ub ? mpu_rb : vpu_ub ? vpu_rb : dma_gb ? dma_vra : net_vra;
    wire bw_en = cu_w || dma_wg || net_wg;
    wire [AW-1:0] bw_addr = mpu_bw ? mpu_ba : vpu_bw ? vpu_ba : dma_wg ? dma_ba : net_ba;
    wire [16*NB-1:0] bw_data = mpu_bw ? mpu_bd : vpu_bw ? vpu_bd : dma_wg ? dma_bd : net_bd;
    wire [NB-1:0] bw_mask = mpu_bw ? mpu_bm : vpu_bw ? vpu_bm : dma_wg ? dma_bm : net_bm;
    dfx_vbuf #(.NB(NB), .WORDS(VBUF_WORDS), .AW(AW)) u_vbuf (.clk(clk), .ra_addr(ra_addr), .ra_data(ra_data),
        .rb_addr(rb_addr), .rb_data(rb_data), .we(bw_en), .w_addr(bw_addr), .w_data(bw_data), .w_mask(bw_mask));

    // ================================================================ issue queues and scoreboard
    // Unit instructions go, in program order, to one of three queues of UQ slots: 0 the DMA,
    // 1 compute (MPU or VPU, which share the buffer ports: one runs at a time, as in DFX), 2 the
    // router. The slot at a queue's head is the instruction its unit runs; it leaves when the
    // unit is done. Each slot keeps the instruction, its counts and registers as they were at
    // issue (later ALU instructions do not reach it), and the address ranges it reads and writes
    // (hulls, on the buffer and in HBM). The scoreboard rule of arch/isa.py: an instruction
    // enters its queue only when no slot of another queue holds a range that it writes and the
    // slot reads or writes, or that the slot writes and it reads. A queue runs in order and one
    // instruction at a time, so its own slots need no check.
    localparam integer LQ = $clog2(UQ);                  // UQ must be a power of two
    localparam integer NS = 3 * UQ;
    localparam integer RL = 113;                           // one range: valid, lo, hi (56 bits each)
    localparam integer RNG = 4 * RL;                       // buffer read, buffer write, HBM read, HBM write
    localparam integer LTB = $clog2(2 * LANES * WIDTH);
    localparam integer LL = $clog2(LANES);
    localparam integer LW = $clog2(WIDTH);
    // a range keeps 56 bits of each bound: the addresses compared are below 2^56 (buffer words
    // 2^24, flat HBM bytes 2^40 at most), so the top byte of lo and hi is left out on purpose
    /* verilator lint_off UNUSEDSIGNAL */
    function automatic [RL-1:0] rng(input v, input [63:0] lo, input [63:0] hi);
        rng = {v, lo[55:0], hi[55:0]};
    endfunction
    /* verilator lint_on UNUSEDSIGNAL */
    function automatic [RL-1:0] hull(input [63:0] base, input [31:0] rows, input [31:0] cols, input [63:0] stride);
        hull = rng(rows != 32'd0 && cols != 32'd0, base,
                   base + ({32'd0, rows} - 64'd1) * stride + {32'd0, cols});
    endfunction
    // hull() of the first of bt batches, `bstride` apart, grown to cover the last one
    function automatic [RL-1:0] bhull(input [63:0] base, input [31:0] bt, input [63:0] bstride, input [31:0] rows,
                                      input [31:0] cols, input [63:0] stride);
        bhull = hull(base, rows, cols, stride);
        bhull = rng(bhull[RL-1], {8'd0, bhull[111:56]}, {8'd0, bhull[55:0]} + ux(bt - 32'd1) * bstride);
    endfunction
    function automatic [RL-1:0] join2(input [RL-1:0] a, input [RL-1:0] b);
        if (!a[RL-1]) join2 = b;
        else if (!b[RL-1]) join2 = a;
        else join2 = {1'b1, (a[111:56] < b[111:56]) ? a[111:56] : b[111:56],
                      (a[55:0] > b[55:0]) ? a[55:0] : b[55:0]};
    endfunction
    function automatic ovl(input [RL-1:0] a, input [RL-1:0] b);
        ovl = a[RL-1] && b[RL-1] && (a[111:56] < b[55:0]) && (b[111:56] < a[55:0]);
    endfunction
    function automatic clash(input [RNG-1:0] x, input [RNG-1:0] y);    // x issues after y
        clash = ovl(x[RL +: RL], y[0 +: RL]) || ovl(x[RL +: RL], y[RL +: RL]) || ovl(x[0 +: RL], y[RL +: RL])
             || ovl(x[3*RL +: RL], y[2*RL +: RL]) || ovl(x[3*RL +: RL], y[3*RL +: RL])
             || ovl(x[2*RL +: RL], y[3*RL +: RL]);
    endfunction
    function automatic [63:0] sx(input [31:0] v);
        sx = {{32{v[31]}}, v};
    endfunction
    function automatic [63:0] ux(input [31:0] v);
        ux = {32'd0, v};
    endfunction

    reg [511:0] s_ins [0:NS-1];
    reg [511:0] s_regs [0:NS-1];
    reg [95:0] s_cnt [0:NS-1];
    reg [31:0] s_pc [0:NS-1];
    reg [RNG-1:0] s_rng [0:NS-1];
    reg [NS-1:0] s_val;
    reg [LQ-1:0] q_hd [0:2];
    reg [LQ:0] q_n [0:2];
    reg [2:0] q_run;                                       // the head slot's unit was started
    // slot index = {queue, position}: UQ is a power of two, queue q holds slots q*UQ .. q*UQ + UQ-1
    wire [LQ+1:0] hs0 = {2'd0, q_hd[0]};
    wire [LQ+1:0] hs1 = {2'd1, q_hd[1]};
    wire [LQ+1:0] hs2 = {2'd2, q_hd[2]};

    // ================================================================ decode (head of the fetch queue)
    wire [5:0] op = iq_data[5:0];
    wire [3:0] info = dfx_op_unit(op);
    wire bad = !info[3] || dfx_bad_fields(iq_data);
    reg [31:0] cv [0:2];
    reg neg;
    integer q;
    always @* begin
        neg = 1'b0;
        for (q = 0; q < 3; q = q + 1) begin : cres
            reg [9:0] lsb;
            reg [15:0] raw;
            lsb = dfx_cnt_lsb(op, q[1:0]);
            raw = iq_data[lsb[8:0] +: 16];                  // count fields lie in the first 512 bits
            cv[q] = (lsb == 10'd0) ? 32'd0 : raw[15] ? R[raw[3:0]] : {17'd0, raw[14:0]};
            if (lsb != 10'd0 && raw[15] && cv[q][31]) neg = 1'b1;
        end
    end
    wire [1:0] cls = (info[2:0] == 3'd1) ? 2'd0 : (info[2:0] == 3'd4) ? 2'd2 : 2'd1;

    // the ranges the head instruction reads and writes. DDR is a space of its own (arch/isa.py):
    // DDR ranges never go into the HBM ones. No range of the DDR is kept at all: the DMA is the
    // only unit that reaches the DDR, and the scoreboard checks slots of other queues only (the
    // DMA's queue runs in order, one instruction at a time, each done when its writes have their
    // responses), so two DDR accesses that overlap are kept in order by the queue.
    reg [RL-1:0] n_br, n_bw, n_hr, n_hw;
    wire in_ddr = iq_data[`DFX_MEM_SPACE_LSB +: 2] == 2'd1;     // load, store, embed: the DDR space
    always @* begin : ranges
        reg [31:0] rows, cols, n3, bt, kt, nt, npad, s1, p0, p1, k0, k1, j0, j1;
        reg [63:0] base, x0, m;
        rows = cv[0]; cols = cv[1]; n3 = cv[2];
        // every local gets a value on every path (no latch)
        bt = 32'd1; kt = 32'd0; nt = 32'd0; npad = 32'd0; s1 = 32'd0; p0 = 32'd0; p1 = 32'd0;
        k0 = 32'd0; k1 = 32'd0; j0 = 32'd0; j1 = 32'd0; base = 64'd0; x0 = 64'd0; m = 64'd0;
        n_br = {RL{1'b0}}; n_bw = {RL{1'b0}}; n_hr = {RL{1'b0}}; n_hw = {RL{1'b0}};
        case (op)
            `DFX_OP_LOAD, `DFX_OP_STORE: begin
                base = {24'd0, iq_data[`DFX_MEM_M_LSB +: 40]}
                       + sx(R[iq_data[`DFX_MEM_MREG_LSB +: 4]]) * sx(iq_data[`DFX_MEM_MREGS_LSB +: 32]);
                if (op == `DFX_OP_LOAD) begin
                    if (!in_ddr) n_hr = hull(base, rows, {cols[30:0], 1'b0}, ux(iq_data[`DFX_MEM_MS_LSB +: 32]));
                    n_bw = hull(ux({8'd0, iq_data[`DFX_MEM_V_LSB +: 24]}), rows, cols, ux({16'd0, iq_data[`DFX_MEM_VS_LSB +: 16]}));
                end else begin
                    if (!in_ddr) n_hw = hull(base, rows, {cols[30:0], 1'b0}, ux(iq_data[`DFX_MEM_MS_LSB +: 32]));
                    n_br = hull(ux({8'd0, iq_data[`DFX_MEM_V_LSB +: 24]}), rows, cols, ux({16'd0, iq_data[`DFX_MEM_VS_LSB +: 16]}));
                end
            end
            `DFX_OP_EMBED: begin
                m = {24'd0, iq_data[`DFX_EMBED_M_LSB +: 40]};
                n_hr = hull({24'd0, iq_data[`DFX_EMBED_IDS_LSB +: 40]}, 32'd1, {rows[29:0], 2'b00}, 64'd0);
                if (!in_ddr)                                                // the table, in HBM
                    n_hr = join2(n_hr, hull(m, {8'd0, iq_data[`DFX_EMBED_LIMIT_LSB +: 24]}, {cols[30:0], 1'b0},
                                            ux(iq_data[`DFX_EMBED_MS_LSB +: 32])));
                n_bw = hull(ux({8'd0, iq_data[`DFX_EMBED_V_LSB +: 24]}), rows, cols, ux({16'd0, iq_data[`DFX_EMBED_VS_LSB +: 16]}));
            end
            `DFX_OP_KVSTORE: begin
                bt = (iq_data[`DFX_KV_BATCH_LSB +: 8] == 8'd0) ? 32'd1 : {24'd0, iq_data[`DFX_KV_BATCH_LSB +: 8]};
                n_br = bhull(ux({8'd0, iq_data[`DFX_KV_V_LSB +: 24]}), bt, ux({16'd0, iq_data[`DFX_KV_VBS_LSB +: 16]}),
                             rows, cols, ux({16'd0, iq_data[`DFX_KV_VS_LSB +: 16]}));
                // tiles touched: k from k0 to k1, n from j0 to j1 (tile index (n / L) * wn + k / W)
                p0 = R[iq_data[`DFX_KV_PREG_LSB +: 4]];
                p1 = p0 + rows - 32'd1;
                if (iq_data[`DFX_KV_TR_LSB]) begin k0 = p0; k1 = p1; j0 = 32'd0; j1 = cols - 32'd1; end
                else begin k0 = 32'd0; k1 = cols - 32'd1; j0 = p0; j1 = p1; end
                m = {24'd0, iq_data[`DFX_KV_M_LSB +: 40]};
                n_hw = rng(rows != 32'd0 && cols != 32'd0,
                           m + ((ux(j0 >> LL) * ux({16'd0, iq_data[`DFX_KV_WN_LSB +: 16]}) + ux(k0 >> LW)) << LTB),
                           m + ((ux(bt - 32'd1) * ux(iq_data[`DFX_KV_MBS_LSB +: 32])
                                 + ux(j1 >> LL) * ux({16'd0, iq_data[`DFX_KV_WN_LSB +: 16]}) + ux(k1 >> LW) + 64'd1) << LTB));
            end
            `DFX_OP_CONV1D, `DFX_OP_MASKEDMM, `DFX_OP_MM, `DFX_OP_LMHEAD: begin
                bt = (iq_data[`DFX_MM_BATCH_LSB +: 8] == 8'd0) ? 32'd1 : {24'd0, iq_data[`DFX_MM_BATCH_LSB +: 8]};
                kt = (cols + WIDTH - 1) >> LW;
                nt = (n3 + LANES - 1) >> LL;
                npad = (op == `DFX_OP_MASKEDMM) ? (((n3 + WIDTH - 1) >> LW) << LW) : n3;
                m = {24'd0, iq_data[`DFX_MM_W_LSB +: 40]};
                n_hr = rng(rows != 32'd0 && cols != 32'd0 && n3 != 32'd0, m,
                           m + ((ux(bt - 32'd1) * ux(iq_data[`DFX_MM_WBS_LSB +: 32])
                                 + ux(nt - 32'd1) * ux({16'd0, iq_data[`DFX_MM_WN_LSB +: 16]}) + ux(kt)) << LTB));
                x0 = ux({8'd0, iq_data[`DFX_MM_X_LSB +: 24]})
                     + sx(R[iq_data[`DFX_MM_XREG_LSB +: 4]]) * ux({16'd0, iq_data[`DFX_MM_XS_LSB +: 16]});
                n_br = bhull(x0, bt, ux({16'd0, iq_data[`DFX_MM_XBS_LSB +: 16]}), rows, cols,
                             ux({16'd0, iq_data[`DFX_MM_XS_LSB +: 16]}));
                n_br[RL-1] = n_br[RL-1] && n3 != 32'd0;
                if (iq_data[`DFX_MM_BIAS_LSB])
                    n_br = join2(n_br, hull(ux({8'd0, iq_data[`DFX_MM_AUX_LSB +: 24]}), 32'd1, n3, 64'd0));
                n_bw = bhull(ux({8'd0, iq_data[`DFX_MM_OUT_LSB +: 24]}), bt, ux({16'd0, iq_data[`DFX_MM_OBS_LSB +: 16]}),
                             rows, npad, ux({16'd0, iq_data[`DFX_MM_OS_LSB +: 16]}));
                n_bw[RL-1] = n_bw[RL-1] && cols != 32'd0;
                if (op == `DFX_OP_MASKEDMM || op == `DFX_OP_LMHEAD) begin
                    s1 = {16'd0, iq_data[`DFX_MM_AS_LSB +: 16]};
                    if (op == `DFX_OP_LMHEAD && s1 < 32'd3) s1 = 32'd3;
                    base = ux({8'd0, iq_data[`DFX_MM_AUX_LSB +: 24]});
                    n_bw = join2(n_bw, rng(rows != 32'd0 && cols != 32'd0 && n3 != 32'd0, base,
                                           base + ux(bt - 32'd1) * ux({16'd0, iq_data[`DFX_MM_ABS_LSB +: 16]})
                                           + (ux(rows) - 64'd1) * ux(s1) + ((op == `DFX_OP_LMHEAD) ? 64'd3 : 64'd1)));
                end
            end
            `DFX_OP_SEND: n_br = hull(ux({8'd0, iq_data[`DFX_NET_V_LSB +: 24]}), rows, cols, ux({16'd0, iq_data[`DFX_NET_VS_LSB +: 16]}));
            `DFX_OP_RECV: n_bw = hull(ux({8'd0, iq_data[`DFX_NET_V_LSB +: 24]}), rows, cols, ux({16'd0, iq_data[`DFX_NET_VS_LSB +: 16]}));
            `DFX_OP_ALLGATHER: begin
                n_br = hull(ux({8'd0, iq_data[`DFX_GATHER_SRC_LSB +: 24]}), rows, cols, ux({16'd0, iq_data[`DFX_GATHER_SS_LSB +: 16]}));
                n_bw = hull(ux({8'd0, iq_data[`DFX_GATHER_DST_LSB +: 24]}), rows, cols * {24'd0, ncores},
                            ux({16'd0, iq_data[`DFX_GATHER_DS_LSB +: 16]}));
            end
            default: begin                                                  // vector instructions
                n_br = hull(ux({8'd0, iq_data[`DFX_VEC_A_LSB +: 24]}), rows, cols, ux({16'd0, iq_data[`DFX_VEC_AS_LSB +: 16]}));
                base = ux({8'd0, iq_data[`DFX_VEC_B_LSB +: 24]});
                s1 = {16'd0, iq_data[`DFX_VEC_BS_LSB +: 16]};
                if (op == `DFX_OP_VADD || op == `DFX_OP_VSUB || op == `DFX_OP_VMUL || op == `DFX_OP_VMAX) begin
                    case (iq_data[`DFX_VEC_BCAST_LSB +: 2])
                        `DFX_BCAST_NONE: n_br = join2(n_br, hull(base, rows, cols, ux(s1)));
                        `DFX_BCAST_ROW:  n_br = join2(n_br, hull(base, 32'd1, cols, 64'd0));
                        `DFX_BCAST_COL:  n_br = join2(n_br, rng(rows != 32'd0 && cols != 32'd0, base,
                                                      base + (ux(rows) - 64'd1) * ux((s1 == 32'd0) ? 32'd1 : s1) + 64'd1));
                        default: ;
                    endcase
                end
                s1 = {16'd0, iq_data[`DFX_VEC_DS_LSB +: 16]};
                base = ux({8'd0, iq_data[`DFX_VEC_D_LSB +: 24]});
                if (op == `DFX_OP_VSUM || op == `DFX_OP_VSUMSQ || op == `DFX_OP_VRMAX)
                    n_bw = rng(rows != 32'd0 && cols != 32'd0, base,
                               base + (ux(rows) - 64'd1) * ux((s1 == 32'd0) ? 32'd1 : s1) + 64'd1);
                else n_bw = hull(base, rows, cols, ux(s1));
            end
        endcase
    end

    // decoded stage: the next unit instruction, waiting for its queue and the scoreboard
    reg d_v;
    reg [1:0] d_cls;
    reg [511:0] d_ins, d_regs;
    reg [95:0] d_cnt;
    reg [31:0] d_pc;
    reg [RNG-1:0] d_rng;
    reg d_haz;
    integer e;
    always @* begin
        d_haz = 1'b0;
        for (e = 0; e < NS; e = e + 1)
            if (s_val[e] && e[LQ+1:LQ] != d_cls && clash(d_rng, s_rng[e])) d_haz = 1'b1;
    end
    wire [LQ:0] d_room = q_n[d_cls];
    wire d_go = d_v && !d_haz && (d_room != UQ[LQ:0]) && !e_pend && (cs == C_RUN);
    wire [LQ-1:0] d_pos = q_hd[d_cls] + d_room[LQ-1:0];   // wraps within the queue
    wire [LQ+1:0] d_slot = {d_cls, d_pos};
    wire drained = !d_v && (q_n[0] == 0) && (q_n[1] == 0) && (q_n[2] == 0);
    wire [3:0] bar_units = iq_data[`DFX_BARRIER_UNITS_LSB +: 4];
    wire bar_ok = !d_v && (!bar_units[0] || q_n[0] == 0) && (!(bar_units[1] || bar_units[2]) || q_n[1] == 0)
                  && (!bar_units[3] || q_n[2] == 0);

    wire [3:0] a_rd = iq_data[`DFX_SETI_RD_LSB +: 4];
    wire [31:0] a_seti = iq_data[`DFX_SETI_IMM_LSB +: 32];
    wire [31:0] a_rs = R[iq_data[`DFX_ALUI_RS_LSB +: 4]];
    wire [31:0] a_imm = iq_data[`DFX_ALUI_IMM_LSB +: 32];
    wire [31:0] a_rt = R[iq_data[`DFX_ALU_RT_LSB +: 4]];
    reg [31:0] alu;
    always @* begin
        case (op)
            `DFX_OP_SETI: alu = a_seti;
            `DFX_OP_ADDI: alu = a_rs + a_imm;
            `DFX_OP_MULI: alu = a_rs * a_imm;
            default:      alu = a_rs + a_rt;
        endcase
    end
    wire is_alu = (op == `DFX_OP_SETI) || (op == `DFX_OP_ADDI) || (op == `DFX_OP_MULI) || (op == `DFX_OP_ADD);
    wire head_ok = (cs == C_RUN) && iq_valid && !e_pend && !bad && !neg && !rd_err && !wr_err;
    wire head_unit = info[2:0] != 3'd0;
    // the head leaves the fetch queue: a unit instruction into the decoded stage, a control one retires
    wire pop_unit = head_ok && head_unit && (!d_v || d_go);
    wire pop_ctrl = head_ok && !head_unit && (op == `DFX_OP_END ? drained : op == `DFX_OP_BARRIER ? bar_ok : 1'b1);
    assign iq_pop = pop_unit || pop_ctrl;

    // ================================================================ the units
    wire [511:0] dma_ins = s_ins[hs0], cmp_ins = s_ins[hs1], net_ins = s_ins[hs2];
    wire [63:0] dma_cnt = s_cnt[hs0][63:0], net_cnt = s_cnt[hs2][63:0];  // two counts each
    wire [95:0] cmp_cnt = s_cnt[hs1];
    wire cmp_is_mpu = dfx_op_unit(cmp_ins[5:0]) == {1'b1, 3'd2};
    wire dma_go = s_val[hs0] && !q_run[0] && !e_pend && !dma_busy;
    wire cmp_go = s_val[hs1] && !q_run[1] && !e_pend && !mpu_busy && !vpu_busy;
    wire net_go = s_val[hs2] && !q_run[2] && !e_pend && !net_busy;

    dfx_dma #(.LANES(LANES), .WIDTH(WIDTH), .NB(NB), .PBITS(HBM_BITS), .BA(BA), .AW(AW),
              .VBUF_WORDS(VBUF_WORDS), .HBM_CAP(HBM_CAP), .HAS_DDR(HAS_DDR), .DDR_CAP(DDR_CAP)) u_dma (
        .clk(clk), .rst(rst), .start(u_start[1]), .ins(dma_ins), .cnt0(dma_cnt[31:0]), .cnt1(dma_cnt[63:32]),
        .regs(s_regs[hs0]),
        .busy(dma_busy), .done(dma_done), .err(dma_err), .err_code(dma_code), .err_d1(dma_d1), .err_d2(dma_d2),
        .stall(dma_stall), .mem_ddr(dma_ddr), .vr_req(dma_vrq), .vr_addr(dma_vra), .vr_gnt(dma_ga || dma_gb),
        .vr_data(dma_sel ? rb_data : ra_data),
        .bw_en(dma_bw), .bw_addr(dma_ba), .bw_data(dma_bd), .bw_mask(dma_bm), .vw_gnt(dma_wg),
        .rq_valid(dma_rq_valid), .rq_ready(dma_rq_ready), .rq_beat(dma_rq_beat), .rq_n(dma_rq_n),
        .rd_valid(dma_ddr ? dd_valid : d_valid && d_tag == T_DMA), .rd_ready(dma_rd_ready),
        .rd_data(dma_ddr ? dd_data : d_data[HBM_BITS-1:0]), .rd_last(dma_ddr ? dd_last : d_last),
        .wq_valid(dma_wq_valid), .wq_ready(dma_ddr ? dd_w_ready : wq_ready && cs != C_STATUS),
        .wq_beat(dma_wq_beat), .wq_data(dma_wq_data),
        .wq_strb(dma_wq_strb), .wr_idle(wr_idle));

    dfx_mpu_path #(.LANES(LANES), .WIDTH(WIDTH), .MUL_LAT(MUL_LAT), .ADD_LAT(ADD_LAT), .NB(NB), .PBITS(HBM_BITS),
                   .CH(CH), .BA(BA), .AW(AW), .VBUF_WORDS(VBUF_WORDS), .HBM_CAP(HBM_CAP)) u_mpu (
        .clk(clk), .rst(rst), .start(u_start[2]), .ins(cmp_ins), .cnt0(cmp_cnt[31:0]), .cnt1(cmp_cnt[63:32]),
        .cnt2(cmp_cnt[95:64]), .regs(s_regs[hs1]),
        .busy(mpu_busy), .done(mpu_done), .err(mpu_err), .err_code(mpu_code), .stall(mpu_stall),
        .use_a(mpu_ua), .use_b(mpu_ub), .ra_addr(mpu_ra), .ra_data(ra_data), .rb_addr(mpu_rb), .rb_data(rb_data),
        .bw_en(mpu_bw), .bw_addr(mpu_ba), .bw_data(mpu_bd), .bw_mask(mpu_bm),
        .rq_valid(mpu_rq_valid), .rq_ready(mpu_rq_ready), .rq_beat(mpu_rq_beat), .rq_n(mpu_rq_n),
        .rd_valid(d_valid && d_tag == T_MPU), .rd_ready(mpu_rd_ready), .rd_data(d_data));

    dfx_vpu_path #(.VWIDTH(VWIDTH), .MUL_LAT(MUL_LAT), .ADD_LAT(ADD_LAT), .RECIP_LAT(RECIP_LAT),
                   .RSQRT_LAT(RSQRT_LAT), .NB(NB), .AW(AW), .VBUF_WORDS(VBUF_WORDS), .HBM_CAP(HBM_CAP)) u_vpu (
        .clk(clk), .rst(rst), .start(u_start[3]), .ins(cmp_ins), .cnt0(cmp_cnt[31:0]), .cnt1(cmp_cnt[63:32]),
        .busy(vpu_busy), .done(vpu_done), .err(vpu_err), .err_code(vpu_code),
        .use_a(vpu_ua), .use_b(vpu_ub), .ra_addr(vpu_ra), .ra_data(ra_data), .rb_addr(vpu_rb), .rb_data(rb_data),
        .bw_en(vpu_bw), .bw_addr(vpu_ba), .bw_data(vpu_bd), .bw_mask(vpu_bm));

    dfx_net #(.NB(NB), .RW(RING_WORDS), .AW(AW), .VBUF_WORDS(VBUF_WORDS), .HBM_CAP(HBM_CAP),
              .RING_TIMEOUT(RING_TIMEOUT)) u_net (
        .clk(clk), .rst(rst), .run_start(cs == C_START), .core_id(core_id), .ncores(ncores),
        .start(u_start[4]), .ins(net_ins), .cnt0(net_cnt[31:0]), .cnt1(net_cnt[63:32]),
        .busy(net_busy), .done(net_done), .err(net_err), .err_code(net_code), .err_d1(net_d1), .err_d2(net_d2),
        .stall(net_stall), .vr_req(net_vrq), .vr_addr(net_vra), .vr_gnt(net_ga || net_gb),
        .vr_data(net_sel ? rb_data : ra_data),
        .bw_en(net_bw), .bw_addr(net_ba), .bw_data(net_bd), .bw_mask(net_bm), .vw_gnt(net_wg),
        .s_tvalid(s_axis_ring_tvalid), .s_tready(s_axis_ring_tready), .s_tdata(s_axis_ring_tdata),
        .s_tlast(s_axis_ring_tlast), .m_tvalid(m_axis_ring_tvalid), .m_tready(m_axis_ring_tready),
        .m_tdata(m_axis_ring_tdata), .m_tlast(m_axis_ring_tlast));

    // a unit's error, the earliest in program order when several stop in one cycle
    wire [31:0] pc0 = s_pc[hs0], pc1 = s_pc[hs1], pc2 = s_pc[hs2];
    wire err1 = mpu_err || vpu_err;
    wire [7:0] code1 = mpu_err ? mpu_code : vpu_code;
    wire take0 = dma_err && (!err1 || pc0 < pc1) && (!net_err || pc0 < pc2);
    wire take1 = err1 && !take0 && (!net_err || pc1 < pc2);
    wire u_err = dma_err || err1 || net_err;
    wire [31:0] u_epc = take0 ? pc0 : take1 ? pc1 : pc2;

    // debug (simulation testbenches read these by hierarchical reference): instructions retired
    // this cycle, one bit per source (0 control, 1 DMA, 2 compute, 3 router), with pc and opcode
    reg [3:0] dbg_retire;
    reg [127:0] dbg_retire_pc;
    reg [23:0] dbg_retire_op;

    // status record
    wire [8*`DFX_STATUS_BYTES-1:0] rec;
    assign rec[8*`DFX_ST_MAGIC +: 32] = `DFX_STATUS_MAGIC;
    assign rec[8*`DFX_ST_CODE +: 32] = {24'd0, e_code};
    assign rec[8*`DFX_ST_CORE +: 32] = {24'd0, core_id};
    assign rec[8*`DFX_ST_PC +: 32] = e_pc;
    assign rec[8*`DFX_ST_DETAIL +: 32] = e_d1;
    assign rec[8*`DFX_ST_DETAIL2 +: 32] = e_d2;
    assign rec[8*`DFX_ST_CYCLES +: 64] = n_cycles;
    assign rec[8*`DFX_ST_BUSY_DMA +: 64] = n_busy[0];
    assign rec[8*`DFX_ST_BUSY_MPU +: 64] = n_busy[1];
    assign rec[8*`DFX_ST_BUSY_VPU +: 64] = n_busy[2];
    assign rec[8*`DFX_ST_BUSY_NET +: 64] = n_busy[3];
    assign rec[8*`DFX_ST_STALL_DMA +: 64] = n_stall[0];
    assign rec[8*`DFX_ST_STALL_MPU +: 64] = n_stall[1];
    assign rec[8*`DFX_ST_STALL_VPU +: 64] = n_stall[2];
    assign rec[8*`DFX_ST_STALL_NET +: 64] = n_stall[3];
    assign rec[8*`DFX_ST_RETIRED +: 64] = n_retired;
    assign rec[8*`DFX_ST_INSTR +: 512] = cur;
    assign rec[8*104 +: 8*24] = {(8*24){1'b0}};
    assign rec[8*192 +: 8*64] = {(8*64){1'b0}};
    reg [7:0] s_i;
    wire [63:0] s_beat = (a_status >> LPB) + {56'd0, s_i};
    assign wq_valid = (cs == C_STATUS) ? 1'b1 : dma_wq_valid && !dma_ddr;
    assign wq_beat = (cs == C_STATUS) ? s_beat[BA-1:0] : dma_wq_beat;
    assign wq_data = (cs == C_STATUS) ? rec[HBM_BITS*s_i +: HBM_BITS] : dma_wq_data;
    assign wq_strb = (cs == C_STATUS) ? {PB{1'b1}} : dma_wq_strb;

    // ================================================================ controller
    wire [1:0] dn = {1'b0, dma_done} + {1'b0, mpu_done || vpu_done} + {1'b0, net_done};
    wire units_idle = !dma_busy && !mpu_busy && !vpu_busy && !net_busy
                      && !u_start[1] && !u_start[2] && !u_start[3] && !u_start[4];
    wire no_end = !iq_valid && f_end && f_inflight == 0 && !f_push_now;
    integer u;
    always @(posedge clk) begin
        dbg_retire <= 4'd0;
        err_clr <= 1'b0;
        for (k = 1; k <= 4; k = k + 1) u_start[k] <= 1'b0;
        if (rst) begin
            cs <= C_IDLE;
            s_val <= {NS{1'b0}};
            d_v <= 1'b0;
            e_pend <= 1'b0;
        end else begin
            if (cs != C_IDLE && cs != C_DONE) begin
                n_cycles <= n_cycles + 64'd1;
                n_busy[0] <= n_busy[0] + {63'd0, dma_busy};
                n_busy[1] <= n_busy[1] + {63'd0, mpu_busy};
                n_busy[2] <= n_busy[2] + {63'd0, vpu_busy};
                n_busy[3] <= n_busy[3] + {63'd0, net_busy};
                n_stall[0] <= n_stall[0] + {63'd0, dma_stall};
                n_stall[1] <= n_stall[1] + {63'd0, mpu_stall};
                n_stall[3] <= n_stall[3] + {63'd0, net_stall};
                n_retired <= n_retired + {62'd0, dn} + {63'd0, pop_ctrl};
            end

            // ---------------- the fetch queue's head
            if (pop_ctrl) begin
                if (is_alu) R[a_rd] <= alu;
                dbg_retire[0] <= 1'b1;
                dbg_retire_pc[31:0] <= pc;
                dbg_retire_op[5:0] <= op;
                if (op == `DFX_OP_END) begin
                    cur <= iq_data;
                    e_pc <= pc;
                    cs <= C_END;
                end else pc <= pc + 32'd1;
            end
            if (pop_unit) begin
                d_v <= 1'b1;
                d_cls <= cls;
                d_ins <= iq_data;
                d_regs <= regs_flat;
                d_cnt <= {cv[2], cv[1], cv[0]};
                d_pc <= pc;
                d_rng <= {n_hw, n_hr, n_bw, n_br};
                pc <= pc + 32'd1;
            end else if (d_go) d_v <= 1'b0;
            // errors found at the head wait until every earlier instruction has finished
            if (cs == C_RUN && !e_pend && (rd_err || wr_err)) begin         // a memory port answered an error
                e_pend <= 1'b1; e_code <= `DFX_ERR_ADDRESS; e_d1 <= 32'hAE; e_pc <= pc;
            end else if (cs == C_RUN && !e_pend && drained) begin
                if (iq_valid && (bad || neg)) begin
                    e_pend <= 1'b1; e_code <= `DFX_ERR_ILLEGAL_INSTRUCTION; e_pc <= pc; cur <= iq_data;
                end else if (no_end || pc >= 32'd1048576) begin
                    e_pend <= 1'b1; e_code <= `DFX_ERR_NO_END; e_pc <= pc;
                end
            end

            // ---------------- issue: the decoded instruction into its queue
            if (d_go) begin
                s_val[d_slot] <= 1'b1;
                s_ins[d_slot] <= d_ins;
                s_regs[d_slot] <= d_regs;
                s_cnt[d_slot] <= d_cnt;
                s_pc[d_slot] <= d_pc;
                s_rng[d_slot] <= d_rng;
            end

            // ---------------- start and finish
            if (dma_go) begin u_start[1] <= 1'b1; q_run[0] <= 1'b1; end
            if (cmp_go) begin
                if (cmp_is_mpu) u_start[2] <= 1'b1; else u_start[3] <= 1'b1;
                q_run[1] <= 1'b1;
            end
            if (net_go) begin u_start[4] <= 1'b1; q_run[2] <= 1'b1; end
            if (dma_done) begin
                s_val[hs0] <= 1'b0; q_hd[0] <= q_hd[0] + 1'b1; q_run[0] <= 1'b0;
                dbg_retire[1] <= 1'b1; dbg_retire_pc[63:32] <= pc0; dbg_retire_op[11:6] <= dma_ins[5:0];
            end
            if (mpu_done || vpu_done) begin
                s_val[hs1] <= 1'b0; q_hd[1] <= q_hd[1] + 1'b1; q_run[1] <= 1'b0;
                dbg_retire[2] <= 1'b1; dbg_retire_pc[95:64] <= pc1; dbg_retire_op[17:12] <= cmp_ins[5:0];
            end
            if (net_done) begin
                s_val[hs2] <= 1'b0; q_hd[2] <= q_hd[2] + 1'b1; q_run[2] <= 1'b0;
                dbg_retire[3] <= 1'b1; dbg_retire_pc[127:96] <= pc2; dbg_retire_op[23:18] <= net_ins[5:0];
            end
            for (u = 0; u < 3; u = u + 1)
                q_n[u] <= q_n[u] + {{LQ{1'b0}}, d_go && d_cls == u[1:0]}
                          - {{LQ{1'b0}}, (u == 0) ? dma_done : (u == 1) ? (mpu_done || vpu_done) : net_done};
            if (u_err && (!e_pend || u_epc < e_pc)) begin
                e_pend <= 1'b1;
                e_pc <= u_epc;
                e_code <= take0 ? dma_code : take1 ? code1 : net_code;
                e_d1 <= take0 ? dma_d1 : take1 ? 32'd0 : net_d1;
                e_d2 <= take0 ? dma_d2 : take1 ? 32'd0 : net_d2;
                cur <= take0 ? dma_ins : take1 ? cmp_ins : net_ins;
            end

            case (cs)
                C_IDLE: if (ap_start) begin
                    cs <= C_START;
                    for (k = 0; k < 16; k = k + 1) R[k] <= 32'd0;
                    R[`DFX_ARGREG_NTOK] <= argr[A_NTOK];
                    R[`DFX_ARGREG_POS] <= argr[A_POS];
                    R[`DFX_ARGREG_CORE] <= argr[A_CORE];
                    R[`DFX_ARGREG_NCORES] <= argr[A_NCORES];
                    pc <= 32'd0;
                    e_pc <= 32'd0;
                    e_code <= `DFX_ERR_OK;
                    e_d1 <= 32'd0;
                    e_d2 <= 32'd0;
                    e_pend <= 1'b0;
                    cur <= 512'd0;
                    d_v <= 1'b0;
                    s_val <= {NS{1'b0}};
                    q_run <= 3'd0;
                    for (u = 0; u < 3; u = u + 1) begin
                        q_hd[u] <= {LQ{1'b0}};
                        q_n[u] <= {(LQ+1){1'b0}};
                    end
                    n_cycles <= 64'd0;
                    n_retired <= 64'd0;
                    for (k = 0; k < 4; k = k + 1) begin
                        n_busy[k] <= 64'd0;
                        n_stall[k] <= 64'd0;
                    end
                    err_clr <= 1'b1;
                end
                C_START: begin
                    if (a_entry[5:0] != 6'd0) begin
                        e_code <= `DFX_ERR_ILLEGAL_INSTRUCTION;
                        cs <= C_ERR;
                    end else cs <= C_RUN;
                end
                C_RUN: if (e_pend || u_err) cs <= C_HALT;
                C_HALT: if (units_idle) cs <= C_ERR;              // the units still running finish
                C_END, C_ERR: if (wr_idle && rd_idle && f_inflight == 0 && !rq_valid) begin
                    if (cs == C_END && (rd_err || wr_err)) begin
                        e_code <= `DFX_ERR_ADDRESS;
                        e_d1 <= 32'hAE;
                    end
                    s_i <= 8'd0;
                    cs <= C_STATUS;
                end
                C_STATUS: if (wq_ready) begin
                    if (s_i == SBEATS_M1) cs <= C_SDRAIN;
                    s_i <= s_i + 8'd1;
                end
                C_SDRAIN: if (wr_idle) cs <= C_DONE;
                C_DONE: cs <= C_IDLE;
                default: cs <= C_IDLE;
            endcase
        end
    end
    // bits no logic reads: the debug retire signals (testbenches read them by hierarchical
    // reference), the fetch queue's in_ready (f_req keeps it high), the status address past BA
    // beats, f_acc on ports of 512 bits or more (an instruction in one beat), HBM RLAST (the read
    // engine counts its bursts' beats), the control writes' strobes (whole words only) and the
    // entry address past the 40-bit ISA addresses
    wire _unused_ok = &{1'b0, dbg_retire, dbg_retire_pc, dbg_retire_op, iq_in_ready, s_beat[63:BA], f_acc,
                         wa_rel[1:0], ra_rel[1:0], hbm_rlast, s_axi_control_wstrb, a_entry[63:40], 1'b0};
endmodule

`default_nettype wire
