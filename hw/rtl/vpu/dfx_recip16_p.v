// 1/x of an FP16 value (nx.recip_alg): significand from the ROM R[m], exponent from e;
// +-0 (and flushed subnormals) -> +-65504, +-inf -> +-0, NaN -> 0x7E00.
// Latency LAT (>= 1) register stages, advanced by en; the first is the ROM's registered read
// (block RAM, not LUTs).
`default_nettype none

module dfx_recip16_p #(
    parameter integer LAT = 1
) (
    input  wire        clk,
    input  wire        en,
    input  wire [15:0] x,
    output wire [15:0] y
);
    wire [11:0] r;
    dfx_rom_recip u_rom (.clk(clk), .en(en), .i(x[9:0]), .r(r));    // r is R[m] of x1
    reg  [15:0] x1;
    always @(posedge clk) if (en) x1 <= x;
    wire       s = x1[15];
    wire [4:0] e = x1[14:10];
    wire [9:0] m = x1[9:0];
    // 1/x = 2^-(e-15) for m = 0, else (R/1024) 2^-(e-15)-1; biased: eh = 30 - e or 29 - e
    wire signed [6:0] eh = (m == 10'd0) ? (7'sd30 - $signed({2'b00, e})) : (7'sd29 - $signed({2'b00, e}));
    wire [9:0] sig = (m == 10'd0) ? 10'd0 : r[9:0];
    reg [15:0] y0;
    always @* begin
        if (e == 5'd31)
            y0 = (m != 10'd0) ? 16'h7E00 : {s, 15'd0};
        else if (e == 5'd0)
            y0 = {s, 15'h7BFF};
        else if (eh <= 7'sd0)
            y0 = {s, 15'd0};
        else if (eh >= 7'sd31)
            y0 = {s, 15'h7C00};
        else
            y0 = {s, eh[4:0], sig};
    end
    dfx_delay #(.W(16), .LAT(LAT - 1), .FF(1)) u_d (.clk(clk), .en(en), .d(y0), .q(y));
    /* verilator lint_off UNUSEDSIGNAL */
    wire unused = &{1'b0, r[11:10]};
    /* verilator lint_on UNUSEDSIGNAL */
endmodule

`default_nettype wire
