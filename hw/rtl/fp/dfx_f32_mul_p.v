// FP32 x FP32, pipelined for 200 MHz: dfx_f32_mul_c (IEEE round to nearest even, subnormals
// flushed) cut by registers into MUL_MIN = 4 stages, advanced by en. The result appears LAT enabled
// edges after its inputs; LAT > MUL_MIN adds plain registers at the end, LAT < MUL_MIN does not
// elaborate (an instance of the nonexistent module dfx_f32_mul_p_LAT_below_minimum).
// tests/hw/test_synth.py proves it equal to dfx_f32_mul_c for every input pair.
//
// The 24 x 24-bit significand product is two DSP48E2 products, {1, fa} x fb[16:0] (24 x 17 bits)
// and {1, fa} x {1, fb[22:17]} (24 x 7), each written with a register on its inputs (R1) and on its
// output (R2), enabled by en and driving nothing else, so the implementation tool packs them into
// the DSPs (AREG = BREG = 1, PREG = 1; the A register feeds both). Yosys 0.23 packs no register
// into a DSP48E2 and counts them as flip-flops (see dfx_f32_add_p.v).
//
// Stage plan (estimate as in dfx_f32_add_p.v, budget 5.0 ns; dfx.hw.timing's pessimistic figure
// from Yosys's netlist in brackets):
//   S1  a, b -> R1   DSP input registers; special cases (23-bit zero tests: 3 LUT), ea + eb
//                    (9-bit chain)                                                  ~ 2.4 ns [3.1]
//   S2  R1 -> R2     DSP: both products (A/B register -> P register)                  ~ 3.7 ns [3.7]
//   S3  R2 -> R3     the products' sum (31-bit chain), normalise (1 LUT: a 2:1 mux), round bit
//                    (2 LUT); beside them the exponent for the three carries ea + eb - 127 +
//                    {0, 1, 2} (8-bit chains) and the result's exponent field for each (2 LUT)
//                                                                                   ~ 3.9 ns [4.7]
//   S4  R3 -> R4     24-bit increment (the round bit into its carry chain), pack (1 LUT)
//                                                                                   ~ 2.2 ns [2.7]
// (S3 and S4 in one stage are two carry chains and 4 LUT levels: 6.1 ns in dfx.hw.timing.)
`default_nettype none

// The registers beside the DSPs stay flip-flops (dfx_delay.v, FF = 1): a chain of them must not
// become a shift-register LUT. Vivado reads shreg_extract = "no"; Yosys, which ignores it, reads keep.
`ifdef YOSYS
`define DFX_MUL_SIDE (* keep, shreg_extract = "no" *)
`else
`define DFX_MUL_SIDE (* shreg_extract = "no" *)
`endif

