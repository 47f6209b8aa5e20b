// dfx on-chip buffer: NB banks of FP16 words, word a in bank a % NB at row a / NB.
//
// Any NB consecutive words, at any word address, are one access: two read ports (A, B; data one
// cycle after the address) and one write port (NB words from w_addr with a lane mask). Lane i of
// a port is word addr + i; the rotation between lanes and banks is the only logic. Addresses wrap
// at the buffer size, so lanes past the end may alias: the units check every range first and mask
// the lanes they do not use. The buffer starts as zeros (its contents at configuration), as the
// simulator's does, and keeps its contents from one run to the next.
`default_nettype none

module dfx_vbuf #(
    parameter integer NB = 8,            // banks = words per access (a power of two)
    parameter integer WORDS = 1048576,   // buffer size in FP16 words (a power of two)
    parameter integer AW = 24            // address bits of the ports
) (
    input  wire               clk,
    input  wire [AW-1:0]      ra_addr,
    output wire [16*NB-1:0]   ra_data,
    input  wire [AW-1:0]      rb_addr,
    output wire [16*NB-1:0]   rb_data,
    input  wire               we,
    input  wire [AW-1:0]      w_addr,
    input  wire [16*NB-1:0]   w_data,
    input  wire [NB-1:0]      w_mask
);
    localparam integer LG = $clog2(NB);
    localparam integer DEPTH = WORDS / NB;
    localparam integer RW = $clog2(DEPTH);

    reg  [LG-1:0] ra_lo;
    reg  [LG-1:0] rb_lo;
    wire [16*NB-1:0] qa;
    wire [16*NB-1:0] qb;
    always @(posedge clk) begin
        ra_lo <= ra_addr[LG-1:0];
        rb_lo <= rb_addr[LG-1:0];
    end

    genvar b;
    generate
        for (b = 0; b < NB; b = b + 1) begin : g_bank
            localparam [LG-1:0] BI = b;
            reg [15:0] mem [0:DEPTH-1];
            wire [LG-1:0] wl = BI - w_addr[LG-1:0];
            // bank BI holds word addr + ((BI - addr) mod NB): one row further on when BI < addr mod NB
            // (the borrow of BI - addr mod NB)
            wire [LG:0] wb = {1'b0, BI} - {1'b0, w_addr[LG-1:0]};
            wire [LG:0] ab = {1'b0, BI} - {1'b0, ra_addr[LG-1:0]};
            wire [LG:0] bb = {1'b0, BI} - {1'b0, rb_addr[LG-1:0]};
            wire [RW-1:0] wrow = w_addr[LG +: RW] + {{(RW-1){1'b0}}, wb[LG]};
            wire [RW-1:0] arow = ra_addr[LG +: RW] + {{(RW-1){1'b0}}, ab[LG]};
            wire [RW-1:0] brow = rb_addr[LG +: RW] + {{(RW-1){1'b0}}, bb[LG]};
            reg [15:0] qa_r;
            reg [15:0] qb_r;
            integer z;
`ifndef SYNTHESIS   // simulators start the banks as zeros, as BRAM/URAM hold after configuration (Yosys,
            // which defines SYNTHESIS, would unroll the loop word by word)
            initial for (z = 0; z < DEPTH; z = z + 1) mem[z] = 16'd0;
`endif
            always @(posedge clk) begin
                if (we && w_mask[wl])
                    mem[wrow] <= w_data[16*wl +: 16];
                qa_r <= mem[arow];
                qb_r <= mem[brow];
            end
            assign qa[16*b +: 16] = qa_r;
            assign qb[16*b +: 16] = qb_r;
        end
        for (b = 0; b < NB; b = b + 1) begin : g_rot
            localparam [LG-1:0] BI = b;
            wire [LG-1:0] sa = ra_lo + BI;
            wire [LG-1:0] sb = rb_lo + BI;
            assign ra_data[16*b +: 16] = qa[16*sa +: 16];
            assign rb_data[16*b +: 16] = qb[16*sb +: 16];
        end
    endgenerate
    // address bits past NB x DEPTH words: the buffer wraps there (the units check addresses first)
    wire _unused_ok = &{1'b0, ra_addr, rb_addr, w_addr, 1'b0};
endmodule

`default_nettype wire
