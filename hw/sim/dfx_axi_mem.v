// dfx_axi_mem: simulation model of one HBM pseudo-channel (or the DDR) behind an AXI4 slave.
//
// Why: the RTL testbench (dfx_tb) gives every dfx_core_flat port its own memory, so the core's DMA
// meets what it meets on a card: bursts, several requests in flight, latency and backpressure.
// Simulation only (Icarus 11 -g2012, Verilator 5 --timing); not synthesizable.
//
// * Storage: reg [BITS-1:0] mem [0:DEPTH-1], one AXI beat per word, byte k of a beat in bits
//   [8k+7:8k] (channel byte offset = beat * BITS/8 + k). Zero at time 0.
// * INCR bursts of 1..256 full-width beats (AxSIZE = log2(BITS/8)); up to QDEPTH read and QDEPTH
//   write bursts accepted ahead of their data; responses in order; WSTRB byte enables.
//   A beat past DEPTH, a narrower AxSIZE or a WLAST in the wrong place answers SLVERR (2'b10) and
//   writes nothing; a read beat past DEPTH returns zeros.
// * WREADY is raised only while a write address is queued (AXI lets a slave wait for AWVALID):
//   a master must not wait for WREADY before raising AWVALID.
// * Read latency L (+hbm_lat=L, or +ddr_lat=L when IS_DDR; default 1, at least 1): a read burst
//   whose address is accepted at clock edge t can hand over its first beat at edge t + L.
// * Backpressure (+hbm_stall=P, percent, default 0, the DDR too): on each cycle each of ARREADY, AWREADY,
//   WREADY is held low with probability P/100, and RVALID / BVALID are not raised (once raised
//   they stay up until taken, as AXI requires). The draws come from a per-instance xorshift32
//   seeded from +seed=S (default 1) and INDEX, so every simulator gives the same cycles.
// * Backdoor for the testbench (zero simulated time): tasks load / dump ($readmemh / $writememh
//   of the first n beats, hex, one beat per line, most significant byte first) and host_write /
//   host_read (n <= HOSTB bytes at a byte offset, across beats; byte j in bits [8j+7:8j]).
//
// All outputs are registers (no combinational path from the master's signals).
`default_nettype none

module dfx_axi_mem #(
    parameter integer BITS = 128,        // data bits per beat
    parameter integer DEPTH = 4096,      // beats
    parameter integer INDEX = 0,         // instance number (seeds the stall draws)
    parameter integer IS_DDR = 0,        // take the latency from +ddr_lat= instead of +hbm_lat=
    parameter integer QDEPTH = 8,        // bursts accepted ahead, per direction
    parameter integer HOSTB = 256        // bytes host_read / host_write move at most
) (
    input  wire              clk,
    input  wire              rst_n,
    input  wire              awvalid,
    output reg               awready,
    input  wire [63:0]       awaddr,
    input  wire [7:0]        awlen,
    input  wire [2:0]        awsize,
    input  wire [1:0]        awburst,
    input  wire              wvalid,
    output reg               wready,
    input  wire [BITS-1:0]   wdata,
    input  wire [BITS/8-1:0] wstrb,
    input  wire              wlast,
    output reg               bvalid,
    input  wire              bready,
    output reg  [1:0]        bresp,
    input  wire              arvalid,
    output reg               arready,
    input  wire [63:0]       araddr,
    input  wire [7:0]        arlen,
    input  wire [2:0]        arsize,
    input  wire [1:0]        arburst,
    output reg               rvalid,
    input  wire              rready,
    output reg  [BITS-1:0]   rdata,
    output reg  [1:0]        rresp,
    output reg               rlast
);
    localparam integer NB = BITS / 8;
    localparam integer LB = $clog2(NB);
    localparam [63:0] NBYTES = 64'd1 * DEPTH * NB;
    localparam [1:0] OKAY = 2'b00, SLVERR = 2'b10;

    reg [BITS-1:0] mem [0:DEPTH-1];

    integer lat, stall_pct;
    reg [31:0] rng;
    reg [63:0] cyc;

    // --- queues (state private to the clocked block below: blocking updates are race-free)
    reg [63:0] arq_beat [0:QDEPTH-1];   // first beat of the burst
    reg [7:0]  arq_len  [0:QDEPTH-1];
    reg        arq_bad  [0:QDEPTH-1];   // wrong size
    reg [63:0] arq_due  [0:QDEPTH-1];   // cycle from which its first beat may be presented
    integer arq_rd, arq_wr, arq_n, r_beat;
    reg [63:0] awq_beat [0:QDEPTH-1];
    reg [7:0]  awq_len  [0:QDEPTH-1];
    reg        awq_bad  [0:QDEPTH-1];
    integer awq_rd, awq_wr, awq_n, w_beat;
    reg        w_err;
    reg [1:0]  bq [0:QDEPTH-1];
    integer bq_rd, bq_wr, bq_n;

    integer k;
    reg [63:0] a;
    reg [BITS-1:0] word;
    reg ok;

    reg s_ar, s_aw, s_w, s_r, s_b;      // this cycle's draws: 1 = hold that signal low

    task draw(output reg s);             // one xorshift32 step
        begin
            rng = rng ^ (rng << 13);
            rng = rng ^ (rng >> 17);
            rng = rng ^ (rng << 5);
            s = (stall_pct > 0) && ((rng % 100) < stall_pct);
        end
    endtask

    initial begin
        if (IS_DDR != 0) begin
            if (!$value$plusargs("ddr_lat=%d", lat)) lat = 1;
        end else if (!$value$plusargs("hbm_lat=%d", lat)) lat = 1;
        if (lat < 1) lat = 1;
        if (!$value$plusargs("hbm_stall=%d", stall_pct)) stall_pct = 0;
        if (!$value$plusargs("seed=%d", rng)) rng = 1;
        rng = rng * 32'h9e3779b9 ^ (INDEX + 1) * 32'h85ebca6b;
        if (rng == 0) rng = 1;
        for (k = 0; k < 8; k = k + 1) draw(ok);
        for (k = 0; k < DEPTH; k = k + 1) mem[k] = {BITS{1'b0}};
    end

    task load(input [8*1024-1:0] file, input integer n);
        if (n > 0) $readmemh(file, mem, 0, n - 1);
    endtask

    task dump(input [8*1024-1:0] file, input integer n);
        if (n > 0) $writememh(file, mem, 0, n - 1);
    endtask

    task host_write(input [63:0] off, input integer n, input [8*HOSTB-1:0] data, output ok);
        integer j;
        reg [63:0] o;
        reg [BITS-1:0] b;
        begin
            ok = off + n <= NBYTES;
            for (j = 0; ok && j < n; j = j + 1) begin
                o = off + j;
                b = mem[o >> LB];
                b[8 * (o % NB) +: 8] = data[8 * j +: 8];
                mem[o >> LB] = b;
            end
        end
    endtask

    task host_read(input [63:0] off, input integer n, output [8*HOSTB-1:0] data, output ok);
        integer j;
        reg [63:0] o;
        reg [BITS-1:0] b;
        begin
            data = {8*HOSTB{1'b0}};
            ok = off + n <= NBYTES;
            for (j = 0; ok && j < n; j = j + 1) begin
                o = off + j;
                b = mem[o >> LB];
                data[8 * j +: 8] = b[8 * (o % NB) +: 8];
            end
        end
    endtask

    always @(posedge clk) begin
        if (!rst_n) begin
            cyc = 0;
            arq_rd = 0; arq_wr = 0; arq_n = 0; r_beat = 0;
            awq_rd = 0; awq_wr = 0; awq_n = 0; w_beat = 0; w_err = 1'b0;
            bq_rd = 0; bq_wr = 0; bq_n = 0;
            arready <= 1'b0; awready <= 1'b0; wready <= 1'b0;
            rvalid <= 1'b0; rdata <= {BITS{1'b0}}; rresp <= OKAY; rlast <= 1'b0;
            bvalid <= 1'b0; bresp <= OKAY;
        end else begin
            draw(s_ar); draw(s_aw); draw(s_w); draw(s_r); draw(s_b);
            // ---- handshakes of this edge
            if (arvalid && arready) begin
                arq_beat[arq_wr] = araddr >> LB;
                arq_len[arq_wr] = arlen;
                arq_bad[arq_wr] = (arsize != LB);
                arq_due[arq_wr] = cyc + lat - 1;
                arq_wr = (arq_wr + 1) % QDEPTH;
                arq_n = arq_n + 1;
            end
            if (awvalid && awready) begin
                awq_beat[awq_wr] = awaddr >> LB;
                awq_len[awq_wr] = awlen;
                awq_bad[awq_wr] = (awsize != LB);
                awq_wr = (awq_wr + 1) % QDEPTH;
                awq_n = awq_n + 1;
            end
            if (wvalid && wready) begin   // wready implies a queued write address
                a = awq_beat[awq_rd] + w_beat;
                ok = !awq_bad[awq_rd] && a < DEPTH && (wlast == (w_beat == awq_len[awq_rd]));
                if (ok) begin
                    word = mem[a];
                    for (k = 0; k < NB; k = k + 1)
                        if (wstrb[k]) word[8*k +: 8] = wdata[8*k +: 8];
                    mem[a] = word;
                end
                w_err = w_err || !ok;
                if (w_beat == awq_len[awq_rd]) begin
                    bq[bq_wr] = w_err ? SLVERR : OKAY;
                    bq_wr = (bq_wr + 1) % QDEPTH;
                    bq_n = bq_n + 1;
                    awq_rd = (awq_rd + 1) % QDEPTH;
                    awq_n = awq_n - 1;
                    w_beat = 0;
                    w_err = 1'b0;
                end else
                    w_beat = w_beat + 1;
            end
            // ---- read data: present the next beat when the output register is free
            if (!rvalid || rready) begin
                if (arq_n > 0 && cyc >= arq_due[arq_rd] && !s_r) begin
                    a = arq_beat[arq_rd] + r_beat;
                    ok = !arq_bad[arq_rd] && a < DEPTH;
                    rvalid <= 1'b1;
                    rdata <= ok ? mem[a] : {BITS{1'b0}};
                    rresp <= ok ? OKAY : SLVERR;
                    rlast <= (r_beat == arq_len[arq_rd]);
                    if (r_beat == arq_len[arq_rd]) begin
                        arq_rd = (arq_rd + 1) % QDEPTH;
                        arq_n = arq_n - 1;
                        r_beat = 0;
                    end else
                        r_beat = r_beat + 1;
                end else
                    rvalid <= 1'b0;
            end
            // ---- write responses
            if (!bvalid || bready) begin
                if (bq_n > 0 && !s_b) begin
                    bvalid <= 1'b1;
                    bresp <= bq[bq_rd];
                    bq_rd = (bq_rd + 1) % QDEPTH;
                    bq_n = bq_n - 1;
                end else
                    bvalid <= 1'b0;
            end
            // ---- readies for the next edge (a write burst holds its queue slot until its response is queued)
            arready <= (arq_n < QDEPTH) && !s_ar;
            awready <= (awq_n + bq_n < QDEPTH) && !s_aw;
            wready <= (awq_n > 0) && !s_w;
            cyc = cyc + 1;
        end
    end
endmodule

`default_nettype wire
