// dfx_tb: NCORES dfx_core_flat kernels on a ring, each with its HBM (and DDR) memory models,
// driven through a text command stream by the host backend `rtl` (dfx.host.rtl).
//
// Why: the Python host runtime (dfx.host.runtime.Session) drives the RTL exactly as it drives a
// card: it loads memory images, writes the ap_ctrl_hs registers, starts, waits, reads results.
// Every clock cycle is simulated here in HDL; Python only sends commands (as VTA's tsim does).
//
//   core i: m_axis_ring -> dfx_ring_link i -> core (i+1) % NCORES: s_axis_ring
//   core i, HBM channel c: dfx_axi_mem (HBM_BITS x MEM_BEATS); DDR (HAS_DDR): DDR_BITS x DDR_BEATS
//
// Plusargs: +cmd=PATH (commands; a named pipe), +rsp=PATH (replies, one line per
// command, flushed), +trace=PATH (optional: a line "core pc op cycle start", decimal, for every retired
// instruction, from the core's dbg_retire (a bit per retire source) / dbg_retire_pc / dbg_retire_op
// (32 and 6 bits per source); start is the cycle its unit's start pulse was seen (a control
// instruction: the cycle before it retires), for the performance model's checks; flushed at the end of
// every run), +waves=PATH (optional, needs the DFX_WAVES define: $dumpfile / $dumpvars),
// and the memory models' +hbm_lat= +ddr_lat= +hbm_stall= +seed= (hw/sim/dfx_axi_mem.v).
// With DFX_WLOG defined (the real core: these read its internals; a stand-in core is built without):
//   +wlog=PATH: a line for every write and retire of every core (dfx.host.divergence reads it),
//   all numbers decimal but ADDR, MASK and DATA (hex, no leading zeros):
//     s CORE ENTRY CYCLE                  core started a run at program address ENTRY (hex)
//     b CORE UNIT PC ADDR MASK DATA CYCLE on-chip buffer write: word ADDR + i gets bits
//                                         [16i+15:16i] of DATA where MASK bit i is set; UNIT
//                                         d DMA, m MPU, v VPU, n router; PC the instruction that
//                                         unit runs (the pc of its queue's head slot)
//     h CORE UNIT PC BEAT STRB DATA CYCLE HBM write beat into the write engine: flat byte
//                                         BEAT * HBM_BITS/8 + k gets bits [8k+7:8k] of DATA where
//                                         STRB bit k is set; UNIT d DMA (PC as above), s status
//                                         record (PC the instruction the record names)
//     x CORE UNIT PC BEAT STRB DATA CYCLE DDR write beat into the DDR port, as h (UNIT d: only the
//                                         DMA writes the DDR), the beat in HBM_BITS units too:
//                                         DDR byte BEAT * HBM_BITS/8 + k
//     r CORE PC OP CYCLE                  retire, as in +trace
//   +corrupt=N, +corrupt_core=C (default 0), +corrupt_bit=B (default 14): fault injection, the
//   N-th buffer write (from 1, counted from time 0) of core C has bit B of its lowest written
//   word inverted (the testbench flips it in the buffer's bank right after the write, before any
//   read); the write log shows the inverted word.
//
// At time 0 the bench resets the cores for 4 cycles, then on every core writes GIE = 1, IER = 1
// and 0 to every channel pointer argument (HBM, then DDR), and replies
//   ready NCORES CH HAS_DDR MEM_BEATS DDR_BEATS HOSTB
// Commands, one per line, read with $fscanf: give every field (a missing one would be taken from
// the next line). Numbers in hex; CH = a channel, CH = the number of channels meaning the DDR;
// OFF = a byte offset within that channel's memory; paths without white space.
//   load C CH N FILE        $readmemh FILE (one beat per line, most significant byte first)
//                           into beats 0..N-1 of core C's channel CH             -> ok
//   dump C CH N FILE        $writememh beats 0..N-1 of that channel to FILE      -> ok
//   wmem C CH OFF N HEX     write N (<= HOSTB) bytes at OFF; HEX is the bytes as one
//                           little-endian number of exactly 2N digits             -> ok
//   rmem C CH OFF N         read N (<= HOSTB) bytes at OFF                        -> ok HEX (same form)
//   wreg C OFF VAL          AXI4-Lite write on core C's s_axi_control             -> ok CYCLE
//                           (the write of ap_start to the control register marks C started)
//   rreg C OFF              AXI4-Lite read                                        -> ok VAL
//   run MAXCYC              advance the clock until every started core has raised its interrupt
//                           since its start, or MAXCYC cycles pass; then clear ISR of the cores
//                           that are done (AXI4-Lite writes)  -> done|timeout NOW S0 D0 S1 D1 ...
//                           Si = cycle of core i's start write, Di = cycle of its done ("-" when
//                           never started / not done since its start); NOW = the cycle counter.
//   fault L KIND K BIT      arm ring link L (out of core L): KIND none|drop|dup|corrupt, the K-th
//                           word from now (K >= 1); corrupt inverts tdata bit BIT      -> ok
//                           (takes one clock cycle)
//   quit                    -> bye, then $finish. End of file on +cmd also ends the simulation.
// An unknown or malformed command, or one naming a missing core or memory, answers "err MESSAGE".
// Cycle k is the value of the counter after the k-th rising clock edge: a register written at
// edge k, or a signal it raised, "happens at cycle k".
`default_nettype none
`include "dfx_kernel.vh"

