// FP32 + FP32, pipelined for 200 MHz: the datapath of dfx_f32_add_c (IEEE round to nearest even,
// subnormals flushed) cut by registers into ADD_MIN = 6 stages, advanced by en. The result appears
// LAT enabled edges after its inputs; LAT > ADD_MIN adds plain registers at the end, LAT < ADD_MIN
// does not elaborate (an instance of the nonexistent module dfx_f32_add_p_LAT_below_minimum).
// tests/hw/test_synth.py proves it equal, for every input pair, to dfx_f32_add_c LAT enabled edges
// later (its staging checked; with its registers made wires, a Yosys SAT miter), and checks the
// DSP48E2s' registers and the stages' timing estimate.
//
// Both shifts are products with a one-hot power of two in a DSP48E2, as in dfx_f32_add_c; each
// product is written with a register on its inputs (A/B, written R1 and R4) and one on its output
// (P, written R2 and R5), both enabled by en and driving nothing else, so the implementation tool
// packs them into the DSP (AREG = BREG = 1, MREG = 0, PREG = 1): no path crosses the DSP
// combinationally. Yosys 0.23 never packs registers into a DSP48E2 (its xilinx_dsp pass knows only
// DSP48E1) and counts them as flip-flops; the test checks that every A/B and P bit is such a
// register.
//
// Stage plan (estimate by reading: LUT level 0.65 ns with its net, carry chain 0.35 ns + 0.07 ns per
// CARRY8, 0.45 ns register overhead; budget 5.0 ns. In brackets dfx.hw.timing's pessimistic figure
// from Yosys's netlist, inputs from registers; tests/hw/test_synth.py holds it under 5.0 ns):
//   S1  a, b -> R1   magnitude compare (the borrow of a 31-bit subtract: LUT + chain), swap
//                    muxes (1 LUT), exponent difference (both ways beside the compare: an 8-bit
//                    chain, then 1 LUT), far, the 16-place alignment fc, the one-hot oa and the
//                    sticky bit of the 16 places (1-2 LUT)                         ~ 3.8 ns [4.3]
//   S2  R1 -> R2     DSP: fc x oa (A/B register -> multiplier -> P register)       ~ 3.7 ns [3.7]
//   S3  R2 -> R3     sticky bit of the DSP's shift (2 LUT), one 29-bit add/subtract (LUT +
//                    chain), z4 = top 16 bits zero (1-2 LUT)                       ~ 4.3 ns [4.7]
//   S4  R3 -> R4     first 16 places of the normalisation (1 LUT), the leading one as a one-hot
//                    (16-bit chain + 1 LUT), its index (2 LUT); sum == 0; eg + 1   ~ 4.2 ns [4.0]
//   S5  R4 -> R5     DSP: n4 x on; beside it ef0 = eg + 1 - lz (10-bit chain), range flags
//                    (2 LUT), result selection flags (1 LUT)                       ~ 3.8 ns [4.1]
//   S6  R5 -> R6     round bit (1 LUT), 24-bit increment (chain), exponent + carry (8-bit
//                    chain), pack (1 LUT)                                          ~ 3.0 ns [4.2]
// Logic in front of a, b adds to S1: one LUT level fits, two do not.
`default_nettype none

// The registers beside the DSPs stay flip-flops (dfx_delay.v, FF = 1): a chain of them must not
// become a shift-register LUT. Vivado reads shreg_extract = "no"; Yosys, which ignores it, reads keep.
`ifdef YOSYS
`define DFX_ADD_SIDE (* keep, shreg_extract = "no" *)
`else
`define DFX_ADD_SIDE (* shreg_extract = "no" *)
`endif

