// GELU of an FP16 value (nx.gelu_alg): u = (x + 8) * 128; i = floor(u); f = u - i;
// y = G[i] + f * D[i], every operation FP32 round to nearest even; x <= -8 -> +0,
// x >= 8 -> x, NaN -> NaN; then rne16. Latency LAT = 3 ADD_LAT + 2 MUL_LAT + 1, one
// value per cycle, advanced by en.
// Pipelined for 200 MHz (docs/hw.md, Timing estimate): the logic between two FP units (floor
// before the second adder, the table read before the second multiplier) has a register stage of
// its own, R3 and R4, each taken from the unit in front of it, which then runs one cycle shorter
// (MUL_LAT - 1, ADD_LAT - 1). So the latency is what it was, and MUL_LAT and ADD_LAT must each be
// at least one more than their unit's minimum (an instance below it does not elaborate).
`default_nettype none
`include "dfx_numerics.vh"

module dfx_gelu16_p #(
    parameter integer ADD_LAT = 7,
    parameter integer MUL_LAT = 5
) (
    input  wire        clk,
    input  wire        en,
    input  wire [15:0] x,
    output wire [15:0] y
);
    localparam integer LAT = 3 * ADD_LAT + 2 * MUL_LAT + 1;
    // stage 1: s = x + 8; classify x
    wire [31:0] x32;
    dfx_f16_to_f32 u_cx (.a(x), .y(x32));
    wire signed [16:0] kx;
    wire signed [16:0] klo;
    wire signed [16:0] khi;
    dfx_key16 u_kx (.a(x), .k(kx));
    dfx_key16 u_kl (.a(16'hC800), .k(klo));   // -8
    dfx_key16 u_kh (.a(16'h4800), .k(khi));   // +8
    wire nan = (x[14:10] == 5'd31) && (x[9:0] != 10'd0);
    wire [3:0] cls = {nan, !nan && (kx >= khi), !nan && (kx <= klo), !nan && (kx > klo) && (kx < khi)};
    wire [31:0] s;
    dfx_f32_add_p #(.LAT(ADD_LAT)) u_a1 (.clk(clk), .en(en), .a(x32), .b(`DFX_F32_NEG_GELU_LO), .y(s));
    wire [3:0] cls1;
    dfx_delay #(.W(4), .LAT(ADD_LAT)) u_d1 (.clk(clk), .en(en), .d(cls), .q(cls1));
    // stage 2: u = s * 128
    wire [31:0] u;
    dfx_f32_mul_p #(.LAT(MUL_LAT - 1)) u_m1 (.clk(clk), .en(en), .a(s), .b(`DFX_F32_GELU_STEPS), .y(u));
    wire [3:0] cls2;
    dfx_delay #(.W(4), .LAT(MUL_LAT - 1)) u_d2 (.clk(clk), .en(en), .d(cls1), .q(cls2));
    // stage 3: i = floor(uc) (register R3), f = uc - i
    wire [31:0] uc = cls2[0] ? u : 32'd0;
    wire signed [12:0] i13;
    dfx_f32_floor #(.IW(13)) u_fl (.x(uc), .n(i13));
    wire [31:0] fi;
    dfx_i2f #(.IW(13)) u_if (.n(i13), .y(fi));
    reg  [31:0] uc_r3;
    reg  [31:0] ni_r3;                                             // -i
    reg  [14:0] c_r3;
    always @(posedge clk)
        if (en) begin
            uc_r3 <= uc;
            ni_r3 <= {~fi[31], fi[30:0]};
            c_r3 <= {cls2, i13[10:0]};
        end
    wire [31:0] f;
    dfx_f32_add_p #(.LAT(ADD_LAT - 1)) u_a2 (.clk(clk), .en(en), .a(uc_r3), .b(ni_r3), .y(f));
    wire [14:0] ic3;
    dfx_delay #(.W(15), .LAT(ADD_LAT - 1)) u_d3 (.clk(clk), .en(en), .d(c_r3), .q(ic3));
    // stage 4: the table read (register R4), f * D[i]
    wire [31:0] g;
    wire [31:0] d;
    dfx_rom_gelu u_rom (.i(ic3[10:0]), .g(g), .d(d));
    reg  [31:0] f_r4;
    reg  [31:0] d_r4;
    reg  [35:0] c_r4;
    always @(posedge clk)
        if (en) begin
            f_r4 <= f;
            d_r4 <= d;
            c_r4 <= {ic3[14:11], g};
        end
    wire [31:0] fd;
    dfx_f32_mul_p #(.LAT(MUL_LAT)) u_m2 (.clk(clk), .en(en), .a(f_r4), .b(d_r4), .y(fd));
    wire [35:0] gc4;
    dfx_delay #(.W(36), .LAT(MUL_LAT)) u_d4 (.clk(clk), .en(en), .d(c_r4), .q(gc4));
    // stage 5: G[i] + f D[i]
    wire [31:0] yt;
    dfx_f32_add_p #(.LAT(ADD_LAT)) u_a3 (.clk(clk), .en(en), .a(gc4[31:0]), .b(fd), .y(yt));
    wire [3:0] cls5;
    dfx_delay #(.W(4), .LAT(ADD_LAT)) u_d5 (.clk(clk), .en(en), .d(gc4[35:32]), .q(cls5));
    wire [15:0] x5;
    dfx_delay #(.W(16), .LAT(LAT - 1)) u_dx (.clk(clk), .en(en), .d(x), .q(x5));
    // stage 6: special cases, rne16
    wire [15:0] yr;
    dfx_f32_to_f16 u_r (.a(yt), .y(yr));
    wire [15:0] yx;
    wire [31:0] x5_32;
    dfx_f16_to_f32 u_cx5 (.a(x5), .y(x5_32));
    dfx_f32_to_f16 u_rx (.a(x5_32), .y(yx));
    wire [15:0] y6 = cls5[3] ? 16'h7E00 : cls5[2] ? yx : cls5[1] ? 16'h0000 : yr;
    dfx_delay #(.W(16), .LAT(1)) u_d6 (.clk(clk), .en(en), .d(y6), .q(y));
    /* verilator lint_off UNUSEDSIGNAL */
    wire unused = &{1'b0, i13[12:11], cls5[0]};
    /* verilator lint_on UNUSEDSIGNAL */
endmodule

`default_nettype wire
