// A synchronous FIFO: first-word-fall-through (out_data is the head while out_valid), DEPTH a
// power of two, `count` entries held. Used for queues between the core's blocks.
`default_nettype none

module dfx_fifo #(
    parameter integer W = 8,
    parameter integer DEPTH = 4
) (
    input  wire          clk,
    input  wire          rst,
    input  wire          in_valid,
    output wire          in_ready,
    input  wire [W-1:0]  in_data,
    output wire          out_valid,
    input  wire          out_ready,
    output wire [W-1:0]  out_data,
    output reg  [$clog2(DEPTH):0] count
);
    localparam integer AW = $clog2(DEPTH);
    reg [W-1:0] mem [0:DEPTH-1];
    reg [AW-1:0] rp;
    reg [AW-1:0] wp;
    wire push = in_valid && in_ready;
    wire pop = out_valid && out_ready;
    assign in_ready = (count != DEPTH[AW:0]);
    assign out_valid = (count != 0);
    assign out_data = mem[rp];
    always @(posedge clk) begin
        if (rst) begin
            rp <= {AW{1'b0}};
            wp <= {AW{1'b0}};
            count <= {(AW+1){1'b0}};
        end else begin
            if (push) wp <= wp + 1'b1;
            if (pop) rp <= rp + 1'b1;
            count <= count + {{AW{1'b0}}, push} - {{AW{1'b0}}, pop};
        end
        if (push) mem[wp] <= in_data;
    end
endmodule

`default_nettype wire