module dfx_f32_add_p #(
    parameter integer LAT = 6
) (
    input  wire        clk,
    input  wire        en,
    input  wire [31:0] a,
    input  wire [31:0] b,
    output wire [31:0] y
);
    localparam integer ADD_MIN = 6;          // the pipeline's own stages, R1 .. R6

    // ---------------------------------------------------------------- S1: order, align (part 1)
    wire [7:0] ea = a[30:23];
    wire [7:0] eb = b[30:23];
    wire a_top = &ea;
    wire b_top = &eb;
    wire a_fz = ~|a[22:0];
    wire b_fz = ~|b[22:0];
    // order by magnitude: g (greater) >= s (smaller). swap = b > a as the borrow of a - b: one LUT
    // level in front of the carry chain (Yosys maps a compare with two)
    wire [31:0] cmp = {1'b0, a[30:0]} - {1'b0, b[30:0]};
    wire swap = cmp[31];
    wire [7:0]  eg = swap ? eb : ea;
    wire [7:0]  es = swap ? ea : eb;
    wire [22:0] fg = swap ? b[22:0] : a[22:0];
    wire [22:0] fs = swap ? a[22:0] : b[22:0];
    wire        sg = swap ? b[31] : a[31];
    wire        sub = a[31] ^ b[31];
    wire [7:0]  d8 = swap ? eb - ea : ea - eb;   // eg - es, both ways beside the compare
    wire        far = (|d8[7:5]) || (d8[4:0] > 5'd25);
    wire [4:0]  d = d8[4:0];
    wire        hs = |es;                   // a zero (flushed) smaller operand adds 0
    // dfx_f32_add_c aligns fx = {hs, fs & hs, 00}; here hs clears the one-hot oa instead (the
    // product is 0 either way), which keeps hs off the path into fc
    wire [25:0] fx = {1'b1, fs, 2'b00};
    wire [25:0] fc = d[4] ? {16'd0, fx[25:16]} : fx;
    wire        sc = d[4] & hs & (|fs[13:0]);   // ones of fx[15:2] shifted out by the 16 places
    wire [15:0] oa = hs ? (16'h8000 >> d[3:0]) : 16'd0;
    wire nan = (a_top && !a_fz) || (b_top && !b_fz) || (a_top && b_top && sub);

    reg [25:0] fc_1;                         // DSP A register
    reg [15:0] oa_1;                         // DSP B register
    `DFX_ADD_SIDE reg [7:0]  eg_1;
    `DFX_ADD_SIDE reg [22:0] fg_1;
    `DFX_ADD_SIDE reg        sg_1, sub_1, far_1, stkx_1, nan_1, sab_1;
    always @(posedge clk)
        if (en) begin
            fc_1 <= fc;
            oa_1 <= oa;
            eg_1 <= eg;
            fg_1 <= fg;
            sg_1 <= sg;
            sub_1 <= sub;
            far_1 <= far;
            stkx_1 <= far ? hs : sc;         // the sticky bit apart from the DSP's shifted-out ones
            nan_1 <= nan;
            sab_1 <= a[31] & b[31];
        end

    // ---------------------------------------------------------------- S2: align (DSP)
    // fx * 2^(15 - d[3:0]): bits 40:15 are the aligned operand, 14:0 the ones shifted out
    wire [41:0] pa = {16'd0, fc_1} * {26'd0, oa_1};
    reg [40:0] pa_2;                         // DSP P register
    `DFX_ADD_SIDE reg [7:0]  eg_2;
    `DFX_ADD_SIDE reg [22:0] fg_2;
    `DFX_ADD_SIDE reg        sg_2, sub_2, far_2, stkx_2, nan_2, sab_2;
    always @(posedge clk)
        if (en) begin
            pa_2 <= pa[40:0];
            eg_2 <= eg_1;
            fg_2 <= fg_1;
            sg_2 <= sg_1;
            sub_2 <= sub_1;
            far_2 <= far_1;
            stkx_2 <= stkx_1;
            nan_2 <= nan_1;
            sab_2 <= sab_1;
        end

    // ---------------------------------------------------------------- S3: add / subtract
    wire [25:0] sh = far_2 ? 26'd0 : pa_2[40:15];
    wire        stk = stkx_2 | (~far_2 & (|pa_2[14:0]));
    wire [26:0] ms = {sh, stk};
    wire [26:0] mg = {1'b1, fg_2, 3'b000};
    // mg + (ms ^ sub) + sub as one 29-bit add: the carry-in rides in a low bit of 1 + sub
    wire [28:0] s29 = {1'b0, mg, 1'b1} + {sub_2, ms ^ {27{sub_2}}, sub_2};
    wire [27:0] sum = s29[28:1];
    wire        z4 = ~|sum[27:12];
    `DFX_ADD_SIDE reg [27:0] sum_3;
    `DFX_ADD_SIDE reg        z4_3;
    `DFX_ADD_SIDE reg [7:0]  eg_3;
    `DFX_ADD_SIDE reg        sg_3, nan_3, sab_3;
    always @(posedge clk)
        if (en) begin
            sum_3 <= sum;
            z4_3 <= z4;
            eg_3 <= eg_2;
            sg_3 <= sg_2;
            nan_3 <= nan_2;
            sab_3 <= sab_2;
        end

    // ---------------------------------------------------------------- S4: normalise (part 1)
    // as dfx_f32_add_c: 16 places in LUTs, then the leading one of n4[27:12] as a one-hot
    wire [27:0] n4 = z4_3 ? {sum_3[11:0], 16'd0} : sum_3;
    wire [15:0] t;                           // t[k] = n4[27 - k]: the leading one is t's lowest one
    genvar g;
    generate
        for (g = 0; g < 16; g = g + 1) begin : g_rev
            assign t[g] = n4[27 - g];
        end
    endgenerate
    wire [15:0] on = t & (~t + 16'd1);
    wire [3:0]  lzf = {|(on & 16'hFF00), |(on & 16'hF0F0), |(on & 16'hCCCC), |(on & 16'hAAAA)};
    wire        zero = (sum_3 == 28'd0) || (eg_3 == 8'd0);
    wire [8:0]  egp1 = {1'b0, eg_3} + 9'd1;
    reg [25:0] n4h_4;                        // DSP A register
    reg [15:0] on_4;                         // DSP B register
    `DFX_ADD_SIDE reg [1:0]  n4l_4;
    `DFX_ADD_SIDE reg [3:0]  lzf_4;
    `DFX_ADD_SIDE reg        z4_4;
    `DFX_ADD_SIDE reg [8:0]  egp1_4;
    `DFX_ADD_SIDE reg        egtop_4, zero_4, sg_4, nan_4, sab_4;
    always @(posedge clk)
        if (en) begin
            n4h_4 <= n4[27:2];
            on_4 <= on;
            n4l_4 <= n4[1:0];
            lzf_4 <= lzf;
            z4_4 <= z4_3;
            egp1_4 <= egp1;
            egtop_4 <= &eg_3;
            zero_4 <= zero;
            sg_4 <= sg_3;
            nan_4 <= nan_3;
            sab_4 <= sab_3;
        end

    // ---------------------------------------------------------------- S5: normalise (DSP), exponent
    wire [41:0] pn = {16'd0, n4h_4} * {26'd0, on_4};
    // n4[1:0] stay outside the product (see dfx_f32_add_c): lo = n4[1:0] << lzf when lzf < 4
    wire [3:0]  lo = (lzf_4[3:2] == 2'd0) ? ({2'b00, n4l_4} << lzf_4[1:0]) : 4'd0;
    wire [4:0]  lz = {z4_4, lzf_4};
    // the exponent before rounding; rounding may carry one more in (r = rnd[24], S6)
    wire signed [9:0] ef0 = $signed({1'b0, egp1_4}) - $signed({5'd0, lz});
    wire ovf0 = ef0 >= 10'sd255;
    wire is254 = ef0 == 10'sd254;
    wire unf0 = ef0 <= 10'sd0;
    wire is0 = ef0 == 10'sd0;
    // dfx_f32_add_c's selection, for r = 0 and r = 1: NaN, zero, infinity (in, or ef >= 255),
    // flush (ef <= 0), normal
    wire live = !nan_4 && !zero_4 && !egtop_4 && !ovf0;
    wire f_ff = nan_4 || (!zero_4 && (egtop_4 || ovf0));   // exponent all ones for either r
    wire f_ffr = live && is254;                            // exponent all ones when r
    wire norm0 = live && !unf0;                            // a normal result when !r
    wire norm1 = live && !is254 && (!unf0 || is0);         // a normal result when r
    reg [25:0] pn_5;                         // DSP P register
    `DFX_ADD_SIDE reg        lo3_5, lor_5;
    `DFX_ADD_SIDE reg [7:0]  ef0_5;
    `DFX_ADD_SIDE reg        f_ff_5, f_ffr_5, norm0_5, norm1_5, nan_5, s_5;
    always @(posedge clk)
        if (en) begin
            pn_5 <= pn[25:0];
            lo3_5 <= lo[3];
            lor_5 <= |lo[2:0];
            ef0_5 <= ef0[7:0];
            f_ff_5 <= f_ff;
            f_ffr_5 <= f_ffr;
            norm0_5 <= norm0;
            norm1_5 <= norm1;
            nan_5 <= nan_4;
            s_5 <= nan_4 ? 1'b0 : zero_4 ? sab_4 : sg_4;   // x + (-x) = +0, -0 + -0 = -0
        end

    // ---------------------------------------------------------------- S6: round, pack
    // n0 = {pn, 00} | lo; round to nearest even on guard n0[3], round and sticky n0[2:0]
    wire [23:0] m = pn_5[25:2];
    wire        up = (pn_5[1] | lo3_5) & (pn_5[0] | lor_5 | pn_5[2]);
    // m + up and ef0 + r written as ({m, up} + up) >> 1: the one-bit addend enters the carry chain
    // directly (bit 0 sums up + up), not through a LUT in front of it
    wire [25:0] rx = {1'b0, m, up} + {25'd0, up};
    wire [24:0] rnd = rx[25:1];
    wire        r = rnd[24];                 // rnd = 2^24: fraction 0, exponent + 1
    wire [8:0]  ex = {ef0_5, r} + {8'd0, r};
    wire [7:0]  ef = ex[8:1];
    wire        norm = r ? norm1_5 : norm0_5;
    wire [7:0]  ye = {8{f_ff_5 | (f_ffr_5 & r)}} | ({8{norm}} & ef);
    wire [22:0] yf = ({23{norm}} & rnd[22:0]) | {nan_5, 22'd0};
    // only the compare's borrow is used, the products' top bits are shifted out, s29[0], rx[0] and
    // ex[0] are carry-in bits, rnd[23] is 0 when r, ef0's sign is in the flags
    wire        _unused_ok = &{1'b1, cmp[30:0], pa[41], pn[41:26], s29[0], rx[0], rnd[23], ex[0], ef0[9:8]};
    `DFX_ADD_SIDE reg [31:0] y_6;
    always @(posedge clk)
        if (en) y_6 <= {s_5, ye, yf};

    // ---------------------------------------------------------------- extra latency, or refuse
    generate
        if (LAT < ADD_MIN) begin : g_lat_below_min
            dfx_f32_add_p_LAT_below_minimum u_err ();   // LAT must be >= ADD_MIN (6)
        end else begin : g_tail
            dfx_delay #(.W(32), .LAT(LAT - ADD_MIN), .FF(1)) u_d (.clk(clk), .en(en), .d(y_6), .q(y));
        end
    endgenerate
endmodule

`undef DFX_ADD_SIDE
`default_nettype wire
