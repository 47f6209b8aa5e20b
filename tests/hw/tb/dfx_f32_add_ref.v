// Reference FP32 + FP32 (IEEE round to nearest even, subnormals flushed as docs/hw.md says),
// written plainly: the core's dfx_f32_add_c before it was rewritten for LUT count.
// tests/hw/test_rtl.py proves the two equal for every input pair (Yosys SAT miter).
`default_nettype none

module dfx_f32_add_ref (
    input  wire [31:0] a,
    input  wire [31:0] b,
    output reg  [31:0] y
);
    wire [7:0] ea = a[30:23];
    wire [7:0] eb = b[30:23];
    wire a_nan = (ea == 8'hFF) && (a[22:0] != 23'd0);
    wire b_nan = (eb == 8'hFF) && (b[22:0] != 23'd0);
    wire a_inf = (ea == 8'hFF) && (a[22:0] == 23'd0);
    wire b_inf = (eb == 8'hFF) && (b[22:0] == 23'd0);
    wire a_zero = (ea == 8'd0);
    wire b_zero = (eb == 8'd0);
    // order by magnitude: big >= small
    wire swap = {eb, b[22:0]} > {ea, a[22:0]};
    wire [31:0] big = swap ? b : a;
    wire [31:0] sml = swap ? a : b;
    wire [7:0]  d8 = big[30:23] - sml[30:23];
    wire [4:0]  d = (d8 > 8'd30) ? 5'd30 : d8[4:0];
    wire [53:0] sh = {1'b1, sml[22:0], 30'd0} >> d;
    wire [26:0] mb = {1'b1, big[22:0], 3'b000};
    wire [26:0] ms = {sh[53:28], sh[27] | (|sh[26:0])};
    wire        sub = big[31] ^ sml[31];
    wire [27:0] sum = sub ? ({1'b0, mb} - {1'b0, ms}) : ({1'b0, mb} + {1'b0, ms});
    reg  [26:0] nrm;
    reg  [4:0]  lz;
    reg  signed [9:0] en;
    reg  [24:0] rnd;
    reg  signed [9:0] ef;
    integer i;
    always @* begin
        // normalise
        lz = 5'd0;
        nrm = 27'd0;
        en = 10'sd0;
        rnd = 25'd0;
        ef = 10'sd0;
        if (sum[27]) begin
            nrm = {sum[27:2], sum[1] | sum[0]};
            en = $signed({2'b00, big[30:23]}) + 10'sd1;
        end else begin
            for (i = 0; i < 27; i = i + 1)
                if (sum[i])
                    lz = 5'd26 - i[4:0];
            nrm = sum[26:0] << lz;
            en = $signed({2'b00, big[30:23]}) - $signed({5'd0, lz});
        end
        // round to nearest even on guard, round and sticky bits
        rnd = {1'b0, nrm[26:3]} + {24'd0, nrm[2] & (nrm[1] | nrm[0] | nrm[3])};
        ef = rnd[24] ? en + 10'sd1 : en;
        if (a_nan || b_nan || (a_inf && b_inf && (a[31] != b[31])))
            y = 32'h7FC00000;
        else if (a_inf)
            y = a;
        else if (b_inf)
            y = b;
        else if (a_zero && b_zero)
            y = {a[31] & b[31], 31'd0};
        else if (a_zero)
            y = b;
        else if (b_zero)
            y = a;
        else if (sum == 28'd0)
            y = 32'd0;                       // x + (-x) = +0 under round to nearest
        else if (ef >= 10'sd255)
            y = {big[31], 8'hFF, 23'd0};
        else if (ef <= 10'sd0)
            y = {big[31], 31'd0};            // flush (cannot occur in the dfx datapath)
        else
            y = {big[31], ef[7:0], rnd[24] ? rnd[23:1] : rnd[22:0]};
    end
endmodule

`default_nettype wire