module dfx_tb #(
    parameter integer NCORES = 1,
    parameter integer LANES = 4, WIDTH = 8, VWIDTH = 8,
    parameter integer MUL_LAT = 5, ADD_LAT = 7, RECIP_LAT = 2, RSQRT_LAT = 2,
    parameter integer CH = 4,
    parameter integer HBM_BITS = 128,
    parameter integer CH_BYTES_LOG2 = 28,
    parameter integer HAS_DDR = 0, DDR_BITS = 512, DDR_BYTES_LOG2 = 35,
    parameter integer VBUF_WORDS = 1048576, RING_WORDS = 8, IQ_DEPTH = 8, UQ = 4, RD_QD = 4,
    parameter integer CTRL_AW = 8,
    parameter integer RING_TIMEOUT = 100000,
    parameter integer MEM_BEATS = 4096,      // beats of each HBM channel model
    parameter integer DDR_BEATS = 4096,      // beats of the DDR model
    parameter integer HOSTB = 256            // bytes one wmem / rmem moves at most
);
    localparam integer RB = 16 * RING_WORDS + 32;
    // buffer words per access (dfx_core_flat's NB: its write port's lanes)
    localparam integer NB1 = (VWIDTH > WIDTH) ? VWIDTH : WIDTH;
    localparam integer NB2 = (HBM_BITS / 16 > RING_WORDS) ? HBM_BITS / 16 : RING_WORDS;
    localparam integer NB = (NB1 > NB2) ? NB1 : NB2;
    localparam integer NM = CH + ((HAS_DDR != 0) ? 1 : 0);     // memory models per core
    localparam [1:0] OP_LOAD = 2'd0, OP_DUMP = 2'd1, OP_WMEM = 2'd2, OP_RMEM = 2'd3;

    reg clk = 1'b0;
    reg rst_n = 1'b0;
    reg [63:0] cycle = 64'd0;
    always #5 clk = ~clk;
    always @(posedge clk) cycle <= cycle + 64'd1;

    // AXI4-Lite masters (address and data shared, valid per core)
    reg [NCORES-1:0] l_awvalid = 0, l_wvalid = 0, l_bready = 0, l_arvalid = 0, l_rready = 0;
    reg [CTRL_AW-1:0] l_awaddr = 0, l_araddr = 0;
    reg [31:0] l_wdata = 32'd0;
    wire [NCORES-1:0] l_awready, l_wready, l_bvalid, l_arready, l_rvalid, irq;
    wire [32*NCORES-1:0] l_rdata;

    // ring: rm_* = core i's output (link i's input), rs_* = link i's output (core i+1's input)
    wire [NCORES-1:0] rm_valid, rm_ready, rm_last, rs_valid, rs_ready, rs_last;
    wire [RB*NCORES-1:0] rm_data, rs_data;
    reg [NCORES-1:0] f_arm = 0;
    reg [1:0] f_kind = 2'd0;
    reg [31:0] f_k = 32'd0, f_bit = 32'd0;

    wire [64*NCORES-1:0] done_at;              // per core: cycle of its last interrupt rise
    integer rsp = 0, trace = 0, wlog = 0;
    integer c_n = 0, c_core = 0, c_bit = 14;        // +corrupt: write number, core, bit

    // backdoor requests: the interpreter sets bd_*, triggers bd_go and waits for bd_done; the
    // memory model (bd_core, bd_ch) serves the request and writes the reply
    event bd_go, bd_done;
    integer bd_core = 0, bd_ch = 0, bd_n = 0;
    reg [1:0] bd_op = OP_LOAD;
    reg [63:0] bd_off = 64'd0;
    reg [8*1024-1:0] bd_file = 0;
    reg [8*HOSTB-1:0] bd_data = 0;

    task reply_mem(input [1:0] op, input ok, input [8*HOSTB-1:0] d, input integer n);
        integer j;
        begin
            if (!ok)
                $fwrite(rsp, "err bytes outside the memory\n");
            else if (op == OP_RMEM) begin
                $fwrite(rsp, "ok ");
                for (j = n - 1; j >= 0; j = j - 1) $fwrite(rsp, "%02h", d[8 * j +: 8]);
                $fwrite(rsp, "\n");
            end else
                $fwrite(rsp, "ok\n");
            $fflush(rsp);
        end
    endtask

    genvar gi, gc;
    generate for (gi = 0; gi < NCORES; gi = gi + 1) begin : g_core
        wire [CH-1:0] awvalid, awready, wvalid, wready, wlast, bvalid, bready;
        wire [CH-1:0] arvalid, arready, rvalid, rready, rlast;
        wire [64*CH-1:0] awaddr, araddr;
        wire [8*CH-1:0] awlen, arlen;
        wire [3*CH-1:0] awsize, arsize;
        wire [2*CH-1:0] awburst, arburst, bresp, rresp;
        wire [HBM_BITS*CH-1:0] wdata, rdata;
        wire [HBM_BITS/8*CH-1:0] wstrb;
        wire d_awvalid, d_awready, d_wvalid, d_wready, d_wlast, d_bvalid, d_bready;
        wire d_arvalid, d_arready, d_rvalid, d_rready, d_rlast;
        wire [63:0] d_awaddr, d_araddr;
        wire [7:0] d_awlen, d_arlen;
        wire [2:0] d_awsize, d_arsize;
        wire [1:0] d_awburst, d_arburst, d_bresp, d_rresp;
        wire [DDR_BITS-1:0] d_wdata, d_rdata;
        wire [DDR_BITS/8-1:0] d_wstrb;
        localparam integer PREV = (gi + NCORES - 1) % NCORES;

        dfx_core_flat #(
            .LANES(LANES), .WIDTH(WIDTH), .VWIDTH(VWIDTH), .MUL_LAT(MUL_LAT), .ADD_LAT(ADD_LAT),
            .RECIP_LAT(RECIP_LAT), .RSQRT_LAT(RSQRT_LAT), .CH(CH), .HBM_BITS(HBM_BITS),
            .CH_BYTES_LOG2(CH_BYTES_LOG2), .HAS_DDR(HAS_DDR), .DDR_BITS(DDR_BITS),
            .DDR_BYTES_LOG2(DDR_BYTES_LOG2), .VBUF_WORDS(VBUF_WORDS), .RING_WORDS(RING_WORDS),
            .IQ_DEPTH(IQ_DEPTH), .UQ(UQ), .RD_QD(RD_QD), .CTRL_AW(CTRL_AW), .RING_TIMEOUT(RING_TIMEOUT)
        ) u_core (
            .ap_clk(clk), .ap_rst_n(rst_n), .interrupt(irq[gi]),
            .s_axi_control_awvalid(l_awvalid[gi]), .s_axi_control_awready(l_awready[gi]),
            .s_axi_control_awaddr(l_awaddr),
            .s_axi_control_wvalid(l_wvalid[gi]), .s_axi_control_wready(l_wready[gi]),
            .s_axi_control_wdata(l_wdata), .s_axi_control_wstrb(4'hf),
            .s_axi_control_bvalid(l_bvalid[gi]), .s_axi_control_bready(l_bready[gi]), .s_axi_control_bresp(),
            .s_axi_control_arvalid(l_arvalid[gi]), .s_axi_control_arready(l_arready[gi]),
            .s_axi_control_araddr(l_araddr),
            .s_axi_control_rvalid(l_rvalid[gi]), .s_axi_control_rready(l_rready[gi]),
            .s_axi_control_rdata(l_rdata[32*gi +: 32]), .s_axi_control_rresp(),
            .hbm_awvalid(awvalid), .hbm_awready(awready), .hbm_awaddr(awaddr), .hbm_awlen(awlen),
            .hbm_awsize(awsize), .hbm_awburst(awburst),
            .hbm_wvalid(wvalid), .hbm_wready(wready), .hbm_wdata(wdata), .hbm_wstrb(wstrb), .hbm_wlast(wlast),
            .hbm_bvalid(bvalid), .hbm_bready(bready), .hbm_bresp(bresp),
            .hbm_arvalid(arvalid), .hbm_arready(arready), .hbm_araddr(araddr), .hbm_arlen(arlen),
            .hbm_arsize(arsize), .hbm_arburst(arburst),
            .hbm_rvalid(rvalid), .hbm_rready(rready), .hbm_rdata(rdata), .hbm_rresp(rresp), .hbm_rlast(rlast),
            .ddr_awvalid(d_awvalid), .ddr_awready(d_awready), .ddr_awaddr(d_awaddr), .ddr_awlen(d_awlen),
            .ddr_awsize(d_awsize), .ddr_awburst(d_awburst),
            .ddr_wvalid(d_wvalid), .ddr_wready(d_wready), .ddr_wdata(d_wdata), .ddr_wstrb(d_wstrb),
            .ddr_wlast(d_wlast),
            .ddr_bvalid(d_bvalid), .ddr_bready(d_bready), .ddr_bresp(d_bresp),
            .ddr_arvalid(d_arvalid), .ddr_arready(d_arready), .ddr_araddr(d_araddr), .ddr_arlen(d_arlen),
            .ddr_arsize(d_arsize), .ddr_arburst(d_arburst),
            .ddr_rvalid(d_rvalid), .ddr_rready(d_rready), .ddr_rdata(d_rdata), .ddr_rresp(d_rresp),
            .ddr_rlast(d_rlast),
            .s_axis_ring_tvalid(rs_valid[PREV]), .s_axis_ring_tready(rs_ready[PREV]),
            .s_axis_ring_tdata(rs_data[RB*PREV +: RB]), .s_axis_ring_tlast(rs_last[PREV]),
            .m_axis_ring_tvalid(rm_valid[gi]), .m_axis_ring_tready(rm_ready[gi]),
            .m_axis_ring_tdata(rm_data[RB*gi +: RB]), .m_axis_ring_tlast(rm_last[gi])
        );

        for (gc = 0; gc < CH; gc = gc + 1) begin : g_ch
            reg [8*HOSTB-1:0] d;
            reg ok;
            dfx_axi_mem #(.BITS(HBM_BITS), .DEPTH(MEM_BEATS), .INDEX(gi * NM + gc), .HOSTB(HOSTB)) u_mem (
                .clk(clk), .rst_n(rst_n),
                .awvalid(awvalid[gc]), .awready(awready[gc]), .awaddr(awaddr[64*gc +: 64]),
                .awlen(awlen[8*gc +: 8]), .awsize(awsize[3*gc +: 3]), .awburst(awburst[2*gc +: 2]),
                .wvalid(wvalid[gc]), .wready(wready[gc]), .wdata(wdata[HBM_BITS*gc +: HBM_BITS]),
                .wstrb(wstrb[HBM_BITS/8*gc +: HBM_BITS/8]), .wlast(wlast[gc]),
                .bvalid(bvalid[gc]), .bready(bready[gc]), .bresp(bresp[2*gc +: 2]),
                .arvalid(arvalid[gc]), .arready(arready[gc]), .araddr(araddr[64*gc +: 64]),
                .arlen(arlen[8*gc +: 8]), .arsize(arsize[3*gc +: 3]), .arburst(arburst[2*gc +: 2]),
                .rvalid(rvalid[gc]), .rready(rready[gc]), .rdata(rdata[HBM_BITS*gc +: HBM_BITS]),
                .rresp(rresp[2*gc +: 2]), .rlast(rlast[gc])
            );
            always @(bd_go) if (bd_core == gi && bd_ch == gc) begin
                ok = 1'b1;
                case (bd_op)
                    OP_LOAD: u_mem.load(bd_file, bd_n);
                    OP_DUMP: u_mem.dump(bd_file, bd_n);
                    OP_WMEM: u_mem.host_write(bd_off, bd_n, bd_data, ok);
                    default: u_mem.host_read(bd_off, bd_n, d, ok);
                endcase
                reply_mem(bd_op, ok, d, bd_n);
                -> bd_done;
            end
        end

        if (HAS_DDR != 0) begin : g_ddr
            reg [8*HOSTB-1:0] d;
            reg ok;
            dfx_axi_mem #(.BITS(DDR_BITS), .DEPTH(DDR_BEATS), .INDEX(gi * NM + CH), .IS_DDR(1),
                          .HOSTB(HOSTB)) u_mem (
                .clk(clk), .rst_n(rst_n),
                .awvalid(d_awvalid), .awready(d_awready), .awaddr(d_awaddr), .awlen(d_awlen),
                .awsize(d_awsize), .awburst(d_awburst),
                .wvalid(d_wvalid), .wready(d_wready), .wdata(d_wdata), .wstrb(d_wstrb), .wlast(d_wlast),
                .bvalid(d_bvalid), .bready(d_bready), .bresp(d_bresp),
                .arvalid(d_arvalid), .arready(d_arready), .araddr(d_araddr), .arlen(d_arlen),
                .arsize(d_arsize), .arburst(d_arburst),
                .rvalid(d_rvalid), .rready(d_rready), .rdata(d_rdata), .rresp(d_rresp), .rlast(d_rlast)
            );
            always @(bd_go) if (bd_core == gi && bd_ch == CH) begin
                ok = 1'b1;
                case (bd_op)
                    OP_LOAD: u_mem.load(bd_file, bd_n);
                    OP_DUMP: u_mem.dump(bd_file, bd_n);
                    OP_WMEM: u_mem.host_write(bd_off, bd_n, bd_data, ok);
                    default: u_mem.host_read(bd_off, bd_n, d, ok);
                endcase
                reply_mem(bd_op, ok, d, bd_n);
                -> bd_done;
            end
        end else begin : g_no_ddr
            assign d_awready = 1'b0, d_wready = 1'b0, d_bvalid = 1'b0, d_bresp = 2'd0;
            assign d_arready = 1'b0, d_rvalid = 1'b0, d_rdata = {DDR_BITS{1'b0}}, d_rresp = 2'd0, d_rlast = 1'b0;
        end

        dfx_ring_link #(.W(RB)) u_link (
            .clk(clk), .rst_n(rst_n),
            .s_tvalid(rm_valid[gi]), .s_tready(rm_ready[gi]), .s_tdata(rm_data[RB*gi +: RB]), .s_tlast(rm_last[gi]),
            .m_tvalid(rs_valid[gi]), .m_tready(rs_ready[gi]), .m_tdata(rs_data[RB*gi +: RB]), .m_tlast(rs_last[gi]),
            .arm(f_arm[gi]), .arm_kind(f_kind), .arm_k(f_k), .arm_bit(f_bit)
        );

        // done monitor: the cycle of every rise of the interrupt
        reg irq_q = 1'b0;
        reg [63:0] done_r = 64'd0;
        always @(posedge clk) begin
            irq_q <= irq[gi];
            if (irq[gi] && !irq_q) done_r <= cycle;
        end
        assign done_at[64*gi +: 64] = done_r;

        // the cycle each retire source's running instruction started (its unit's start pulse;
        // a control instruction retires the cycle it leaves the fetch queue)
        reg [63:0] st_at [0:3];
        always @(posedge clk) begin
            st_at[0] <= cycle;
            if (u_core.u_start[1]) st_at[1] <= cycle;
            if (u_core.u_start[2] || u_core.u_start[3]) st_at[2] <= cycle;
            if (u_core.u_start[4]) st_at[3] <= cycle;
        end
        integer ri;
        always @(posedge clk)
            for (ri = 0; ri < 4; ri = ri + 1)
                if (u_core.dbg_retire[ri]) begin
                    if (trace != 0)
                        $fwrite(trace, "%0d %0d %0d %0d %0d\n", gi, u_core.dbg_retire_pc[32*ri +: 32],
                                u_core.dbg_retire_op[6*ri +: 6], cycle, st_at[ri]);
                    if (wlog != 0)
                        $fwrite(wlog, "r %0d %0d %0d %0d\n", gi, u_core.dbg_retire_pc[32*ri +: 32],
                                u_core.dbg_retire_op[6*ri +: 6], cycle);
                end

`ifdef DFX_WLOG
        if (1) begin : g_wlog
            // +corrupt: this core's c_n-th buffer write has bit c_bit of its lowest word inverted: the
            // word is flipped in the buffer's bank (dfx_vbuf: word a in bank a % NB, row a / NB) one
            // time unit after the edge that wrote it, before any read can see it
            integer seen = 0, ci, lane = 0;
            reg [63:0] fword = 64'd0;
            event flip;
            for (gc = 0; gc < NB; gc = gc + 1) begin : g_flip
                always @(flip) if (fword % NB == gc) begin
                    #1;
                    u_core.u_vbuf.g_bank[gc].mem[fword / NB][c_bit] = !u_core.u_vbuf.g_bank[gc].mem[fword / NB][c_bit];
                end
            end

            // the write log: what the buffer's write port, the HBM write engine and the DDR port take
            // at this edge
            reg [16*NB-1:0] bdata;
            always @(posedge clk) begin
                bdata = u_core.bw_data;
                if (u_core.bw_en && c_n != 0 && c_core == gi && seen < c_n) begin
                    seen = seen + 1;
                    if (seen == c_n) begin
                        for (ci = NB - 1; ci >= 0; ci = ci - 1) if (u_core.bw_mask[ci]) lane = ci;
                        fword = (u_core.bw_addr + lane) % VBUF_WORDS;
                        bdata[16 * lane + c_bit] = !bdata[16 * lane + c_bit];
                        -> flip;
                    end
                end
                if (wlog != 0) begin
                    if (u_core.core_start) $fwrite(wlog, "s %0d %0h %0d\n", gi, u_core.a_entry, cycle);
                    if (u_core.bw_en)
                        $fwrite(wlog, "b %0d %s %0d %0h %0h %0h %0d\n", gi,
                                u_core.mpu_bw ? "m" : u_core.vpu_bw ? "v" : u_core.dma_wg ? "d" : "n",
                                (u_core.mpu_bw || u_core.vpu_bw) ? u_core.pc1 : u_core.dma_wg ? u_core.pc0 : u_core.pc2,
                                u_core.bw_addr, u_core.bw_mask, bdata, cycle);
                    if (u_core.wq_valid && u_core.wq_ready)
                        // the DMA's beat, or (the units idle: dma_wq_valid low) the status record's
                        $fwrite(wlog, "h %0d %s %0d %0h %0h %0h %0d\n", gi, u_core.dma_wq_valid ? "d" : "s",
                                u_core.dma_wq_valid ? u_core.pc0 : u_core.e_pc,
                                u_core.wq_beat, u_core.wq_strb, u_core.wq_data, cycle);
                    if (u_core.dma_ddr && u_core.dma_wq_valid && u_core.dd_w_ready)
                        $fwrite(wlog, "x %0d d %0d %0h %0h %0h %0d\n", gi, u_core.pc0, u_core.dma_wq_beat,
                                u_core.dma_wq_strb, u_core.dma_wq_data, cycle);
                end
            end
        end
`endif
    end endgenerate

    // ------------------------------------------------------------------ AXI4-Lite master
    // Every task starts and ends 1 time unit after a rising edge; handshakes are sampled at the
    // falling edge before the rising edge that completes them.
    task axil_write(input integer c, input [CTRL_AW-1:0] addr, input [31:0] data, output [63:0] at);
        reg aw, w, b;
        begin
            l_awaddr = addr;
            l_wdata = data;
            l_awvalid[c] = 1'b1;
            l_wvalid[c] = 1'b1;
            l_bready[c] = 1'b1;
            while (l_awvalid[c] || l_wvalid[c]) begin
                @(negedge clk);
                aw = l_awready[c];
                w = l_wready[c];
                @(posedge clk); #1;
                if (aw) l_awvalid[c] = 1'b0;
                if (w) l_wvalid[c] = 1'b0;
            end
            at = cycle;
            b = 1'b0;
            while (!b) begin
                @(negedge clk);
                b = l_bvalid[c];
                @(posedge clk); #1;
            end
            l_bready[c] = 1'b0;
        end
    endtask

    task axil_read(input integer c, input [CTRL_AW-1:0] addr, output [31:0] data);
        reg ar, r;
        begin
            l_araddr = addr;
            l_arvalid[c] = 1'b1;
            l_rready[c] = 1'b1;
            while (l_arvalid[c]) begin
                @(negedge clk);
                ar = l_arready[c];
                @(posedge clk); #1;
                if (ar) l_arvalid[c] = 1'b0;
            end
            r = 1'b0;
            while (!r) begin
                @(negedge clk);
                r = l_rvalid[c];
                data = l_rdata[32*c +: 32];
                @(posedge clk); #1;
            end
            l_rready[c] = 1'b0;
        end
    endtask

    // ------------------------------------------------------------------ command interpreter
    reg [NCORES-1:0] started = 0;
    reg [63:0] start_at [0:NCORES-1];
    reg [8*1024-1:0] path;
    reg [8*8-1:0] cmd, kind;
    reg [63:0] a0, a1, a2, a3, t0, at;
    reg [31:0] val;
    reg junk;
    integer fd, i, nf;

    function is_done(input integer c);
        is_done = started[c] && done_at[64*c +: 64] > start_at[c];
    endfunction

    function all_done(input integer dummy);
        integer c;
        begin
            all_done = 1'b1;
            for (c = 0; c < NCORES; c = c + 1)
                if (started[c] && !is_done(c)) all_done = 1'b0;
        end
    endfunction

    function mem_ok(input [63:0] c, input [63:0] ch);   // core c has a memory model ch
        mem_ok = c < NCORES && (ch < CH || (ch == CH && HAS_DDR != 0));
    endfunction

    task backdoor(input [1:0] op, input [63:0] c, input [63:0] ch);
        begin
            bd_op = op;
            bd_core = c;
            bd_ch = ch;
            -> bd_go;
            @(bd_done);
        end
    endtask

    task end_line(output junk);        // read past the end of the command line: junk = 1 if not blank
        integer c;
        begin
            junk = 1'b0;
            c = $fgetc(fd);
            while (c != 10 && c != -1) begin
                if (c != 32 && c != 9 && c != 13) junk = 1'b1;
                c = $fgetc(fd);
            end
        end
    endtask

    task err(input [8*64-1:0] msg);
        begin
            $fwrite(rsp, "err %0s\n", msg);
            $fflush(rsp);
        end
    endtask

    initial begin
        if (!$value$plusargs("cmd=%s", path)) begin
            $display("dfx_tb: +cmd=PATH is required");
            $finish;
        end
        fd = $fopen(path, "r");
        if (!$value$plusargs("rsp=%s", path)) begin
            $display("dfx_tb: +rsp=PATH is required");
            $finish;
        end
        rsp = $fopen(path, "w");
        if ($value$plusargs("trace=%s", path)) trace = $fopen(path, "w");
`ifdef DFX_WLOG
        if ($value$plusargs("wlog=%s", path)) wlog = $fopen(path, "w");
        if ($value$plusargs("corrupt=%d", c_n)) begin
            if (!$value$plusargs("corrupt_core=%d", c_core)) c_core = 0;
            if (!$value$plusargs("corrupt_bit=%d", c_bit)) c_bit = 14;
        end
`endif
`ifdef DFX_WAVES
        if ($value$plusargs("waves=%s", path)) begin
            $dumpfile(path);
            $dumpvars(0, dfx_tb);
        end
`endif
        for (i = 0; i < NCORES; i = i + 1) start_at[i] = 64'd0;
        repeat (4) @(posedge clk);
        #1 rst_n = 1'b1;
        for (i = 0; i < NCORES; i = i + 1) begin
            axil_write(i, `DFX_REG_GIE, 32'd1, at);
            axil_write(i, `DFX_REG_IER, 32'd1, at);
            for (a0 = 0; a0 < 2 * NM; a0 = a0 + 1) axil_write(i, `DFX_ARG_PTR_BASE + 4 * a0, 32'd0, at);
        end
        $fwrite(rsp, "ready %0h %0h %0h %0h %0h %0h\n", NCORES, CH, HAS_DDR, MEM_BEATS, DDR_BEATS, HOSTB);
        $fflush(rsp);
        forever begin
            cmd = 0;
            if ($fscanf(fd, "%s", cmd) != 1) begin                        // end of file
                if (trace != 0) $fclose(trace);
                if (wlog != 0) $fclose(wlog);
                $finish;
            end
            if (cmd == "load" || cmd == "dump") nf = $fscanf(fd, "%h %h %h %s", a0, a1, a2, bd_file) - 4;
            else if (cmd == "wmem") nf = $fscanf(fd, "%h %h %h %h %h", a0, a1, a2, a3, bd_data) - 5;
            else if (cmd == "rmem") nf = $fscanf(fd, "%h %h %h %h", a0, a1, a2, a3) - 4;
            else if (cmd == "wreg") nf = $fscanf(fd, "%h %h %h", a0, a1, val) - 3;
            else if (cmd == "rreg") nf = $fscanf(fd, "%h %h", a0, a1) - 2;
            else if (cmd == "run") nf = $fscanf(fd, "%h", a0) - 1;
            else if (cmd == "fault") nf = $fscanf(fd, "%h %s %h %h", a0, kind, a2, a3) - 4;
            else nf = 0;
            end_line(junk);
            if (cmd != "load" && cmd != "dump" && cmd != "wmem" && cmd != "rmem" && cmd != "wreg" && cmd != "rreg"
                && cmd != "run" && cmd != "fault" && cmd != "quit") err("unknown command");
            else if (nf != 0 || junk) err("malformed command (see dfx_tb.v)");
            else if (cmd == "load" || cmd == "dump") begin
                if (!mem_ok(a0, a1)) err("no such memory");
                else if (a2 > ((a1 == CH) ? DDR_BEATS : MEM_BEATS)) err("more beats than the memory holds");
                else begin
                    bd_n = a2;
                    backdoor(cmd == "load" ? OP_LOAD : OP_DUMP, a0, a1);
                end
            end else if (cmd == "wmem" || cmd == "rmem") begin
                if (!mem_ok(a0, a1)) err("no such memory");
                else if (a3 > HOSTB) err("too many bytes for one command");
                else begin
                    bd_off = a2;
                    bd_n = a3;
                    backdoor(cmd == "wmem" ? OP_WMEM : OP_RMEM, a0, a1);
                end
            end else if (cmd == "wreg") begin
                if (a0 >= NCORES) err("no such core");
                else begin
                    axil_write(a0, a1, val, at);
                    if (a1 == `DFX_REG_CTRL && val[0]) begin
                        started[a0] = 1'b1;
                        start_at[a0] = at;
                    end
                    $fwrite(rsp, "ok %0h\n", at);
                    $fflush(rsp);
                end
            end else if (cmd == "rreg") begin
                if (a0 >= NCORES) err("no such core");
                else begin
                    axil_read(a0, a1, val);
                    $fwrite(rsp, "ok %0h\n", val);
                    $fflush(rsp);
                end
            end else if (cmd == "run") begin
                t0 = cycle;
                while (!all_done(0) && cycle - t0 < a0) begin
                    @(posedge clk); #1;
                end
                a1 = all_done(0);
                for (i = 0; i < NCORES; i = i + 1)
                    if (is_done(i) && irq[i]) axil_write(i, `DFX_REG_ISR, 32'd1, at);
                if (trace != 0) $fflush(trace);
                if (wlog != 0) $fflush(wlog);
                $fwrite(rsp, "%0s %0h", a1 ? "done" : "timeout", cycle);
                for (i = 0; i < NCORES; i = i + 1) begin
                    if (started[i]) $fwrite(rsp, " %0h", start_at[i]);
                    else $fwrite(rsp, " -");
                    if (is_done(i)) $fwrite(rsp, " %0h", done_at[64*i +: 64]);
                    else $fwrite(rsp, " -");
                end
                $fwrite(rsp, "\n");
                $fflush(rsp);
            end else if (cmd == "fault") begin
                if (a0 >= NCORES) err("no such link");
                else if (kind != "none" && kind != "drop" && kind != "dup" && kind != "corrupt") err("KIND: none|drop|dup|corrupt");
                else begin
                    f_kind = (kind == "drop") ? 2'd1 : (kind == "dup") ? 2'd2 : (kind == "corrupt") ? 2'd3 : 2'd0;
                    f_k = a2;
                    f_bit = a3;
                    f_arm[a0] = 1'b1;
                    @(posedge clk); #1;
                    f_arm[a0] = 1'b0;
                    $fwrite(rsp, "ok\n");
                    $fflush(rsp);
                end
            end else begin                                               // quit
                $fwrite(rsp, "bye\n");
                $fflush(rsp);
                if (trace != 0) $fclose(trace);
                if (wlog != 0) $fclose(wlog);
                $finish;
            end
        end
    end
endmodule

`default_nettype wire
