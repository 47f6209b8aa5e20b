// FP16 x FP16 -> exact FP32 product, pipelined for 200 MHz: dfx_f16_mul_c (inputs flushed) cut by
// registers into MUL16_MIN = 3 stages, advanced by en; the MPU's multiplier. The result appears LAT
// enabled edges after its inputs; LAT > MUL16_MIN adds plain registers at the end, LAT < MUL16_MIN
// does not elaborate (an instance of the nonexistent module dfx_f16_mul_p_LAT_below_minimum).
// MUL16_MIN is below dfx_f32_mul_p's MUL_MIN (4), so one MUL_LAT >= 4 serves both.
// tests/hw/test_synth.py proves it equal to dfx_f16_mul_c for every input pair.
//
// The 11 x 11-bit significand product is one DSP48E2, written with a register on its inputs (R1)
// and on its output (R2), enabled by en and driving nothing else, so the implementation tool packs
// them into the DSP (AREG = BREG = 1, PREG = 1). Yosys 0.23 packs no register into a DSP48E2 and
// counts them as flip-flops (see dfx_f32_add_p.v).
//
// Stage plan (estimate as in dfx_f32_add_p.v, budget 5.0 ns; dfx.hw.timing's pessimistic figure
// from Yosys's netlist in brackets):
//   S1  a, b -> R1   DSP input registers; special cases (10-bit zero tests: 2-3 LUT), ea + eb
//                    (6-bit chain)                                                  ~ 2.4 ns [2.5]
//   S2  R1 -> R2     DSP: the product (A/B register -> P register); beside it ea + eb + 97
//                    (8-bit chain) and the selection flags (1 LUT)                  ~ 3.7 ns [3.7]
//   S3  R2 -> R3     exponent + p[21] (8-bit chain), normalise (a 2:1 mux) and pack (1 LUT)
//                                                                                   ~ 2.1 ns [3.2]
`default_nettype none

// The registers beside the DSP stay flip-flops (dfx_delay.v, FF = 1): a chain of them must not
// become a shift-register LUT. Vivado reads shreg_extract = "no"; Yosys, which ignores it, reads keep.
`ifdef YOSYS
`define DFX_MUL16_SIDE (* keep, shreg_extract = "no" *)
`else
`define DFX_MUL16_SIDE (* shreg_extract = "no" *)
`endif

module dfx_f16_mul_p #(
    parameter integer LAT = 3
) (
    input  wire        clk,
    input  wire        en,
    input  wire [15:0] a,
    input  wire [15:0] b,
    output wire [31:0] y
);
    localparam integer MUL16_MIN = 3;        // the pipeline's own stages, R1 .. R3

    // ---------------------------------------------------------------- S1: special cases
    wire [4:0] ea = a[14:10];
    wire [4:0] eb = b[14:10];
    wire a_nan = (ea == 5'd31) && (a[9:0] != 10'd0);
    wire b_nan = (eb == 5'd31) && (b[9:0] != 10'd0);
    wire a_inf = (ea == 5'd31) && (a[9:0] == 10'd0);
    wire b_inf = (eb == 5'd31) && (b[9:0] == 10'd0);
    wire a_zero = (ea == 5'd0);
    wire b_zero = (eb == 5'd0);
    reg [10:0] sa_1;                         // DSP A register
    reg [10:0] sb_1;                         // DSP B register
    `DFX_MUL16_SIDE reg [5:0] es_1;
    `DFX_MUL16_SIDE reg       nan_1, inf_1, zero_1, s_1;
    always @(posedge clk)
        if (en) begin
            // the leading 1 of each significand as !zero (a zero's product is never used): a
            // register with a constant bit would not be packed whole into the DSP's A/B register
            sa_1 <= {!a_zero, a[9:0]};
            sb_1 <= {!b_zero, b[9:0]};
            es_1 <= {1'b0, ea} + {1'b0, eb};
            nan_1 <= a_nan || b_nan || (a_inf && b_zero) || (b_inf && a_zero);
            inf_1 <= a_inf || b_inf;
            zero_1 <= a_zero || b_zero;
            s_1 <= a[15] ^ b[15];
        end

    // ---------------------------------------------------------------- S2: product (DSP), exponent
    wire [21:0] p = sa_1 * sb_1;
    reg [21:0] p_2;                          // DSP P register
    `DFX_MUL16_SIDE reg [7:0] e_2;
    `DFX_MUL16_SIDE reg       ff_2, nm_2, nan_2, s_2;
    always @(posedge clk)
        if (en) begin
            p_2 <= p;
            // unbiased ea-15 + eb-15, FP32 bias 127: ea + eb + 97 (+1 in S3 when the product is >= 2)
            e_2 <= {2'b00, es_1} + 8'd97;
            ff_2 <= nan_1 || inf_1;          // exponent all ones: NaN or infinity
            nm_2 <= !nan_1 && !inf_1 && !zero_1;
            nan_2 <= nan_1;
            s_2 <= !nan_1 && s_1;
        end

    // ---------------------------------------------------------------- S3: normalise, pack
    wire [7:0]  eres = e_2 + {7'd0, p_2[21]};
    wire [22:0] mres = p_2[21] ? {p_2[20:0], 2'b00} : {p_2[19:0], 3'b000};
    wire [7:0]  ye = {8{ff_2}} | ({8{nm_2}} & eres);
    wire [22:0] yf = ({23{nm_2}} & mres) | {nan_2, 22'd0};
    `DFX_MUL16_SIDE reg [31:0] y_3;
    always @(posedge clk)
        if (en) y_3 <= {s_2, ye, yf};

    // ---------------------------------------------------------------- extra latency, or refuse
    generate
        if (LAT < MUL16_MIN) begin : g_lat_below_min
            dfx_f16_mul_p_LAT_below_minimum u_err ();   // LAT must be >= MUL16_MIN (3)
        end else begin : g_tail
            dfx_delay #(.W(32), .LAT(LAT - MUL16_MIN), .FF(1)) u_d (.clk(clk), .en(en), .d(y_3), .q(y));
        end
    endgenerate
endmodule

`undef DFX_MUL16_SIDE
`default_nettype wire
