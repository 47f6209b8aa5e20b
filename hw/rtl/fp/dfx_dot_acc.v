// The accumulator of a dot product (docs/numerics.md, "Dot products", steps 4-6), pipelined for
// 200 MHz: the tile sums of dfx_dot_tile, in order, are added exactly into a fixed-point
// accumulator of `DFX_DOT_ACC_BITS bits in units of 2^`DFX_DOT_ACC_LSB; a beat with `first` starts a new sum
// from the FP16 bias (0 for none). y is the binary32 rounding (RNE) of the sum that includes a
// beat, dfx_dot_acc_lat (dfx_dot.vh) enabled edges after the beat came in, with the special
// cases of step 6; the caller picks the beat with its last tile. One beat per cycle.
//
// Stage plan (budget 5.0 ns; dfx.hw.timing's pessimistic corner):
//   C1  the tile's shift emax - 2 (6-bit chain) and its low 3 bits (an 8:1 mux); the bias's
//       fields
//   C2  the tile's shift by a multiple of 8 (an 8:1 mux); |bias| shifted by its exponent
//   C3  the accumulator: acc = first ? tile +- |bias| : acc + tile, two 106-bit chains side by
//       side and a 2:1 mux (the loop is acc + tile)
//   N1  |acc| (106-bit chain) and its sign
//   N2  per 8-bit group: nonzero, leading zeros
//   N3  the first nonzero group from the top (one-hot)
//   N4  the leading group's 32 bits (14-way AND-OR), its leading zeros, and whether a group
//       below them is nonzero (the coarse sticky bit)
//   N5  the bit shift (8:1 muxes): 24 significand bits, guard, sticky; the binary32 exponent
//   N6  round to nearest even (25-bit chain), pack, special cases
`default_nettype none
`include "dfx_numerics.vh"

