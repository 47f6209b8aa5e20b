// Self-checking bench of the ring adapters (dfx.hw.vitis): dfx_ring_tx -> link -> dfx_ring_rx.
// NWORDS random ring words (random tlast) go in at random times; the link and the receiving core
// stall at random (+stall=<percent>); every word must come out once, in order, bit for bit.
// Prints "words N", "cycles C", "beats B" (link handshakes) and "errors E".
module dfx_ring_adapt_tb;
    parameter RB = 160;   // ring word bits (the generated adapters' width)
    parameter LB = 512;   // link beat bits
    parameter NWORDS = 200;
    parameter TLAST = 1;  // the adapters carry tlast (a spare bit in the beats); else it comes out 0
    reg clk = 1'b0, rst_n = 1'b0;
    always #1 clk = ~clk;

    reg [RB-1:0] words [0:NWORDS-1];
    reg lasts [0:NWORDS-1];
    integer i, sent, recvd, errors, cycles, beats, stall, seed;

    reg s_v; wire s_r; reg [RB-1:0] s_d; reg s_l;
    wire l_v, l_r; wire [LB-1:0] l_d;
    wire o_v; reg o_r; wire [RB-1:0] o_d; wire o_l;
    reg link_go, took;
    wire i_v; wire [LB-1:0] i_d;
    wire d_r;

    dfx_ring_tx u_tx (.ap_clk(clk), .ap_rst_n(rst_n),
        .s_axis_ring_tvalid(s_v), .s_axis_ring_tready(s_r), .s_axis_ring_tdata(s_d), .s_axis_ring_tlast(s_l),
        .m_axis_link_tvalid(l_v), .m_axis_link_tready(l_r), .m_axis_link_tdata(l_d),
        .m_axis_idle_tvalid(i_v), .m_axis_idle_tready(1'b1), .m_axis_idle_tdata(i_d));
    // the link: an Aurora stream that stalls at random (flow control)
    wire rx_r;
    wire lv = l_v & link_go;
    assign l_r = link_go & rx_r;
    dfx_ring_rx u_rx (.ap_clk(clk), .ap_rst_n(rst_n),
        .s_axis_link_tvalid(lv), .s_axis_link_tready(rx_r), .s_axis_link_tdata(l_d),
        .m_axis_ring_tvalid(o_v), .m_axis_ring_tready(o_r), .m_axis_ring_tdata(o_d), .m_axis_ring_tlast(o_l),
        .s_axis_drain_tvalid(1'b1), .s_axis_drain_tready(d_r), .s_axis_drain_tdata({LB{1'b1}}));

    function [RB-1:0] rand_word(input integer dummy);
        integer j;
        begin
            rand_word = {RB{1'b0}};
            for (j = 0; j < RB; j = j + 32) rand_word = (rand_word << 32) | $random(seed);
        end
    endfunction

    initial begin
        if (!$value$plusargs("stall=%d", stall)) stall = 0;
        if (!$value$plusargs("seed=%d", seed)) seed = 1;
        for (i = 0; i < NWORDS; i = i + 1) begin
            words[i] = rand_word(0);
            lasts[i] = $random(seed);
        end
        sent = 0; recvd = 0; errors = 0; cycles = 0; beats = 0;
        s_v = 1'b0; s_d = {RB{1'b0}}; s_l = 1'b0; o_r = 1'b0; link_go = 1'b0; took = 1'b0;
        repeat (4) @(posedge clk);
        rst_n = 1'b1;
        while (recvd < NWORDS && cycles < 100 * NWORDS) begin
            // drive at the falling edge: a word offered stays until taken (AXI4-Stream), then random gaps
            @(negedge clk);
            if (!s_v || took) begin
                s_v = (sent < NWORDS) && ((($random(seed) % 100 + 100) % 100) >= stall / 2);
                s_d = words[sent < NWORDS ? sent : 0];
                s_l = lasts[sent < NWORDS ? sent : 0];
            end
            link_go = (($random(seed) % 100 + 100) % 100) >= stall;
            o_r = (($random(seed) % 100 + 100) % 100) >= stall;
            // sample before the rising edge: the handshakes it will make
            #0.5;
            cycles = cycles + 1;
            took = s_v && s_r;
            if (took) sent = sent + 1;
            if (l_v && l_r) beats = beats + 1;
            if (o_v && o_r) begin
                if (o_d !== words[recvd] || o_l !== (TLAST ? lasts[recvd] : 1'b0)) begin
                    errors = errors + 1;
                    if (errors < 4) $display("word %0d: got %h/%b want %h/%b", recvd, o_d, o_l, words[recvd], lasts[recvd]);
                end
                recvd = recvd + 1;
            end
            if (i_v || !d_r) errors = errors + 1;  // the tie-offs: nothing out of idle, drain always ready
        end
        if (recvd != NWORDS) errors = errors + 1;
        $display("words %0d", recvd);
        $display("cycles %0d", cycles);
        $display("beats %0d", beats);
        $display("errors %0d", errors);
        $finish;
    end
endmodule
