"""Packaging dfx_core as a Vitis RTL kernel, and the ring adapters to the Aurora links.

    python -m dfx.hw.vitis xo-files --target u280 --out DIR   # Tcl + adapter Verilog for `make xo`
    python -m dfx.hw.vitis keys --target u280                 # xclbinutil --key-value arguments
    python -m dfx.hw.vitis ring --target u280                 # how a ring word crosses the link
    python -m dfx.hw.vitis platform --target u280             # the target's Vitis platform
    python -m dfx.hw.vitis bundle --target u280 BUNDLE        # check a bundle's target, print N
    python -m dfx.hw.vitis check-keys --target u280 KV.json   # check xclbinutil's KEYVALUE_METADATA

hw/vitis/Makefile runs these (docs/u280.md). Nothing here is checked in per target: the files
are made at build time from

* the ports of the generated top hw/gen/<target>/dfx_core.v, read with pyverilog (never
  restated): the bus interfaces the Tcl associates with ap_clk, the m_axi ports, the ring width;
* the register map of dfx.arch.kernel (kernel_args): one `ipx::add_register` per argument at
  its offset, pointers tied to their m_axi port by ASSOCIATED_BUSIF.

The two must agree (every pointer argument has its m_axi port and back, the s_axi_control
address covers the map), or kernel_spec raises DfxError naming what differs.

The Tcl follows Xilinx's Vitis_Accel_Examples rtl_kernels/rtl_vadd (src/krnl_vadd/
package_kernel.tcl and gen_xo.tcl, at commit f6b00765, the last before that example was removed)
and pc2/Aurora-HLS tcl/pack_kernel.tcl (commit 518f59d) for the free-running adapters
(`-ctrl_protocol ap_ctrl_none`) and the reset association.

The ring over QSFP28 runs through pc2/Aurora-HLS ("AuroraFlow"): one packaged kernel per QSFP
port, aurora_flow_0 and aurora_flow_1 (README.md: "Link aurora_flow_0.xo with QSFP port 0 and
aurora_flow_1.xo with QSFP port 1"), each with an AXI4-Stream `tx_axis` in and `rx_axis` out of
FIFO_WIDTH bytes (Makefile: FIFO_WIDTH := 64, so 512 bits; rtl/aurora_flow.v.template.v) and, in
the default streaming mode (USE_FRAMING=0), neither tlast nor tkeep. Our ring word is
16 * RING_WORDS + 32 bits (160 for tiny, 1056 for the U280 targets), so it does not fit one
link beat: dfx_ring_tx cuts each word (with its tlast bit where a spare bit is left) into
ceil(bits / 512) beats, low bits first, and dfx_ring_rx puts them back together by counting.
Beats are never lost or reordered by a flow-controlled Aurora link (its README: overruns are
counted, and mean a wrong FIFO configuration); if a beat were lost anyway, every later word
would be misassembled, and the core's per-word check byte and sequence number report a ring
fault. The receiving core does not read tlast (hw/rtl/net/dfx_net.v: "TLAST (every word stands
alone)").
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import sys
import tempfile
from pathlib import Path

from dfx.arch import kernel
from dfx.errors import DfxError

# ------------------------------------------------------------------ names the link config uses
KERNEL, CU = "dfx_core", "dfx_core_1"
RING_TX, RING_RX = "dfx_ring_tx", "dfx_ring_rx"  # free-running adapters, one instance each per card
RING_TX_CU, RING_RX_CU = f"{RING_TX}_1", f"{RING_RX}_1"
# their ports: ring side (the core's ring word) and link side (Aurora beats); idle/drain tie off the
# Aurora directions the ring does not use (card i sends on QSFP1 and receives on QSFP0 only)
TX_RING_IN, TX_LINK_OUT, TX_IDLE_OUT = "s_axis_ring", "m_axis_link", "m_axis_idle"
RX_LINK_IN, RX_RING_OUT, RX_DRAIN_IN = "s_axis_link", "m_axis_ring", "s_axis_drain"

# pc2/Aurora-HLS at 518f59d (README.md, Makefile, aurora_flow_test_hw.cfg, rtl/aurora_flow.v.template.v)
AURORA = ("aurora_flow_0", "aurora_flow_1")  # kernel (and instance) for QSFP0, QSFP1
AURORA_TX, AURORA_RX = "tx_axis", "rx_axis"
AURORA_SLR = "SLR2"  # aurora_flow_test_hw.cfg: slr=aurora_flow_0:SLR2, slr=aurora_flow_1:SLR2 (the QSFP GTs)


def aurora_connect(i: int) -> list[str]:
    """The platform connections of aurora_flow_<i> (QSFP port i), as aurora_flow_test_hw.cfg writes them."""
    return [f"connect=io_clk_qsfp{i}_refclkb_00:{AURORA[i]}/gt_refclk_{i}",
            f"connect={AURORA[i]}/gt_port:io_gt_qsfp{i}_00",
            f"connect={AURORA[i]}/init_clk:ii_level0_wire/ulp_m_aclk_freerun_ref_00"]


# ------------------------------------------------------------------ the top's ports (pyverilog)
@dataclasses.dataclass(frozen=True)
class Port:
    name: str
    direction: str  # "input" | "output"
    bits: int


_PARSER = {}


def parse_ports(path: Path, module: str = KERNEL) -> list[Port]:
    """The ports of `module` in Verilog file `path`, in order, read with pyverilog (which runs
    `iverilog -E` to preprocess). Parser tables and the preprocessed text go to a temporary folder."""
    try:
        from pyverilog.vparser import ast as vast
        from pyverilog.vparser.parser import VerilogParser
        from pyverilog.vparser.preprocessor import preprocess
    except ImportError as e:
        raise DfxError(f"reading Verilog ports needs pyverilog (pip install 'dfx[hw]'): {e}") from None
    import shutil
    if shutil.which("iverilog") is None:
        raise DfxError("pyverilog needs iverilog on PATH to preprocess Verilog (apt-get install iverilog)")
    with tempfile.TemporaryDirectory(prefix="dfx-pyverilog-") as tmp:
        if "p" not in _PARSER:
            _PARSER["p"] = VerilogParser(outputdir=tmp, debug=False)  # writes parsetab.py there only
        text = preprocess([str(path)], output=str(Path(tmp) / "pp.v"))
    ast = _PARSER["p"].parse(text)
    mods = [d for d in ast.description.definitions if isinstance(d, vast.ModuleDef) and d.name == module]
    if not mods:
        raise DfxError(f"{path}: no module {module}")
    ports = []
    for p in mods[0].portlist.ports:
        if not isinstance(p, vast.Ioport):
            raise DfxError(f"{path}: port {p} is not declared in the port list (ANSI style expected)")
        d = p.first
        w = d.width
        bits = 1 if w is None else abs(int(w.msb.value) - int(w.lsb.value)) + 1
        ports.append(Port(d.name, "input" if isinstance(d, vast.Input) else "output", bits))
    return ports


def interfaces(ports: list[Port]) -> dict[str, dict[str, Port]]:
    """Bus interfaces by name prefix, as Vivado's ipx::package_project infers them: s_axi_control,
    m_axi_<x>, s_axis_<x>, m_axis_<x>; each maps its signal suffix (awvalid, tdata, ...) to the port."""
    out: dict[str, dict[str, Port]] = {}
    for p in ports:
        m = re.fullmatch(r"((?:s_axi_control)|(?:m_axi_[a-z0-9]+)|(?:[sm]_axis_[a-z0-9]+))_([a-z]+)", p.name)
        if m:
            out.setdefault(m.group(1), {})[m.group(2)] = p
    return out


# ------------------------------------------------------------------ the kernel: ports x register map
@dataclasses.dataclass(frozen=True)
class KernelSpec:
    target: str
    ports: tuple[Port, ...]
    busifs: tuple[str, ...]            # every bus interface of the top, in port order
    args: tuple[kernel.Arg, ...]       # dfx.arch.kernel.kernel_args(target)
    masters: dict                      # m_axi port -> data bits
    ring_bits: int                     # tdata of s_axis_ring / m_axis_ring
    ctrl_addr_bits: int


def kernel_spec(target_name: str, top: Path | None = None) -> KernelSpec:
    """dfx_core of a target: the top's ports (pyverilog) checked against dfx.arch.kernel."""
    from dfx import hw
    from dfx.arch.target import load_target
    t = load_target(target_name)
    top = Path(top) if top is not None else hw.top_file(target_name)
    ports = parse_ports(top)
    ifs = interfaces(ports)
    names = {p.name for p in ports}
    bad = [f"missing port {n}" for n in ("ap_clk", "ap_rst_n", "interrupt") if n not in names]
    args = kernel.kernel_args(t)
    ptr_ports = {a.port: a for a in args if a.kind == "pointer"}
    masters = {}
    for name, sig in ifs.items():
        if name.startswith("m_axi_"):
            if name not in ptr_ports:
                bad.append(f"{name} has no pointer argument in dfx.arch.kernel")
            for need in ("awaddr", "araddr", "wdata", "rdata", "wstrb"):
                if need not in sig:
                    bad.append(f"{name} has no {need}")
            if "rdata" in sig and "wdata" in sig:
                if sig["rdata"].bits != sig["wdata"].bits:
                    bad.append(f"{name}: rdata {sig['rdata'].bits} bits, wdata {sig['wdata'].bits}")
                masters[name] = sig["rdata"].bits
            for a in ("awaddr", "araddr"):
                if a in sig and sig[a].bits != 64:
                    bad.append(f"{name}_{a} is {sig[a].bits} bits; Vitis needs 64-bit AXI4 master addresses")
    for port, a in ptr_ports.items():
        if port not in ifs:
            bad.append(f"pointer argument {a.name} names {port}, which the top does not have")
    ring = []
    for r in ("s_axis_ring", "m_axis_ring"):
        sig = ifs.get(r, {})
        if not {"tvalid", "tready", "tdata"} <= set(sig):
            bad.append(f"missing AXI4-Stream port {r} (tvalid, tready, tdata)")
        else:
            ring.append(sig["tdata"].bits)
    if len(set(ring)) > 1:
        bad.append(f"ring ports differ in width: {ring}")
    ctrl = ifs.get("s_axi_control", {})
    aw = ctrl["awaddr"].bits if "awaddr" in ctrl else 0
    if not ctrl:
        bad.append("missing s_axi_control")
    elif (1 << aw) < max(a.offset + a.bits // 8 for a in args):
        bad.append(f"s_axi_control has {aw} address bits, too few for the register map")
    if bad:
        raise DfxError(f"{top}: the top and dfx.arch.kernel disagree: " + "; ".join(bad))
    return KernelSpec(target_name, tuple(ports), tuple(ifs), args, masters, ring[0], aw)


# ------------------------------------------------------------------ Tcl
_HEAD = """# GENERATED by `python -m dfx.hw.vitis xo-files --target {target}`. Do not edit.
# Packages {kname} as a Vitis RTL kernel: {what}.
# Flow after Xilinx Vitis_Accel_Examples rtl_kernels/rtl_vadd (src/krnl_vadd/package_kernel.tcl,
# gen_xo.tcl; commit f6b00765) and pc2/Aurora-HLS tcl/pack_kernel.tcl (commit 518f59d).
# Usage: vivado -mode batch -source {script} -tclargs <xo file>
set xoname [lindex $::argv 0]
set here [file normalize [file dirname [info script]]]
set path_to_packaged "$here/packaged_{kname}"
set path_to_tmp_project "$here/tmp_{kname}"

create_project -force kernel_pack $path_to_tmp_project
add_files -norecurse [list \\
{files}]
{includes}set_property top {kname} [current_fileset]
update_compile_order -fileset sources_1
ipx::package_project -root_dir $path_to_packaged -vendor xilinx.com -library RTLKernel -taxonomy /KernelIP -import_files -set_current false
ipx::unload_core $path_to_packaged/component.xml
ipx::edit_ip_in_project -upgrade true -name tmp_edit_project -directory $path_to_packaged $path_to_packaged/component.xml

set core [ipx::current_core]
set_property core_revision 2 $core
foreach up [ipx::get_user_parameters] {{
  ipx::remove_user_parameter [get_property NAME $up] $core
}}
"""

_TAIL = """
set_property sdx_kernel true $core
set_property sdx_kernel_type rtl $core
set_property supported_families {{ }} $core
set_property auto_family_support_level level_2 $core
ipx::create_xgui_files $core
ipx::update_checksums $core
ipx::check_integrity -kernel $core
ipx::save_core $core
close_project -delete

if {{[file exists $xoname]}} {{
    file delete -force $xoname
}}
package_xo -xo_path $xoname -kernel_name {kname} -ip_directory $path_to_packaged -ctrl_protocol {ctrl}
"""

_CTRL_RW = ("ap_start", "auto_restart")  # the host writes these; the other control bits are read-only


def _files(words) -> str:
    """Tcl list items, one a line: a path in braces, or a Tcl expression in brackets."""
    return "".join(f"    {w} \\\n" for w in words)


def _associate(busifs) -> list[str]:
    out = [f"ipx::associate_bus_interfaces -busif {b} -clock ap_clk $core" for b in busifs]
    return out + ["ipx::associate_bus_interfaces -clock ap_clk -reset ap_rst_n $core"]


def _register(name: str, offset: int, bits: int, desc: str, busif: str | None = None) -> list[str]:
    out = [f'set reg [::ipx::add_register -quiet "{name}" $addr_block]',
           f"  set_property description    {{{desc}}} $reg",
           f"  set_property address_offset 0x{offset:03X} $reg",
           f"  set_property size           {bits} $reg"]
    if busif:
        out += ["  set regparam [::ipx::add_register_parameter -quiet {ASSOCIATED_BUSIF} $reg]",
                f"  set_property value {busif} $regparam"]
    return out


def core_tcl(spec: KernelSpec, sources: list[Path], include_dirs: list[Path], script: str) -> str:
    """The packaging Tcl of dfx_core: sources, bus interfaces on ap_clk, the register map, package_xo."""
    lines = [_HEAD.format(target=spec.target, kname=KERNEL, script=script, files=_files(f"{{{p}}}" for p in sources),
                          what="ap_ctrl_hs, s_axi_control, one AXI4 master per memory port, the ring's AXI4-Stream ports",
                          includes=f"set_property include_dirs [list {' '.join('{%s}' % d for d in include_dirs)}] [current_fileset]\n")]
    lines += _associate(spec.busifs)
    lines += ["", 'set mem_map    [::ipx::add_memory_map -quiet "s_axi_control" $core]',
              'set addr_block [::ipx::add_address_block -quiet "reg0" $mem_map]', "",
              '# ap_ctrl_hs control registers (dfx.arch.kernel: REG_CTRL, REG_GIE, REG_IER, REG_ISR, CTRL_BITS)',
              f'set reg [::ipx::add_register "CTRL" $addr_block]',
              '  set_property description    "Control signals" $reg',
              f"  set_property address_offset 0x{kernel.REG_CTRL:03X} $reg",
              "  set_property size           32 $reg"]
    fields, nxt, nres = [], 0, 0
    for name, bit in sorted(kernel.CTRL_BITS.items(), key=lambda kv: kv[1]):
        if bit > nxt:
            nres += 1
            fields.append((f"RESERVED_{nres}", nxt, bit - nxt, "read-only", "Reserved. 0s on read."))
        rw = name in _CTRL_RW
        fields.append((name.upper(), bit, 1, "read-write" if rw else "read-only",
                       f"Control signal Register for '{name}'."))
        nxt = bit + 1
    fields.append((f"RESERVED_{nres + 1}", nxt, 32 - nxt, "read-only", "Reserved. 0s on read."))
    for fname, off, width, access, desc in fields:
        lines += [f"set field [ipx::add_field {fname} $reg]",
                  f"  set_property ACCESS {{{access}}} $field",
                  f"  set_property BIT_OFFSET {{{off}}} $field",
                  f"  set_property BIT_WIDTH {{{width}}} $field",
                  f"  set_property DESCRIPTION {{{desc}}} $field",
                  f"  set_property {'MODIFIED_WRITE_VALUE' if access == 'read-write' else 'READ_ACTION'} {{modify}} $field"]
    for rname, off, desc in (("GIER", kernel.REG_GIE, "Global Interrupt Enable Register"),
                             ("IP_IER", kernel.REG_IER, "IP Interrupt Enable Register"),
                             ("IP_ISR", kernel.REG_ISR, "IP Interrupt Status Register")):
        lines += _register(rname, off, 32, desc)
    lines += ["", "# arguments (dfx.arch.kernel.kernel_args): scalars, then one 64-bit pointer per m_axi port"]
    for a in spec.args:
        lines += _register(a.name, a.offset, a.bits, a.doc, a.port or None)
    lines += ["", 'set_property slave_memory_map_ref "s_axi_control" [::ipx::get_bus_interfaces -of $core "s_axi_control"]']
    lines.append(_TAIL.format(kname=KERNEL, ctrl="ap_ctrl_hs"))
    return "\n".join(lines)


def adapter_tcl(target: str, kname: str, busifs: list[str], script: str) -> str:
    """Packaging Tcl of a free-running ring adapter (its Verilog <kname>.v beside the script):
    AXI4-Stream only, no control interface (UG1393, Free-Running Kernel)."""
    lines = [_HEAD.format(target=target, kname=kname, script=script, files=_files([f"[file join $here {kname}.v]"]),
                          includes="",
                          what="free-running (ap_ctrl_none), AXI4-Stream ports only")]
    lines += _associate(busifs)
    lines.append(_TAIL.format(kname=kname, ctrl="ap_ctrl_none"))
    return "\n".join(lines)


# ------------------------------------------------------------------ ring adapters
@dataclasses.dataclass(frozen=True)
class RingLink:
    ring_bits: int   # the core's ring word
    link_bits: int   # one Aurora beat
    beats: int       # link beats per ring word
    carries_tlast: bool

    @property
    def payload_bits(self) -> int:
        return self.ring_bits - kernel.RING_HDR_BITS

    @property
    def efficiency(self) -> float:
        """Payload bits per link bit the adapter sends (before Aurora's own 64b/66b coding)."""
        return self.payload_bits / (self.beats * self.link_bits)


def ring_link(ring_bits: int, link_bits: int) -> RingLink:
    """The adapters' plan for a ring word of ring_bits (the top's port) in link beats of link_bits
    (the target's ring.link_beat_bits: Aurora-HLS's FIFO_WIDTH := 64 bytes, "the width which is
    also needed to reach ... 100Gbit/s"). Target.ring_word_beats, which dfx.perf charges per word,
    is the same count (tests/hw/test_vitis.py)."""
    beats = math.ceil(ring_bits / link_bits)
    return RingLink(ring_bits, link_bits, beats, beats * link_bits > ring_bits)


def target_ring_link(target_name: str) -> RingLink:
    """ring_link for a target: its top's ring port width and its link beat."""
    from dfx.arch.target import load_target
    return ring_link(kernel_spec(target_name).ring_bits, load_target(target_name).ring.link_beat_bits)


def _module_head(name: str, streams: list[tuple[str, str, int, bool]]) -> str:
    """`module name (ap_clk, ap_rst_n, AXI4-Stream ports...);` from (prefix, "in"|"out", tdata bits, tlast)."""
    ports = ["    input  wire ap_clk", "    input  wire ap_rst_n"]
    for pre, way, bits, last in streams:
        d, back = ("input ", "output") if way == "in" else ("output", "input ")
        ports += [f"    {d} wire [0:0] {pre}_tvalid", f"    {back} wire [0:0] {pre}_tready",
                  f"    {d} wire [{bits - 1}:0] {pre}_tdata"] + ([f"    {d} wire [0:0] {pre}_tlast"] if last else [])
    return f"`default_nettype none\nmodule {name} (\n" + ",\n".join(ports) + "\n);"


def adapters_verilog(link: RingLink, target: str) -> dict[str, str]:
    """dfx_ring_tx and dfx_ring_rx for one ring width: registered, one beat per cycle, no bubbles."""
    RB, LB, K = link.ring_bits, link.link_bits, link.beats
    PB = K * LB
    CB = max(1, (K + 1).bit_length())
    head = (f"// GENERATED by `python -m dfx.hw.vitis xo-files --target {target}`. Do not edit.\n"
            f"// Ring word {RB} bits <-> {K} Aurora beat(s) of {LB} bits, low bits first; "
            + (f"tlast rides in bit {RB}.\n" if link.carries_tlast else "tlast is not carried (no spare bit; dfx_net ignores it).\n")
            + "// Free-running Vitis kernels (ap_ctrl_none) between dfx_core's ring ports and pc2/Aurora-HLS.\n")
    def pad(expr: str, bits: int) -> str:  # zero-extend to PB bits, explicitly (lint: no implicit widening)
        return f"{{{{{PB - bits}{{1'b0}}}}, {expr}}}" if PB > bits else expr

    word = pad(f"{TX_RING_IN}_tlast, {TX_RING_IN}_tdata", RB + 1) if link.carries_tlast else pad(f"{TX_RING_IN}_tdata", RB)
    tx = head + _module_head(RING_TX, [(TX_RING_IN, "in", RB, True), (TX_LINK_OUT, "out", LB, False),
                                       (TX_IDLE_OUT, "out", LB, False)]) + f"""
    reg [{PB - 1}:0] sh;       // the word being sent, shifted down one beat per handshake
    reg [{CB - 1}:0] left;     // beats still to send
    wire [{PB - 1}:0] word = {word};
    wire beat = (left != {CB}'d0) && {TX_LINK_OUT}_tready;
    assign {TX_RING_IN}_tready = (left == {CB}'d0) || (left == {CB}'d1 && {TX_LINK_OUT}_tready);
    assign {TX_LINK_OUT}_tvalid = (left != {CB}'d0);
    assign {TX_LINK_OUT}_tdata = sh[{LB - 1}:0];
    assign {TX_IDLE_OUT}_tvalid = 1'b0;   // nothing goes backwards over QSFP0
    assign {TX_IDLE_OUT}_tdata = {LB}'d0;
    always @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            left <= {CB}'d0;
            sh <= {PB}'d0;
        end else if ({TX_RING_IN}_tvalid && {TX_RING_IN}_tready) begin
            left <= {CB}'d{K};
            sh <= word;
        end else if (beat) begin
            left <= left - {CB}'d1;
            sh <= sh >> {LB};
        end
    end
    wire _unused_ok = &{{1'b0, {TX_IDLE_OUT}_tready{"" if link.carries_tlast else f", {TX_RING_IN}_tlast"}, 1'b0}};
endmodule
`default_nettype wire
"""
    out_last = f"merged[{RB}]" if link.carries_tlast else "1'b0"
    rx = head + _module_head(RING_RX, [(RX_LINK_IN, "in", LB, False), (RX_RING_OUT, "out", RB, True),
                                       (RX_DRAIN_IN, "in", LB, False)]) + f"""
    reg [{PB - 1}:0] acc;      // beats received of the current word, each at its place
    reg [{CB - 1}:0] got;      // how many
    reg [{RB - 1}:0] out_d;
    reg out_l, out_v;
    wire [{PB - 1}:0] beat_ext = {pad(f"{RX_LINK_IN}_tdata", LB)};
    wire [{PB - 1}:0] merged = acc | (beat_ext << ({LB} * got));
    wire last = (got == {CB}'d{K - 1});
    wire out_free = !out_v || {RX_RING_OUT}_tready;
    assign {RX_LINK_IN}_tready = !last || out_free;
    assign {RX_RING_OUT}_tvalid = out_v;
    assign {RX_RING_OUT}_tdata = out_d;
    assign {RX_RING_OUT}_tlast = out_l;
    assign {RX_DRAIN_IN}_tready = 1'b1;   // QSFP1 receives nothing in a one-way ring; drop it
    always @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            acc <= {PB}'d0;
            got <= {CB}'d0;
            out_v <= 1'b0;
            out_d <= {RB}'d0;
            out_l <= 1'b0;
        end else begin
            if ({RX_RING_OUT}_tready) out_v <= 1'b0;
            if ({RX_LINK_IN}_tvalid && {RX_LINK_IN}_tready) begin
                if (last) begin
                    out_d <= merged[{RB - 1}:0];
                    out_l <= {out_last};
                    out_v <= 1'b1;
                    acc <= {PB}'d0;
                    got <= {CB}'d0;
                end else begin
                    acc <= merged;
                    got <= got + {CB}'d1;
                end
            end
        end
    end
    wire _unused_ok = &{{1'b0, {RX_DRAIN_IN}_tvalid, {RX_DRAIN_IN}_tdata, merged, 1'b0}};
endmodule
`default_nettype wire
"""
    return {RING_TX: tx, RING_RX: rx}


ADAPTER_BUSIFS = {RING_TX: [TX_RING_IN, TX_LINK_OUT, TX_IDLE_OUT], RING_RX: [RX_LINK_IN, RX_RING_OUT, RX_DRAIN_IN]}


# ------------------------------------------------------------------ per-SLR floorplan
# The U280's three SLRs (XCU280 = VU37P), taken as equal thirds of the device (DS890 gives device
# totals only; `platforminfo` prints what each SLR has beside the platform's shell, not counted
# here). The HBM and its switch are in SLR0, the QSFP28 transceivers by SLR2 ("SLRs" in
# docs/u280.md). The plan: the memory side (HBM engines, DMA, DDR port, instruction queue and the
# controller) in SLR0 beside the HBM; the buffer's banks split over SLR0 and SLR1 (its URAMs are
# more than one SLR has); the VPU in SLR1; the router in SLR2 beside the Aurora kernels; the MPU's
# lanes (independent output columns) shared out by MPU_LANE_SHARE. scripts/synth.py --slr sums a
# synthesis run's blocks by this plan; floorplan_tcl() writes it for Vivado.
SLRS = 3
SLR_PLAN = {  # level-1 block of dfx_core_flat (Verilog module) -> its share in SLR0, SLR1, SLR2
    "dfx_core_flat": (1, 0, 0), "dfx_fifo": (1, 0, 0), "dfx_hbm_rd": (1, 0, 0), "dfx_hbm_wr": (1, 0, 0),
    "dfx_dma": (1, 0, 0), "dfx_ddr": (1, 0, 0), "dfx_vbuf": (0.5, 0.5, 0), "dfx_vpu_path": (0, 1, 0),
    "dfx_net": (0, 0, 1),
}
MPU_LANE_SHARE = (5, 2, 9)  # MPU lanes per SLR, in sixteenths (u280 targets: 16 lanes): balances the Yosys LUTs
# Where each block sits under the kernel's top (hw/gen/<target>/dfx_core.v), as instance names;
# tests/hw/test_vitis.py checks every step against the Verilog.
FLOORPLAN_PATH = (("dfx_core", "u_core", "dfx_core_flat"), ("dfx_core_flat", "u_rd", "dfx_hbm_rd"),
                  ("dfx_core_flat", "u_wr", "dfx_hbm_wr"), ("dfx_core_flat", "u_dma", "dfx_dma"),
                  ("dfx_core_flat", "u_iq", "dfx_fifo"), ("dfx_core_flat", "u_ddr", "dfx_ddr"),
                  ("dfx_core_flat", "u_vbuf", "dfx_vbuf"), ("dfx_core_flat", "u_vpu", "dfx_vpu_path"),
                  ("dfx_core_flat", "u_net", "dfx_net"), ("dfx_core_flat", "u_mpu", "dfx_mpu_path"),
                  ("dfx_mpu_path", "u_mpu", "dfx_mpu"))
FLOORPLAN_GENERATE = (("dfx_mpu", "g_lane"), ("dfx_vbuf", "g_bank"), ("dfx_core_flat", "g_ddr"))


def mpu_lanes_per_slr(lanes: int) -> tuple[int, ...]:
    """MPU_LANE_SHARE scaled to `lanes` (largest remainders), summing to lanes."""
    exact = [lanes * k / sum(MPU_LANE_SHARE) for k in MPU_LANE_SHARE]
    out = [int(x) for x in exact]
    for i in sorted(range(SLRS), key=lambda i: out[i] - exact[i])[: lanes - sum(out)]:
        out[i] += 1
    return tuple(out)


def floorplan_tcl(target_name: str) -> str:
    """Vivado Tcl that puts dfx_core's blocks into the platform's per-SLR pblocks
    (pblock_dynamic_SLR0..2 of the xdma platforms) by SLR_PLAN. hw/vitis/Makefile hands it to v++
    as the implementation's opt_design pre-hook. Cells are found by regular expressions on their
    full names (`*/dfx_core_1/inst/...`, the compute unit's RTL top); a pattern that matches no
    cell stops the run with its name instead of leaving that block unplaced."""
    from dfx.arch.target import load_target
    t = load_target(target_name)
    lanes = t.matrix.lanes
    base = rf".*/{CU}/inst/" + next(n for p, n, _c in FLOORPLAN_PATH if p == KERNEL)
    out = [f"# GENERATED by `python -m dfx.hw.vitis xo-files --target {target_name}`. Do not edit.",
           "# dfx_core's blocks into the platform's per-SLR pblocks, by the per-SLR plan of dfx.hw.vitis",
           "# (SLR_PLAN; its budget: python scripts/synth.py --target " + target_name + " --reuse --slr).",
           "# Run by v++ before opt_design: --vivado.prop run.impl_1.STEPS.OPT_DESIGN.TCL.PRE=<this file>.",
           "# Logic not named here (the MPU path's control, the buffer's rotation, the top's AXI glue)",
           "# is left to the placer.",
           "proc dfx_place {slr re {prim 0}} {",
           "    set f [expr {$prim ? \"IS_PRIMITIVE && NAME =~ \\\"$re\\\"\" : \"NAME =~ \\\"$re\\\"\"}]",
           "    set cells [get_cells -quiet -hierarchical -regexp -filter $f]",
           "    if {[llength $cells] == 0} { error \"dfx floorplan: no cell matches $re\" }",
           "    add_cells_to_pblock [get_pblocks pblock_dynamic_SLR$slr] $cells",
           "    puts \"dfx floorplan: [llength $cells] cells of $re -> SLR$slr\"",
           "}"]
    inst = {child: name for parent, name, child in FLOORPLAN_PATH if parent == "dfx_core_flat"}
    inst["dfx_ddr"] = r"g_ddr\." + inst["dfx_ddr"]  # inside dfx_core_flat's `if (HAS_DDR)` block
    mpu = f"{inst['dfx_mpu_path']}/" + next(n for p, n, _c in FLOORPLAN_PATH if p == "dfx_mpu_path")
    for m, share in SLR_PLAN.items():
        slr = share.index(1) if 1 in share else None
        if m == "dfx_core_flat":
            out.append(f"dfx_place {slr} {{{base}/[^/]*$}} 1  ;# the controller's own cells")
        elif m == "dfx_ddr" and not t.ddr.present:
            continue
        elif m != "dfx_vbuf":
            out.append(f"dfx_place {slr} {{{base}/{inst[m]}$}}")
    # the buffer's banks: even ones in one SLR, odd ones in the other (every access reads or writes
    # all banks, so which half goes where does not change the wires between SLRs)
    halves = [i for i, f in enumerate(SLR_PLAN["dfx_vbuf"]) if f]
    assert [SLR_PLAN["dfx_vbuf"][i] for i in halves] == [0.5, 0.5], "floorplan_tcl splits the buffer in halves"
    for i, digits in zip(halves, ("02468", "13579")):
        out.append(f"dfx_place {i} {{{base}/{inst['dfx_vbuf']}/g_bank\\[[0-9]*[{digits}]\\]\\.[^/]*$}}")
    first = 0
    for i, n in enumerate(mpu_lanes_per_slr(lanes)):
        if n:
            alt = "|".join(str(j) for j in range(first, first + n))
            out.append(f"dfx_place {i} {{{base}/{mpu}/g_lane\\[({alt})\\]\\.[^/]*$}}")
        first += n
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ build files
def xo_files(target_name: str) -> dict[str, str]:
    """Every file `make xo TARGET=<target>` feeds Vivado, by file name."""
    from dfx import hw
    spec = kernel_spec(target_name)
    srcs = [*hw.rtl_sources(), hw.top_file(target_name), *hw.headers()]
    out = {f"package_{KERNEL}.tcl": core_tcl(spec, srcs, hw.include_dirs(), f"package_{KERNEL}.tcl")}
    link = target_ring_link(target_name)
    for name, text in adapters_verilog(link, target_name).items():
        out[f"{name}.v"] = text
        out[f"package_{name}.tcl"] = adapter_tcl(target_name, name, ADAPTER_BUSIFS[name], f"package_{name}.tcl")
    if platform_slrs(target_name):
        out["floorplan.tcl"] = floorplan_tcl(target_name)
    return out


def platform_slrs(target_name: str) -> int:
    """SLRs of the target's card (the U280's 3), 0 for a target with no card (tiny)."""
    from dfx.arch.target import load_target
    return SLRS if load_target(target_name).card.startswith("xilinx_u280") else 0


def xclbin_key_args(target_name: str) -> list[str]:
    """xclbinutil arguments that stamp dfx.arch.kernel.xclbin_keys (XRT src/runtime_src/tools/
    xclbinutil/XclBinUtilMain.cxx: `--key-value` "[USER|SYS]:<key>:<value>", repeatable as
    pkg_hw_platform.sh repeats it)."""
    from dfx.arch.target import load_target
    t = load_target(target_name)
    out = []
    for k, v in kernel.xclbin_keys({"name": t.name, **t.as_dict()}).items():
        if ":" in k or not re.fullmatch(r"[A-Za-z0-9_.\-]+", v):
            raise DfxError(f"xclbin key {k}={v!r} would not survive the command line")
        out += ["--key-value", f"USER:{k}:{v}"]
    return out


def bundle_cards(target_name: str, bundle) -> int:
    """The card count of a bundle compiled for target_name (its link.cfg is what `make xclbin`
    links); DfxError if the bundle was compiled for another target or other hardware sections."""
    from dfx.arch.target import load_target
    from dfx.compiler.bundle import Bundle
    b = Bundle(bundle)
    m = b.manifest
    t = load_target(target_name)
    want = kernel.xclbin_keys({"name": t.name, **t.as_dict()})
    got = kernel.xclbin_keys(m["target"])
    if got != want:
        diff = ", ".join(f"{k} {got[k]} (the target file gives {want[k]})" for k in want if got[k] != want[k])
        raise DfxError(f"{bundle}: compiled for another target than {target_name}: {diff}")
    if not (Path(bundle) / "link.cfg").is_file():
        raise DfxError(f"{bundle}: no link.cfg")
    return int(m["fpgas"])


def check_keys(target_name: str, kv_json: Path) -> None:
    """Check the KEYVALUE_METADATA section that `xclbinutil --dump-section
    KEYVALUE_METADATA:JSON:<file>` writes (XRT xclbinutil XclBinClass.cxx, setKeyValue:
    {"keyvalue_metadata": {"key_values": [{"key": k, "value": v}, ...]}}) against the target."""
    import json
    from dfx.arch.target import load_target
    t = load_target(target_name)
    try:
        kvs = json.loads(Path(kv_json).read_text())["keyvalue_metadata"]["key_values"]
        got = {kv["key"]: kv["value"] for kv in kvs}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DfxError(f"{kv_json}: not a KEYVALUE_METADATA dump ({e.__class__.__name__}: {e})") from None
    want = kernel.xclbin_keys({"name": t.name, **t.as_dict()})
    bad = [f"{k}={got.get(k)!r} (want {v!r})" for k, v in want.items() if got.get(k) != v]
    if bad:
        raise DfxError(f"{kv_json}: xclbin keys differ from target {target_name}: " + ", ".join(bad))


def platform(target_name: str) -> str:
    from dfx.arch.target import load_target
    card = load_target(target_name).card
    if card == "none":
        raise DfxError(f"target {target_name} names no card: give PLATFORM=<Vitis platform> (e.g. "
                       f"{load_target('u280').card})")
    return card


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dfx.hw.vitis", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("xo-files", help="write the packaging Tcl and adapter Verilog of a target")
    p.add_argument("--target", required=True)
    p.add_argument("--out", required=True, type=Path)
    p = sub.add_parser("keys", help="print the xclbinutil --key-value arguments of a target")
    p.add_argument("--target", required=True)
    p = sub.add_parser("ring", help="how one ring word crosses an Aurora link")
    p.add_argument("--target", required=True)
    p = sub.add_parser("platform", help="print the Vitis platform the target names")
    p.add_argument("--target", required=True)
    p = sub.add_parser("bundle", help="check that a bundle was compiled for the target; print its card count")
    p.add_argument("--target", required=True)
    p.add_argument("bundle", type=Path)
    p = sub.add_parser("check-keys", help="check an xclbinutil KEYVALUE_METADATA JSON dump against the target")
    p.add_argument("--target", required=True)
    p.add_argument("json", type=Path)
    a = ap.parse_args(argv)
    try:
        if a.cmd == "xo-files":
            a.out.mkdir(parents=True, exist_ok=True)
            for name, text in xo_files(a.target).items():
                (a.out / name).write_text(text)
                print(a.out / name)
        elif a.cmd == "keys":
            print(" ".join(xclbin_key_args(a.target)))
        elif a.cmd == "platform":
            print(platform(a.target))
        elif a.cmd == "bundle":
            print(bundle_cards(a.target, a.bundle))
        elif a.cmd == "check-keys":
            check_keys(a.target, a.json)
            print(f"{a.json}: the xclbin keys match target {a.target}")
        else:
            r = target_ring_link(a.target)
            print(f"{a.target}: ring word {r.ring_bits} bits ({r.payload_bits} payload + {kernel.RING_HDR_BITS} header), "
                  f"Aurora beat {r.link_bits} bits: {r.beats} beat(s) per word, tlast "
                  f"{'carried' if r.carries_tlast else 'not carried'}, payload {100 * r.efficiency:.1f} % of the beats")
    except DfxError as e:
        print(f"dfx: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
