// A W-bit delay line of LAT register stages that advance together when `en` is high.
// LAT = 0 is a wire. Every dfx pipeline stalls as a whole on one enable (docs/hw.md).
//
// FF = 1: the stages are the pipeline of the combinational unit in front of them (an FP adder or
// multiplier followed by its LAT stages). They must stay flip-flops, which the implementation
// tool can retime into that unit to meet the clock: shift-register LUTs (SRL16E/SRLC32E) cannot
// be retimed, and they would spend scarce LUTs where flip-flops are plentiful (docs/hw.md,
// Resources). Vivado reads shreg_extract = "no"; Yosys, which ignores it, reads keep.
// FF = 0: pure alignment (sideband bits travelling beside a pipeline); an SRL is fine there.
`default_nettype none

module dfx_delay #(
    parameter integer W = 1,
    parameter integer LAT = 1,
    parameter integer FF = 0
) (
    input  wire         clk,
    input  wire         en,
    input  wire [W-1:0] d,
    output wire [W-1:0] q
);
    genvar s;
    generate
        if (LAT == 0) begin : g_wire
            assign q = d;
            wire _unused_ok = &{1'b0, clk, en};
        end else if (FF != 0) begin : g_ffs
            for (s = 0; s < LAT; s = s + 1) begin : g_st
`ifdef YOSYS
                (* keep *)
`endif
                (* shreg_extract = "no" *) reg [W-1:0] r;
                if (s == 0) begin : g_first
                    always @(posedge clk)
                        if (en) r <= d;
                end else begin : g_next
                    always @(posedge clk)
                        if (en) r <= g_st[s-1].r;
                end
            end
            assign q = g_st[LAT-1].r;
        end else begin : g_regs
            reg [W-1:0] r [0:LAT-1];
            integer i;
            always @(posedge clk)
                if (en) begin
                    r[0] <= d;
                    for (i = 1; i < LAT; i = i + 1)
                        r[i] <= r[i-1];
                end
            assign q = r[LAT-1];
        end
    endgenerate
endmodule

`default_nettype wire