module dfx_f32_mul_p #(
    parameter integer LAT = 4
) (
    input  wire        clk,
    input  wire        en,
    input  wire [31:0] a,
    input  wire [31:0] b,
    output wire [31:0] y
);
    localparam integer MUL_MIN = 4;          // the pipeline's own stages, R1 .. R4

    // ---------------------------------------------------------------- S1: special cases
    wire [7:0] ea = a[30:23];
    wire [7:0] eb = b[30:23];
    wire a_nan = (ea == 8'hFF) && (a[22:0] != 23'd0);
    wire b_nan = (eb == 8'hFF) && (b[22:0] != 23'd0);
    wire a_inf = (ea == 8'hFF) && (a[22:0] == 23'd0);
    wire b_inf = (eb == 8'hFF) && (b[22:0] == 23'd0);
    wire a_zero = (ea == 8'd0);
    wire b_zero = (eb == 8'd0);
    reg [23:0] sa_1;                         // DSP A registers (both products)
    reg [16:0] bl_1;                         // DSP B register, low product
    reg [6:0]  bh_1;                         // DSP B register, high product
    `DFX_MUL_SIDE reg [8:0] es_1;
    `DFX_MUL_SIDE reg       nan_1, inf_1, zero_1, s_1;
    always @(posedge clk)
        if (en) begin
            // the leading 1 of each significand as !zero (a zero's product is never used): a
            // register with a constant bit would not be packed whole into the DSP's A/B register
            sa_1 <= {!a_zero, a[22:0]};
            bl_1 <= b[16:0];
            bh_1 <= {!b_zero, b[22:17]};
            es_1 <= {1'b0, ea} + {1'b0, eb};
            nan_1 <= a_nan || b_nan || (a_inf && b_zero) || (b_inf && a_zero);
            inf_1 <= a_inf || b_inf;
            zero_1 <= a_zero || b_zero;
            s_1 <= a[31] ^ b[31];
        end

    // ---------------------------------------------------------------- S2: products (DSP)
    wire [47:0] pl = {24'd0, sa_1} * {31'd0, bl_1};
    wire [47:0] ph = {24'd0, sa_1} * {41'd0, bh_1};
    reg [40:0] pl_2;                         // DSP P register, low product
    reg [30:0] ph_2;                         // DSP P register, high product
    `DFX_MUL_SIDE reg [8:0] es_2;
    `DFX_MUL_SIDE reg       nan_2, inf_2, zero_2, s_2;
    always @(posedge clk)
        if (en) begin
            pl_2 <= pl[40:0];
            ph_2 <= ph[30:0];
            es_2 <= es_1;
            nan_2 <= nan_1;
            inf_2 <= inf_1;
            zero_2 <= zero_1;
            s_2 <= !nan_1 && s_1;
        end

    // ---------------------------------------------------------------- S3: normalise, round bit
    // p = pl + ph << 17: s31 = p[47:17], p[16:0] = pl[16:0]
    wire [30:0] s31 = ph_2 + {7'd0, pl_2[40:17]};
    wire        p47 = s31[30];
    // as dfx_f32_mul_c: p[47] = 1 keeps p[47:24] (guard p[23], sticky p[22:0]), p[47] = 0 keeps
    // p[46:23] (guard p[22], sticky p[21:0]); the round bit of each, then the one p[47] picks
    wire [23:0] m = p47 ? s31[30:7] : s31[29:6];
    wire        st0 = (|pl_2[16:0]) | (|s31[4:0]);
    wire        up1 = s31[6] & (st0 | s31[5] | s31[7]);
    wire        up0 = s31[5] & (st0 | s31[6]);
    // the exponent is ea + eb - 127 + c, c = p[47] + (rounding carried out) in 0..2: for each c the
    // result's exponent field, NaN / infinity (all ones), zero / flushed (0) or normal (ea + eb -
    // 127 + c), and whether the result is normal (its fraction the rounded significand)
    wire [7:0] e0 = es_2[7:0] + 8'd129;      // (ea + eb - 127) mod 256
    wire [7:0] e1 = es_2[7:0] + 8'd130;
    wire [7:0] e2 = es_2[7:0] + 8'd131;
    wire live = !nan_2 && !inf_2 && !zero_2;
    wire nm0 = live && (es_2 < 9'd382) && (es_2 > 9'd127);  // 0 < ea + eb - 127 + c < 255
    wire nm1 = live && (es_2 < 9'd381) && (es_2 > 9'd126);
    wire nm2 = live && (es_2 < 9'd380) && (es_2 > 9'd125);
    wire ff0 = nan_2 || inf_2 || (!zero_2 && (es_2 >= 9'd382));
    wire ff1 = nan_2 || inf_2 || (!zero_2 && (es_2 >= 9'd381));
    wire ff2 = nan_2 || inf_2 || (!zero_2 && (es_2 >= 9'd380));
    wire [7:0] ye0 = {8{ff0}} | ({8{nm0}} & e0);
    wire [7:0] ye1 = {8{ff1}} | ({8{nm1}} & e1);
    wire [7:0] ye2 = {8{ff2}} | ({8{nm2}} & e2);
    `DFX_MUL_SIDE reg [23:0] m_3;
    `DFX_MUL_SIDE reg        up_3;
    `DFX_MUL_SIDE reg [7:0]  yea_3, yeb_3;   // the exponent field without and with a rounding carry
    `DFX_MUL_SIDE reg        nm_3, nan_3, s_3;
    always @(posedge clk)
        if (en) begin
            m_3 <= m;
            up_3 <= p47 ? up1 : up0;
            yea_3 <= p47 ? ye1 : ye0;
            yeb_3 <= p47 ? ye2 : ye1;
            nm_3 <= p47 ? nm1 : nm0;         // (with a rounding carry the fraction is 0 anyway)
            nan_3 <= nan_2;
            s_3 <= s_2;
        end

    // ---------------------------------------------------------------- S4: round, pack
    // m + up written as ({m, up} + up) >> 1: up enters the carry chain directly (its bit 0 sums
    // up + up), not through a LUT in front of it
    wire [25:0] rx = {1'b0, m_3, up_3} + {25'd0, up_3};
    wire [24:0] rnd = rx[25:1];
    // a carry out of the rounding (rnd = 2^24) leaves fraction 0 and adds 1 to the exponent
    wire [7:0]  ye = rnd[24] ? yeb_3 : yea_3;
    wire [22:0] yf = ({23{nm_3}} & rnd[22:0]) | {nan_3, 22'd0};
    // pl, ph: the products' top bits are 0; rx[0] is the carry-in's bit; rnd[23] is 0 when rnd[24]
    wire        _unused_ok = &{1'b1, pl[47:41], ph[47:31], rx[0], rnd[23]};
    `DFX_MUL_SIDE reg [31:0] y_4;
    always @(posedge clk)
        if (en) y_4 <= {s_3, ye, yf};

    // ---------------------------------------------------------------- extra latency, or refuse
    generate
        if (LAT < MUL_MIN) begin : g_lat_below_min
            dfx_f32_mul_p_LAT_below_minimum u_err ();   // LAT must be >= MUL_MIN (4)
        end else begin : g_tail
            dfx_delay #(.W(32), .LAT(LAT - MUL_MIN), .FF(1)) u_d (.clk(clk), .en(en), .d(y_4), .q(y));
        end
    endgenerate
endmodule

`undef DFX_MUL_SIDE
`default_nettype wire
