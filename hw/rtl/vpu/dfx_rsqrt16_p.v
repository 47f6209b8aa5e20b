// 1/sqrt(x) of an FP16 value (nx.rsqrt_alg): a = 1.m * 1024, doubled for an odd exponent,
// significand from the ROM Q[a - 1024]; +-0 -> +65504, +inf -> +0, negative or NaN -> 0x7E00.
// Latency LAT (>= 1) register stages, advanced by en.
`default_nettype none

module dfx_rsqrt16_p #(
    parameter integer LAT = 1
) (
    input  wire        clk,
    input  wire        en,
    input  wire [15:0] x,
    output wire [15:0] y
);
    wire       s = x[15];
    wire [4:0] e = x[14:10];
    wire [9:0] m = x[9:0];
    wire signed [6:0] eu = $signed({2'b00, e}) - 7'sd15;
    wire odd = eu[0];
    wire [11:0] a = odd ? {1'b1, m, 1'b0} : {2'b01, m};
    wire [11:0] q;
    dfx_rom_rsqrt u_rom (.i(a - 12'd1024), .q(q));
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
    dfx_delay #(.W(16), .LAT(LAT)) u_d (.clk(clk), .en(en), .d(y0), .q(y));
    /* verilator lint_off UNUSEDSIGNAL */
    wire unused = q[10];
    /* verilator lint_on UNUSEDSIGNAL */
endmodule

`default_nettype wire
