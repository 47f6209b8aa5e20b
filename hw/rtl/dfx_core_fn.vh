// Range checks shared by the core's units (include inside a module that has the localparams
// VBUF_WORDS and HBM_CAP). They mirror the simulator's checks (dfx.sim.core._vcheck and
// dfx.sim.memory.Memory._check): 2'b00 fine, 2'b01 illegal instruction, 2'b10 address error.

// rows x cols buffer words from word address `addr` (signed), `stride` words apart
function automatic [1:0] vb_check(input [47:0] addr, input [31:0] rows, input [31:0] cols, input [31:0] stride);
    reg [63:0] last;
    begin
        vb_check = 2'b00;
        if (rows != 32'd0 && cols != 32'd0) begin
            last = {16'd0, addr} + ({32'd0, rows} - 64'd1) * {32'd0, stride} + {32'd0, cols};
            if (rows > 32'd1 && stride < cols) vb_check = 2'b01;
            else if (addr[47] || last > {32'd0, VBUF_WORDS[31:0]}) vb_check = 2'b10;
        end
    end
endfunction

// nbytes of a memory of `cap` bytes from byte address `addr` (signed)
function automatic mem_bad(input [63:0] addr, input [63:0] nbytes, input [63:0] cap);
    mem_bad = addr[63] || (addr + nbytes > cap) || (addr + nbytes < addr);
endfunction

// the same in HBM
function automatic hbm_bad(input [63:0] addr, input [63:0] nbytes);
    hbm_bad = mem_bad(addr, nbytes, HBM_CAP);
endfunction
