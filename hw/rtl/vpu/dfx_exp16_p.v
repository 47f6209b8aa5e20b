// exp of an FP16 value (nx.exp_alg): t = x * log2e; t >= 16 -> inf, t < -25 -> 0;
// n = floor(t), f = t - n, i = floor(64 f), r = f - i/64, p = T[i] + r S[i], y = p 2^n,
// every operation FP32 round to nearest even; then rne16.
// Latency LAT = 2 MUL_LAT + 3 ADD_LAT + 1, one value per cycle, advanced by en.
// Pipelined for 200 MHz (docs/hw.md, Timing estimate): the logic between two FP units (range and
// floor before the first adder, floor before the second, the table read before the second
// multiplier) has a register stage of its own, R2, R3 and R4, each taken from the unit in front
// of it, which then runs one cycle shorter (MUL_LAT - 1, ADD_LAT - 1). So the latency is what it
// was, and MUL_LAT and ADD_LAT must each be at least one more than their unit's minimum (an
// instance below it does not elaborate).
`default_nettype none
`include "dfx_numerics.vh"

module dfx_exp16_p #(
    parameter integer ADD_LAT = 7,
    parameter integer MUL_LAT = 5
) (
    input  wire        clk,
    input  wire        en,
    input  wire [15:0] x,
    output wire [15:0] y
);
    // stage 1: t = x * log2(e)
    wire [31:0] x32;
    dfx_f16_to_f32 u_cx (.a(x), .y(x32));
    wire nan0 = (x[14:10] == 5'd31) && (x[9:0] != 10'd0);
    wire [31:0] t;
    dfx_f32_mul_p #(.LAT(MUL_LAT - 1)) u_m1 (.clk(clk), .en(en), .a(x32), .b(`DFX_F32_LOG2E), .y(t));
    wire nan1;
    dfx_delay #(.W(1), .LAT(MUL_LAT - 1)) u_d1 (.clk(clk), .en(en), .d(nan0), .q(nan1));
    // stage 2: range, n = floor(t) (register R2), f = t - n   (t is not NaN unless x is)
    wire t_neg = t[31];
    wire [30:0] tm = t[30:0];
    wire big = !nan1 && !t_neg && (tm >= 31'h41800000);          // t >= 16
    wire tiny = !nan1 && t_neg && (tm > 31'h41C80000);          // t < -25
    wire [31:0] tc = (big || tiny || nan1) ? 32'd0 : t;
    wire signed [6:0] n;
    dfx_f32_floor #(.IW(7)) u_fl (.x(tc), .n(n));
    wire [31:0] nf;
    dfx_i2f #(.IW(7)) u_nf (.n(n), .y(nf));
    reg  [31:0] tc_r2;
    reg  [31:0] nn_r2;                                             // -n
    reg  [9:0]  c_r2;
    always @(posedge clk)
        if (en) begin
            tc_r2 <= tc;
            nn_r2 <= {~nf[31], nf[30:0]};
            c_r2 <= {nan1, big, tiny, n};
        end
    wire [31:0] f;
    dfx_f32_add_p #(.LAT(ADD_LAT - 1)) u_a1 (.clk(clk), .en(en), .a(tc_r2), .b(nn_r2), .y(f));
    wire [9:0] c2;
    dfx_delay #(.W(10), .LAT(ADD_LAT - 1)) u_d2 (.clk(clk), .en(en), .d(c_r2), .q(c2));
    // stage 3: i = floor(64 f) (64 f is exact; register R3), r = f - i/64
    wire [31:0] f64 = (f[30:23] == 8'd0) ? f : {f[31], f[30:23] + 8'd6, f[22:0]};
    wire signed [7:0] i8;
    dfx_f32_floor #(.IW(8)) u_fi (.x(f64), .n(i8));
    wire [31:0] ifl;
    dfx_i2f #(.IW(8)) u_if (.n(i8), .y(ifl));
    wire [31:0] i64 = (ifl[30:23] == 8'd0) ? 32'd0 : {1'b1, ifl[30:23] - 8'd6, ifl[22:0]};   // -(i/64)
    reg  [31:0] f_r3;
    reg  [31:0] i64_r3;
    reg  [15:0] c_r3;
    always @(posedge clk)
        if (en) begin
            f_r3 <= f;
            i64_r3 <= i64;
            c_r3 <= {c2, i8[5:0]};
        end
    wire [31:0] r;
    dfx_f32_add_p #(.LAT(ADD_LAT - 1)) u_a2 (.clk(clk), .en(en), .a(f_r3), .b(i64_r3), .y(r));
    wire [15:0] c3;
    dfx_delay #(.W(16), .LAT(ADD_LAT - 1)) u_d3 (.clk(clk), .en(en), .d(c_r3), .q(c3));
    // stage 4: the table read (register R4), r * S[i]
    wire [31:0] tt;
    wire [31:0] ss;
    dfx_rom_exp u_rom (.i(c3[5:0]), .t(tt), .s(ss));
    reg  [31:0] r_r4;
    reg  [31:0] ss_r4;
    reg  [41:0] c_r4;
    always @(posedge clk)
        if (en) begin
            r_r4 <= r;
            ss_r4 <= ss;
            c_r4 <= {c3[15:6], tt};
        end
    wire [31:0] rs;
    dfx_f32_mul_p #(.LAT(MUL_LAT)) u_m2 (.clk(clk), .en(en), .a(r_r4), .b(ss_r4), .y(rs));
    wire [41:0] c4;
    dfx_delay #(.W(42), .LAT(MUL_LAT)) u_d4 (.clk(clk), .en(en), .d(c_r4), .q(c4));
    // stage 5: p = T[i] + r S[i]
    wire [31:0] p;
    dfx_f32_add_p #(.LAT(ADD_LAT)) u_a3 (.clk(clk), .en(en), .a(c4[31:0]), .b(rs), .y(p));
    wire [9:0] c5;
    dfx_delay #(.W(10), .LAT(ADD_LAT)) u_d5 (.clk(clk), .en(en), .d(c4[41:32]), .q(c5));
    // stage 6: y = p 2^n (exact: p in [1, 2], n in [-25, 15]), specials, rne16
    wire signed [6:0] n5 = c5[6:0];
    wire [7:0] ey = p[30:23] + {n5[6], n5};
    wire [15:0] yr;
    dfx_f32_to_f16 u_r (.a({p[31], ey, p[22:0]}), .y(yr));
    wire [15:0] y6 = c5[9] ? 16'h7E00 : c5[8] ? 16'h7C00 : c5[7] ? 16'h0000 : yr;
    dfx_delay #(.W(16), .LAT(1)) u_d6 (.clk(clk), .en(en), .d(y6), .q(y));
    /* verilator lint_off UNUSEDSIGNAL */
    wire unused = &{1'b0, i8[7:6], ifl[31]};
    /* verilator lint_on UNUSEDSIGNAL */
endmodule

`default_nettype wire
