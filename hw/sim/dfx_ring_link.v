// dfx_ring_link: one link of the simulated ring (core i's m_axis_ring -> core i+1's s_axis_ring).
//
// Why: the cards of the appliance talk over QSFP links that can lose or damage a word; the
// testbench needs a link it can break on purpose to check that the cores detect it.
// An AXI4-Stream pass-through through a DEPTH-word FIFO (tdata and tlast). Simulation only.
//
// Fault injection, armed by a one-cycle pulse on `arm` with `arm_kind` and `arm_k` (k >= 1):
// the k-th word accepted after arming is
//   DROP     accepted and discarded,
//   DUP      passed on twice,
//   CORRUPT  passed on with tdata bit `arm_bit` inverted (give a payload bit: below 16*RING_WORDS),
// then the link disarms itself. arm_kind NONE disarms. The input takes a word only while two
// slots are free (so a duplicate always fits).
`default_nettype none

module dfx_ring_link #(
    parameter integer W = 160,           // tdata bits
    parameter integer DEPTH = 4          // FIFO words, a power of two >= 2
) (
    input  wire          clk,
    input  wire          rst_n,
    input  wire          s_tvalid,
    output wire          s_tready,
    input  wire [W-1:0]  s_tdata,
    input  wire          s_tlast,
    output wire          m_tvalid,
    input  wire          m_tready,
    output wire [W-1:0]  m_tdata,
    output wire          m_tlast,
    input  wire          arm,
    input  wire [1:0]    arm_kind,
    input  wire [31:0]   arm_k,
    input  wire [31:0]   arm_bit
);
    localparam [1:0] NONE = 2'd0, DROP = 2'd1, DUP = 2'd2, CORRUPT = 2'd3;
    localparam integer AW = $clog2(DEPTH);

    reg [W:0] q [0:DEPTH-1];             // {tlast, tdata}
    reg [AW-1:0] rp, wp;
    reg [AW:0] n;
    reg [1:0] kind;
    reg [31:0] left, flip;

    wire take = s_tvalid && s_tready;
    wire give = m_tvalid && m_tready;
    wire hit = take && kind != NONE && left == 32'd1;
    wire [1:0] npush = !take ? 2'd0 : (hit && kind == DROP) ? 2'd0 : (hit && kind == DUP) ? 2'd2 : 2'd1;
    wire [W-1:0] mask = (hit && kind == CORRUPT) ? ({{(W - 1){1'b0}}, 1'b1} << flip) : {W{1'b0}};
    wire [W:0] word = {s_tlast, s_tdata ^ mask};

    assign s_tready = (n <= DEPTH - 2);
    assign m_tvalid = (n != 0);
    assign {m_tlast, m_tdata} = q[rp];

    always @(posedge clk) begin
        if (!rst_n) begin
            rp <= 0;
            wp <= 0;
            n <= 0;
            kind <= NONE;
            left <= 32'd0;
            flip <= 32'd0;
        end else begin
            if (npush != 2'd0) q[wp] <= word;
            if (npush == 2'd2) q[wp + 1'b1] <= word;
            wp <= wp + npush;
            rp <= rp + give;
            n <= n + npush - give;
            if (arm) begin
                kind <= arm_kind;
                left <= arm_k;
                flip <= arm_bit;
            end else if (take && kind != NONE) begin
                if (left == 32'd1) kind <= NONE;
                left <= left - 32'd1;
            end
        end
    end
endmodule

`default_nettype wire
