// STUB of dfx_core_flat, for the harness tests only (tests/hw/test_harness.py): the real core is
// hw/rtl/core/dfx_core_flat.v. Same parameters and ports, just enough behaviour to prove that the
// testbench (hw/sim/dfx_tb.v) moves bytes both ways through the HBM interleave, drives the
// AXI4-Lite registers, sees done and passes ring words.
//
// On ap_start it
//   1. reads the beat at flat HBM address `entry` (channel beat % CH, offset (beat / CH) * P),
//   2. sends one ring word: payload bits [31:0] = the low word of that beat, header src = core,
//   3. waits up to RING_TIMEOUT cycles for a ring word, then counts the words that arrive in the
//      next 32 cycles,
//   4. writes a status record (arch/kernel.py) at flat address `status`, one single-beat burst
//      per beat: code 0 (or 5 = ring timeout, or 2 = read error), core, pc 2, detail = the low word
//      of the beat it read, detail2 = payload bits [31:0] of the word it received, cycles since
//      start, busy_net = ring words received, retired = 3,
//   5. raises ap_done (and ISR bit 0 when IER bit 0 is set).
// Each step that ends retires a fake instruction on dbg_retire bit 0, the control slot of the real
// core's retire ports (pc 0, 1, 2; op 1, 2, 3).
`default_nettype none
`include "dfx_kernel.vh"

