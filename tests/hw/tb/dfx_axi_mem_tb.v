// Self-checking bench of the memory model hw/sim/dfx_axi_mem.v (run by tests/hw/test_harness.py).
//
// A synchronous AXI4 master with random valid gaps and random ready on R and B:
//   phase 0  one single-beat read on an idle memory: prints "lat N" (AR handshake to R handshake)
//   phase 1  NB write bursts (random start beat, some running past DEPTH, 1..16 beats, random
//            strobes), addresses issued ahead of and independently from the data; every BRESP
//            checked (SLVERR when a beat is past the end); a shadow copy follows the writes
//   phase 2  NB read bursts issued back to back (several outstanding); every beat checked against
//            the shadow (zeros and SLVERR past the end), and RLAST
//   end      prints "cycles N" (the whole run) and "errors N", then $finish
// Randomness: an xorshift32 of its own, so both simulators see the same stimulus.
`default_nettype none

module dfx_axi_mem_tb #(
    parameter integer BITS = 128,
    parameter integer DEPTH = 256,
    parameter integer NB = 120
);
    localparam integer NBY = BITS / 8;
    localparam integer LB = $clog2(NBY);

    reg clk = 1'b0, rst_n = 1'b0;
    always #5 clk = ~clk;

    reg awvalid = 1'b0, wvalid = 1'b0, wlast = 1'b0, bready = 1'b0, arvalid = 1'b0, rready = 1'b0;
    reg [63:0] awaddr = 64'd0, araddr = 64'd0;
    reg [7:0] awlen = 8'd0, arlen = 8'd0;
    reg [BITS-1:0] wdata = {BITS{1'b0}};
    reg [NBY-1:0] wstrb = {NBY{1'b0}};
    wire awready, wready, bvalid, arready, rvalid, rlast;
    wire [1:0] bresp, rresp;
    wire [BITS-1:0] rdata;

    dfx_axi_mem #(.BITS(BITS), .DEPTH(DEPTH), .INDEX(3)) u_mem (
        .clk(clk), .rst_n(rst_n),
        .awvalid(awvalid), .awready(awready), .awaddr(awaddr), .awlen(awlen), .awsize(LB[2:0]), .awburst(2'b01),
        .wvalid(wvalid), .wready(wready), .wdata(wdata), .wstrb(wstrb), .wlast(wlast),
        .bvalid(bvalid), .bready(bready), .bresp(bresp),
        .arvalid(arvalid), .arready(arready), .araddr(araddr), .arlen(arlen), .arsize(LB[2:0]), .arburst(2'b01),
        .rvalid(rvalid), .rready(rready), .rdata(rdata), .rresp(rresp), .rlast(rlast)
    );

    reg [31:0] x = 32'h2545f491;
    function [31:0] rnd(input integer dummy);
        begin
            x = x ^ (x << 13);
            x = x ^ (x >> 17);
            x = x ^ (x << 5);
            rnd = x;
        end
    endfunction

    reg [BITS-1:0] shadow [0:DEPTH-1];
    integer start [0:NB-1];
    integer len [0:NB-1];
    integer i, k, phase, aw_i, w_i, w_beat, b_i, ar_i, r_i, r_beat, errors;
    integer t_ar, cyc;
    reg [BITS-1:0] want, word;
    reg past;

    initial begin
        for (i = 0; i < DEPTH; i = i + 1) shadow[i] = {BITS{1'b0}};
        for (i = 0; i < NB; i = i + 1) begin
            start[i] = rnd(0) % (DEPTH + 8);
            len[i] = rnd(0) % 16;
        end
        phase = 0; aw_i = 0; w_i = 0; w_beat = 0; b_i = 0; ar_i = 0; r_i = 0; r_beat = 0;
        errors = 0; cyc = 0;
        repeat (3) @(posedge clk);
        rst_n <= 1'b1;
    end

    function [BITS-1:0] pattern(input integer b, input integer j);
        integer q;
        begin
            for (q = 0; q < BITS / 32; q = q + 1) pattern[32 * q +: 32] = (b << 20) ^ (j << 8) ^ q ^ 32'h5a000000;
        end
    endfunction

    function burst_err(input integer b);     // a beat of burst b lies past the end
        burst_err = start[b] + len[b] >= DEPTH;
    endfunction

    reg [31:0] r1, r2, r3, r4;               // this cycle's draws (always four, in this order)
    always @(posedge clk) if (rst_n) begin
        cyc = cyc + 1;
        r1 = rnd(0); r2 = rnd(0); r3 = rnd(0); r4 = rnd(0);
        case (phase)
            0: begin                          // one read on an idle memory: its latency
                if (!arvalid && !rready) begin
                    arvalid <= 1'b1; araddr <= 64'd0; arlen <= 8'd0; rready <= 1'b1;
                end
                if (arvalid && arready) begin
                    arvalid <= 1'b0;
                    t_ar = cyc;
                end
                if (rvalid && rready) begin
                    $display("lat %0d", cyc - t_ar);
                    rready <= 1'b0;
                    phase = 1;
                end
            end
            1: begin
                // write addresses, with gaps
                if (awvalid && awready) begin
                    awvalid <= 1'b0;
                    aw_i = aw_i + 1;
                end
                if ((!awvalid || awready) && aw_i < NB && r1 % 4 != 0) begin
                    awvalid <= 1'b1;
                    awaddr <= start[aw_i] << LB;
                    awlen <= len[aw_i];
                end
                // write data, with gaps, independent of the addresses
                if (wvalid && wready) begin
                    if (start[w_i] + w_beat < DEPTH) begin
                        word = shadow[start[w_i] + w_beat];
                        for (k = 0; k < NBY; k = k + 1) if (wstrb[k]) word[8 * k +: 8] = wdata[8 * k +: 8];
                        shadow[start[w_i] + w_beat] = word;
                    end
                    if (w_beat == len[w_i]) begin
                        w_i = w_i + 1;
                        w_beat = 0;
                    end else
                        w_beat = w_beat + 1;
                    wvalid <= 1'b0;
                end
                if ((!wvalid || wready) && w_i < NB && r2 % 3 != 0) begin
                    wvalid <= 1'b1;
                    wdata <= pattern(w_i, w_beat);
                    wstrb <= r3;
                    wlast <= (w_beat == len[w_i]);
                end
                // write responses
                if (bvalid && bready) begin
                    if (bresp != (burst_err(b_i) ? 2'b10 : 2'b00)) begin
                        errors = errors + 1;
                        $display("bresp %0d of burst %0d (start %0d len %0d)", bresp, b_i, start[b_i], len[b_i]);
                    end
                    b_i = b_i + 1;
                    if (b_i == NB) phase = 2;
                end
                bready <= r4 % 2;
            end
            2: begin
                // read addresses back to back
                if (arvalid && arready) begin
                    ar_i = ar_i + 1;
                    arvalid <= 1'b0;
                end
                if ((!arvalid || arready) && ar_i < NB) begin
                    arvalid <= 1'b1;
                    araddr <= start[ar_i] << LB;
                    arlen <= len[ar_i];
                end
                if (rvalid && rready) begin
                    past = start[r_i] + r_beat >= DEPTH;
                    want = past ? {BITS{1'b0}} : shadow[start[r_i] + r_beat];
                    if (rdata !== want || rresp != (past ? 2'b10 : 2'b00) || rlast != (r_beat == len[r_i])) begin
                        errors = errors + 1;
                        if (errors < 10)
                            $display("read burst %0d beat %0d: data %h want %h resp %0d last %0d", r_i, r_beat,
                                     rdata, want, rresp, rlast);
                    end
                    if (r_beat == len[r_i]) begin
                        r_i = r_i + 1;
                        r_beat = 0;
                    end else
                        r_beat = r_beat + 1;
                    if (r_i == NB) begin
                        $display("cycles %0d", cyc);
                        $display("errors %0d", errors);
                        $finish;
                    end
                end
                rready <= r4 % 4 != 0;
            end
            default: ;
        endcase
    end
endmodule

`default_nettype wire
