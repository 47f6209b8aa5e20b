// 1/sqrt(x) of an FP16 value (nx.rsqrt_alg): a = 1.m * 1024, doubled for an odd exponent,
// significand from the ROM Q[a - 1024]; +-0 -> +65504, +inf -> +0, negative or NaN -> 0x7E00.
// Latency LAT (>= 1) register stages, advanced by en; the first is the ROM's registered read
// (block RAM, not LUTs).
`default_nettype none

module dfx_rsqrt16_p #(
    parameter integer LAT = 1
) (
    input  wire        clk,
    input  wire        en,
    input  wire [15:0] x,
    output wire [15:0] y
);
    // the ROM address, from x: a = 1.m * 1024, doubled for an odd unbiased exponent (e - 15)
    wire [11:0] a0 = x[10] ? {2'b01, x[9:0]} : {1'b1, x[9:0], 1'b0};
    wire [11:0] q;
    dfx_rom_rsqrt u_rom (.clk(clk), .en(en), .i(a0 - 12'd1024), .q(q));   // q is Q[a - 1024] of x1
    reg  [15:0] x1;
    always @(posedge clk) if (en) x1 <= x;
    wire       s = x1[15];
    wire [4:0] e = x1[14:10];
    wire [9:0] m = x1[9:0];
    wire signed [6:0] eu = $signed({2'b00, e}) - 7'sd15;
    wire odd = eu[0];
    wire signed [6:0] half_e = (eu - $signed({6'd0, odd})) >>> 1;
    wire carry = q[11];
    // exponent -half_e (carry) or -half_e - 1, biased by 15
    wire signed [6:0] eh = carry ? (7'sd15 - half_e) : (7'sd14 - half_e);
    wire [9:0] sig = carry ? 10'd0 : q[9:0];
    reg [15:0] y0;
    always @* begin
        if (e == 5'd31 && m != 10'd0)
            y0 = 16'h7E00;
        else if (e == 5'd0)
            y0 = 16'h7BFF;
        else if (s)
            y0 = 16'h7E00;
        else if (e == 5'd31)
            y0 = 16'h0000;
        else if (eh <= 7'sd0)
            y0 = 16'h0000;
        else if (eh >= 7'sd31)
            y0 = 16'h7C00;
        else
            y0 = {1'b0, eh[4:0], sig};
    end
    dfx_delay #(.W(16), .LAT(LAT - 1), .FF(1)) u_d (.clk(clk), .en(en), .d(y0), .q(y));
    /* verilator lint_off UNUSEDSIGNAL */
    wire unused = q[10];
    /* verilator lint_on UNUSEDSIGNAL */
endmodule

`default_nettype wire