module dfx_core_flat #(
    parameter integer LANES = 4, WIDTH = 8, VWIDTH = 8,
    parameter integer MUL_LAT = 2, ADD_LAT = 2, RECIP_LAT = 2, RSQRT_LAT = 2,
    parameter integer CH = 4,
    parameter integer HBM_BITS = 128,
    parameter integer CH_BYTES_LOG2 = 28,
    parameter integer HAS_DDR = 0, DDR_BITS = 512, DDR_BYTES_LOG2 = 35,
    parameter integer VBUF_WORDS = 1048576, RING_WORDS = 8, IQ_DEPTH = 8, UQ = 4, RD_QD = 4,
    parameter integer CTRL_AW = 8,
    parameter integer RING_TIMEOUT = 100000
) (
    input  wire ap_clk, input wire ap_rst_n, output wire interrupt,
    input  wire s_axi_control_awvalid, output wire s_axi_control_awready, input wire [CTRL_AW-1:0] s_axi_control_awaddr,
    input  wire s_axi_control_wvalid, output wire s_axi_control_wready, input wire [31:0] s_axi_control_wdata,
    input  wire [3:0] s_axi_control_wstrb,
    output reg  s_axi_control_bvalid, input wire s_axi_control_bready, output wire [1:0] s_axi_control_bresp,
    input  wire s_axi_control_arvalid, output wire s_axi_control_arready, input wire [CTRL_AW-1:0] s_axi_control_araddr,
    output reg  s_axi_control_rvalid, input wire s_axi_control_rready, output reg [31:0] s_axi_control_rdata,
    output wire [1:0] s_axi_control_rresp,
    output wire [CH-1:0] hbm_awvalid, input wire [CH-1:0] hbm_awready, output wire [64*CH-1:0] hbm_awaddr,
    output wire [8*CH-1:0] hbm_awlen, output wire [3*CH-1:0] hbm_awsize, output wire [2*CH-1:0] hbm_awburst,
    output wire [CH-1:0] hbm_wvalid, input wire [CH-1:0] hbm_wready, output wire [HBM_BITS*CH-1:0] hbm_wdata,
    output wire [HBM_BITS/8*CH-1:0] hbm_wstrb, output wire [CH-1:0] hbm_wlast,
    input  wire [CH-1:0] hbm_bvalid, output wire [CH-1:0] hbm_bready, input wire [2*CH-1:0] hbm_bresp,
    output wire [CH-1:0] hbm_arvalid, input wire [CH-1:0] hbm_arready, output wire [64*CH-1:0] hbm_araddr,
    output wire [8*CH-1:0] hbm_arlen, output wire [3*CH-1:0] hbm_arsize, output wire [2*CH-1:0] hbm_arburst,
    input  wire [CH-1:0] hbm_rvalid, output wire [CH-1:0] hbm_rready, input wire [HBM_BITS*CH-1:0] hbm_rdata,
    input  wire [2*CH-1:0] hbm_rresp, input wire [CH-1:0] hbm_rlast,
    output wire ddr_awvalid, input wire ddr_awready, output wire [63:0] ddr_awaddr, output wire [7:0] ddr_awlen,
    output wire [2:0] ddr_awsize, output wire [1:0] ddr_awburst,
    output wire ddr_wvalid, input wire ddr_wready, output wire [DDR_BITS-1:0] ddr_wdata,
    output wire [DDR_BITS/8-1:0] ddr_wstrb, output wire ddr_wlast,
    input  wire ddr_bvalid, output wire ddr_bready, input wire [1:0] ddr_bresp,
    output wire ddr_arvalid, input wire ddr_arready, output wire [63:0] ddr_araddr, output wire [7:0] ddr_arlen,
    output wire [2:0] ddr_arsize, output wire [1:0] ddr_arburst,
    input  wire ddr_rvalid, output wire ddr_rready, input wire [DDR_BITS-1:0] ddr_rdata, input wire [1:0] ddr_rresp,
    input  wire ddr_rlast,
    input  wire s_axis_ring_tvalid, output wire s_axis_ring_tready, input wire [16*RING_WORDS+31:0] s_axis_ring_tdata,
    input  wire s_axis_ring_tlast,
    output wire m_axis_ring_tvalid, input wire m_axis_ring_tready, output wire [16*RING_WORDS+31:0] m_axis_ring_tdata,
    output wire m_axis_ring_tlast
);
    localparam integer P = HBM_BITS / 8;           // bytes per beat
    localparam integer LP = $clog2(P);
    localparam integer LC = (CH > 1) ? $clog2(CH) : 0;
    localparam integer NREC = 256 / P;             // beats of the status record
    localparam integer NREG = (1 << CTRL_AW) / 4;
    localparam [3:0] IDLE = 4'd0, RD_AR = 4'd1, RD_R = 4'd2, TX = 4'd3, RX = 4'd4, WIN = 4'd5,
                     WR_AW = 4'd6, WR_B = 4'd7;

    // ------------------------------------------------------------ AXI4-Lite registers
    reg [31:0] regs [0:NREG-1];                    // argument registers (word index = offset / 4)
    reg start, done, gie, isr;
    reg [1:0] ier;
    reg [3:0] st;
    wire wr = s_axi_control_awvalid && s_axi_control_wvalid && !s_axi_control_bvalid;
    wire [CTRL_AW-3:0] wi = s_axi_control_awaddr[CTRL_AW-1:2];
    wire [CTRL_AW-3:0] ri = s_axi_control_araddr[CTRL_AW-1:2];
    assign s_axi_control_awready = wr;
    assign s_axi_control_wready = wr;
    assign s_axi_control_bresp = 2'b00;
    assign s_axi_control_arready = !s_axi_control_rvalid;
    assign s_axi_control_rresp = 2'b00;
    assign interrupt = gie && isr;

    function [63:0] arg64(input integer off);
        arg64 = {regs[off / 4 + 1], regs[off / 4]};
    endfunction

    // ------------------------------------------------------------ the fake program
    reg [63:0] cycles, flat;
    reg [1:0] got;                                 // write beat: AW taken, W taken
    reg [31:0] detail, detail2, code, timer, nrx;
    reg [7:0] beat;
    reg [2047:0] rec;
    wire [63:0] fbeat = flat >> LP;                // flat beat of the current access
    wire [63:0] caddr = ((fbeat >> LC) << LP) + arg64(`DFX_ARG_PTR_BASE + 8 * (fbeat % CH));

    assign hbm_arvalid = (st == RD_AR) ? ({{(CH - 1){1'b0}}, 1'b1} << (fbeat % CH)) : {CH{1'b0}};
    assign hbm_araddr = {CH{caddr}};
    assign hbm_arlen = {CH{8'd0}};
    assign hbm_arsize = {CH{LP[2:0]}};
    assign hbm_arburst = {CH{2'b01}};
    assign hbm_rready = (st == RD_R) ? {CH{1'b1}} : {CH{1'b0}};
    assign hbm_awvalid = (st == WR_AW && !got[0]) ? ({{(CH - 1){1'b0}}, 1'b1} << (fbeat % CH)) : {CH{1'b0}};
    assign hbm_wvalid = (st == WR_AW && !got[1]) ? ({{(CH - 1){1'b0}}, 1'b1} << (fbeat % CH)) : {CH{1'b0}};
    assign hbm_awaddr = {CH{caddr}};
    assign hbm_awlen = {CH{8'd0}};
    assign hbm_awsize = {CH{LP[2:0]}};
    assign hbm_awburst = {CH{2'b01}};
    assign hbm_wdata = {CH{rec[HBM_BITS * beat +: HBM_BITS]}};
    assign hbm_wstrb = {(HBM_BITS / 8 * CH){1'b1}};
    assign hbm_wlast = {CH{1'b1}};
    assign hbm_bready = (st == WR_B) ? {CH{1'b1}} : {CH{1'b0}};

    assign ddr_awvalid = 1'b0, ddr_awaddr = 64'd0, ddr_awlen = 8'd0, ddr_awsize = 3'd0, ddr_awburst = 2'd0;
    assign ddr_wvalid = 1'b0, ddr_wdata = {DDR_BITS{1'b0}}, ddr_wstrb = {(DDR_BITS / 8){1'b0}}, ddr_wlast = 1'b0;
    assign ddr_bready = 1'b0, ddr_arvalid = 1'b0, ddr_araddr = 64'd0, ddr_arlen = 8'd0, ddr_arsize = 3'd0;
    assign ddr_arburst = 2'd0, ddr_rready = 1'b0;

    assign m_axis_ring_tvalid = (st == TX);
    assign m_axis_ring_tdata = {8'd0, 16'd0, regs[`DFX_ARG_CORE / 4][7:0], {(16 * RING_WORDS - 32){1'b0}}, detail};
    assign m_axis_ring_tlast = 1'b1;
    assign s_axis_ring_tready = (st == RX || st == WIN);

    reg [3:0] dbg_retire;
    reg [127:0] dbg_retire_pc;
    reg [23:0] dbg_retire_op;
    wire [4:1] u_start = 4'd0;           // the real core's unit start pulses (the bench's trace reads them)

    integer i;
    always @(posedge ap_clk) begin
        dbg_retire <= 4'd0;
        if (!ap_rst_n) begin
            for (i = 0; i < NREG; i = i + 1) regs[i] <= 32'd0;
            start <= 1'b0; done <= 1'b0; gie <= 1'b0; ier <= 2'd0; isr <= 1'b0;
            s_axi_control_bvalid <= 1'b0; s_axi_control_rvalid <= 1'b0; s_axi_control_rdata <= 32'd0;
            st <= IDLE;
        end else begin
            // control slave
            if (wr) begin
                s_axi_control_bvalid <= 1'b1;
                case (wi)
                    `DFX_REG_CTRL / 4: if (s_axi_control_wdata[0]) start <= 1'b1;
                    `DFX_REG_GIE / 4: gie <= s_axi_control_wdata[0];
                    `DFX_REG_IER / 4: ier <= s_axi_control_wdata[1:0];
                    `DFX_REG_ISR / 4: isr <= isr ^ s_axi_control_wdata[0];
                    default: regs[wi] <= s_axi_control_wdata;
                endcase
            end else if (s_axi_control_bready)
                s_axi_control_bvalid <= 1'b0;
            if (s_axi_control_arvalid && !s_axi_control_rvalid) begin
                s_axi_control_rvalid <= 1'b1;
                case (ri)
                    `DFX_REG_CTRL / 4: begin
                        s_axi_control_rdata <= {28'd0, 1'b0, st == IDLE && !start, done, start};
                        done <= 1'b0;                         // clear on read
                    end
                    `DFX_REG_GIE / 4: s_axi_control_rdata <= {31'd0, gie};
                    `DFX_REG_IER / 4: s_axi_control_rdata <= {30'd0, ier};
                    `DFX_REG_ISR / 4: s_axi_control_rdata <= {31'd0, isr};
                    default: s_axi_control_rdata <= regs[ri];
                endcase
            end else if (s_axi_control_rready)
                s_axi_control_rvalid <= 1'b0;
            // the fake program
            cycles <= cycles + 64'd1;
            case (st)
                IDLE: if (start) begin
                    start <= 1'b0;
                    cycles <= 64'd0;
                    code <= 32'd0; detail <= 32'd0; detail2 <= 32'd0; nrx <= 32'd0;
                    flat <= arg64(`DFX_ARG_ENTRY);
                    st <= RD_AR;
                end
                RD_AR: if (hbm_arready[fbeat % CH]) st <= RD_R;
                RD_R: if (hbm_rvalid[fbeat % CH]) begin
                    detail <= hbm_rdata[HBM_BITS * (fbeat % CH) +: 32];
                    if (hbm_rresp[2 * (fbeat % CH) +: 2] != 2'b00) code <= `DFX_ERR_ADDRESS;
                    dbg_retire <= 4'd1; dbg_retire_pc <= 128'd0; dbg_retire_op <= 24'd1;
                    st <= TX;
                end
                TX: if (m_axis_ring_tready) begin
                    timer <= 32'd0;
                    st <= RX;
                end
                RX: if (s_axis_ring_tvalid) begin
                    detail2 <= s_axis_ring_tdata[31:0];
                    nrx <= 32'd1;
                    timer <= 32'd0;
                    dbg_retire <= 4'd1; dbg_retire_pc <= 128'd1; dbg_retire_op <= 24'd2;
                    st <= WIN;
                end else if (timer == RING_TIMEOUT) begin
                    code <= `DFX_ERR_RING_TIMEOUT;
                    timer <= 32'd32;
                    st <= WIN;
                end else
                    timer <= timer + 32'd1;
                WIN: begin
                    if (s_axis_ring_tvalid) nrx <= nrx + 32'd1;
                    timer <= timer + 32'd1;
                    if (timer == 32'd32) begin
                        rec <= {2048{1'b0}};
                        rec[8 * `DFX_ST_MAGIC +: 32] <= `DFX_STATUS_MAGIC;
                        rec[8 * `DFX_ST_CODE +: 32] <= code;
                        rec[8 * `DFX_ST_CORE +: 32] <= regs[`DFX_ARG_CORE / 4];
                        rec[8 * `DFX_ST_PC +: 32] <= 32'd2;
                        rec[8 * `DFX_ST_DETAIL +: 32] <= detail;
                        rec[8 * `DFX_ST_DETAIL2 +: 32] <= detail2;
                        rec[8 * `DFX_ST_CYCLES +: 64] <= cycles;
                        rec[8 * `DFX_ST_BUSY_NET +: 64] <= {32'd0, nrx};
                        rec[8 * `DFX_ST_RETIRED +: 64] <= 64'd3;
                        flat <= arg64(`DFX_ARG_STATUS);
                        beat <= 8'd0;
                        got <= 2'd0;
                        st <= WR_AW;
                    end
                end
                WR_AW: begin
                    if (hbm_awvalid[fbeat % CH] && hbm_awready[fbeat % CH]) got[0] <= 1'b1;
                    if (hbm_wvalid[fbeat % CH] && hbm_wready[fbeat % CH]) got[1] <= 1'b1;
                    if ((got[0] || hbm_awready[fbeat % CH]) && (got[1] || hbm_wready[fbeat % CH])) st <= WR_B;
                end
                WR_B: if (hbm_bvalid[fbeat % CH]) begin
                    got <= 2'd0;
                    if (beat == NREC - 1) begin
                        done <= 1'b1;
                        if (ier[0]) isr <= 1'b1;
                        dbg_retire <= 4'd1; dbg_retire_pc <= 128'd2; dbg_retire_op <= 24'd3;
                        st <= IDLE;
                    end else begin
                        beat <= beat + 8'd1;
                        flat <= flat + P;
                        st <= WR_AW;
                    end
                end
                default: st <= IDLE;
            endcase
        end
    end
endmodule

`default_nettype wire