module dfx_dot_acc #(
    parameter integer TW = 34                          // tile sum width (dfx_dot_tile's t)
) (
    input  wire          clk,
    input  wire          en,
    input  wire          v,
    input  wire          first,
    input  wire [TW-1:0] t,
    input  wire [5:0]    emax,
    input  wire          nan,
    input  wire          pinf,
    input  wire          ninf,
    input  wire [15:0]   bias,
    output reg  [31:0]   y
);
    localparam integer AB = `DFX_DOT_ACC_BITS;          // 106
    localparam integer MW = 112;                       // |acc| padded to 14 groups of 8 bits
    localparam integer NG = MW / 8;
    // binary32 exponent of the leading one at bit i of |acc|: i + ACC_LSB + 127
    localparam integer EXP0 = (MW - 1) + `DFX_DOT_ACC_LSB + 127;

    // ---------------------------------------------------------------- C1
    // the tile: its shift's low 3 bits; the bias: only its fields (it may come from a shift
    // register, so nothing long stands between the input and C1)
    wire [5:0] sh = (emax >= 6'd2) ? emax - 6'd2 : 6'd0;   // a tile's unit in accumulator units
    wire [4:0] eb = bias[14:10];
    wire b_sp = eb == 5'd31;
    reg  signed [TW+6:0] t_1;
    reg  [2:0]  shc_1;
    reg  [10:0] bm_1;                                      // the bias's significand (0: none)
    reg  [4:0]  eb_1;
    reg         bs_1;
    reg         v_1, first_1, nan_1, pinf_1, ninf_1, bnan_1, bpinf_1, bninf_1;
    always @(posedge clk)
        if (en) begin
            t_1 <= {{7{t[TW-1]}}, t} <<< sh[2:0];
            shc_1 <= sh[5:3];
            bm_1 <= (eb == 5'd0 || b_sp) ? 11'd0 : {1'b1, bias[9:0]};
            eb_1 <= eb;
            bs_1 <= bias[15];
            v_1 <= v;
            first_1 <= first;
            {nan_1, pinf_1, ninf_1} <= {nan, pinf, ninf};
            bnan_1 <= b_sp && (bias[9:0] != 10'd0);
            bpinf_1 <= b_sp && (bias[9:0] == 10'd0) && !bias[15];
            bninf_1 <= b_sp && (bias[9:0] == 10'd0) && bias[15];
        end

    // ---------------------------------------------------------------- C2
    wire signed [AB-1:0] t_x = {{(AB-TW-7){t_1[TW+6]}}, t_1};
    wire [AB-1:0] b_x = {{(AB-11){1'b0}}, bm_1};
    reg  signed [AB-1:0] t_2;
    reg  [AB-1:0] b_2;                                     // |bias| in accumulator units
    reg         bs_2;
    reg         v_2, first_2, nan_2, pinf_2, ninf_2, bnan_2, bpinf_2, bninf_2;
    always @(posedge clk)
        if (en) begin
            t_2 <= t_x <<< {shc_1, 3'b000};
            // m 2^(e - 25) in units of 2^ACC_LSB: m << (e - 25 - ACC_LSB)
            b_2 <= (b_x << eb_1) << (-25 - `DFX_DOT_ACC_LSB);
            bs_2 <= bs_1;
            {v_2, first_2, nan_2, pinf_2, ninf_2} <= {v_1, first_1, nan_1, pinf_1, ninf_1};
            {bnan_2, bpinf_2, bninf_2} <= {bnan_1, bpinf_1, bninf_1};
        end

    // ---------------------------------------------------------------- C3: the accumulator
    // a first tile starts from the bias: tile +- |bias|, one add beside the loop's
    reg  [AB-1:0] acc;
    reg           f_nan, f_pinf, f_ninf;
    wire [AB-1:0] tb = bs_2 ? t_2 - b_2 : t_2 + b_2;
    always @(posedge clk)
        if (en && v_2) begin
            acc <= first_2 ? tb : acc + t_2;
            f_nan <= (first_2 ? bnan_2 : f_nan) | nan_2;
            f_pinf <= (first_2 ? bpinf_2 : f_pinf) | pinf_2;
            f_ninf <= (first_2 ? bninf_2 : f_ninf) | ninf_2;
        end

    // ---------------------------------------------------------------- N1: sign and magnitude
    reg  [MW-1:0] mag_1;
    reg           s_1;
    reg  [1:0]    sp_1;                                    // 0 finite, 1 NaN, 2 +inf, 3 -inf
    wire [AB-2:0] acc_neg = -acc[AB-2:0];                  // |acc| < 2^(AB-1)
    always @(posedge clk)
        if (en) begin
            s_1 <= acc[AB-1];
            mag_1 <= {{(MW-AB+1){1'b0}}, acc[AB-1] ? acc_neg : acc[AB-2:0]};
            sp_1 <= (f_nan || (f_pinf && f_ninf)) ? 2'd1 : f_pinf ? 2'd2 : f_ninf ? 2'd3 : 2'd0;
        end

    // ---------------------------------------------------------------- N2: groups
    reg  [MW-1:0]   mag_2;
    reg  [NG-1:0]   nz_2;
    reg  [3*NG-1:0] lz_2;
    reg             s_2;
    reg  [1:0]      sp_2;
    function automatic [2:0] lz8(input [7:1] b);          // leading zeros of b, bit 0 not needed
        lz8 = b[7] ? 3'd0 : b[6] ? 3'd1 : b[5] ? 3'd2 : b[4] ? 3'd3 :
              b[3] ? 3'd4 : b[2] ? 3'd5 : b[1] ? 3'd6 : 3'd7;
    endfunction
    integer g;
    always @(posedge clk)
        if (en) begin
            for (g = 0; g < NG; g = g + 1) begin
                nz_2[g] <= mag_1[8*g +: 8] != 8'd0;
                lz_2[3*g +: 3] <= lz8(mag_1[8*g+1 +: 7]);
            end
            mag_2 <= mag_1;
            s_2 <= s_1;
            sp_2 <= sp_1;
        end

    // ---------------------------------------------------------------- N3: the first group
    reg  [MW-1:0]   mag_3;
    reg  [NG-1:0]   f_3;                                   // one-hot: the top nonzero group
    reg  [NG-1:0]   nz_3;
    reg  [3*NG-1:0] lz_3;
    reg             s_3, z_3;
    reg  [1:0]      sp_3;
    reg  [NG-1:0]   above;
    always @* begin
        above[NG-1] = 1'b0;
        for (g = NG - 2; g >= 0; g = g - 1) above[g] = above[g+1] | nz_2[g+1];
    end
    always @(posedge clk)
        if (en) begin
            f_3 <= nz_2 & ~above;
            nz_3 <= nz_2;
            z_3 <= nz_2 == {NG{1'b0}};
            mag_3 <= mag_2;
            lz_3 <= lz_2;
            s_3 <= s_2;
            sp_3 <= sp_2;
        end

    // ---------------------------------------------------------------- N4: group shift
    // the 32 bits from the top of the leading group (the 24 significand bits, the guard and the
    // 7 below them, whatever the bit shift), and whether a group below those 32 bits is nonzero
    wire [MW+23:0] magp = {mag_3, 24'd0};
    reg  [31:0] cs;
    reg  [2:0]  lzs;
    reg  [3:0]  zg;                                        // zero groups above the leading one
    reg         stc;
    localparam [3:0] TOPG = 4'd13;                         // NG - 1
    always @* begin
        cs = 32'd0;
        lzs = 3'd0;
        zg = 4'd0;
        stc = 1'b0;
        for (g = 0; g < NG; g = g + 1)
            if (f_3[g]) begin
                cs = cs | magp[8*g +: 32];
                lzs = lzs | lz_3[3*g +: 3];
                zg = zg | (TOPG - g[3:0]);
                if (g >= 4) stc = stc | ((nz_3 & ((14'd1 << (g - 3)) - 14'd1)) != 14'd0);
            end
    end
    reg  [31:0] cs_4;
    reg  [2:0]  lzs_4;
    reg  [3:0]  zg_4;
    reg         stc_4, s_4, z_4;
    reg  [1:0]  sp_4;
    always @(posedge clk)
        if (en) begin
            cs_4 <= cs;
            lzs_4 <= lzs;
            zg_4 <= zg;
            stc_4 <= stc;
            s_4 <= s_3;
            z_4 <= z_3;
            sp_4 <= sp_3;
        end

    // ---------------------------------------------------------------- N5: bit shift, exponent
    wire [31:0] fs = cs_4 << lzs_4;
    reg  [23:0] sig_5;
    reg         gd_5, st_5, s_5, z_5;
    reg  [7:0]  ex_5, ex1_5;
    reg  [1:0]  sp_5;
    always @(posedge clk)
        if (en) begin
            sig_5 <= fs[31:8];
            gd_5 <= fs[7];
            st_5 <= stc_4 || (fs[6:0] != 7'd0);
            ex_5 <= EXP0[7:0] - {1'b0, zg_4, lzs_4};
            ex1_5 <= EXP0[7:0] + 8'd1 - {1'b0, zg_4, lzs_4};
            s_5 <= s_4;
            z_5 <= z_4;
            sp_5 <= sp_4;
        end

    // ---------------------------------------------------------------- N6: round and pack
    // a carry out of the significand leaves it 2^24: fraction 0, the exponent one up
    wire [24:0] sr = {1'b0, sig_5} + {24'd0, gd_5 && (st_5 || sig_5[0])};
    wire unused_lead = sr[23];                             // the leading 1
    always @(posedge clk)
        if (en)
            case (sp_5)
                2'd1: y <= 32'h7FC00000;
                2'd2: y <= 32'h7F800000;
                2'd3: y <= 32'hFF800000;
                default: y <= z_5 ? 32'd0 : {s_5, sr[24] ? ex1_5 : ex_5, sr[22:0]};
            endcase
endmodule

`default_nettype wire
