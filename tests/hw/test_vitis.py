"""The Vitis packaging of dfx_core (dfx.hw.vitis, hw/vitis/Makefile) against everything it must match.

For tiny, u280-dfx and u280, four descriptions of one kernel must agree: the top's ports (read
from hw/gen/<target>/dfx_core.v with pyverilog), the packaging Tcl (`ipx::add_register` per
argument, ASSOCIATED_BUSIF, `ipx::associate_bus_interfaces`), the register table
dfx.arch.kernel.kernel_args and the compiler's link.cfg (one sp= line per m_axi port). The Tcl
is read back with regular expressions, independently of the code that wrote it. Mutation tests
show the checks fail when a port, an sp= line or an offset goes missing. The ring adapters run
on Icarus (a word in, the same word out, under random stalls), and the Makefile runs against
stand-ins for vivado, v++, xclbinutil and emconfigutil (no Vitis here): the tests whose names
say "standin" check our commands, not Xilinx's tools.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from dfx import hw
from dfx.arch import kernel
from dfx.arch.target import load_target
from dfx.compiler.vitis import link_config
from dfx.errors import DfxError
from dfx.hw import vitis

TARGETS = ["tiny", "u280-dfx", "u280"]
ROOT = Path(__file__).resolve().parents[2]
TB = Path(__file__).resolve().parent / "tb"

pytestmark = pytest.mark.skipif(shutil.which("iverilog") is None, reason="pyverilog needs iverilog")


class _NoRegions:
    regions: dict = {}


def ports_of(top: Path) -> dict[str, vitis.Port]:
    return {p.name: p for p in vitis.parse_ports(top)}


def tcl_registers(tcl: str) -> dict[str, dict]:
    """name -> {offset, bits, busif} of every ipx::add_register block in the Tcl."""
    regs = {}
    for m in re.finditer(r'::ipx::add_register (?:-quiet )?"(\w+)" \$addr_block\]\n((?:  .*\n)*)', tcl):
        body = m.group(2)
        busif = re.search(r"set_property value (\S+) \$regparam", body)
        regs[m.group(1)] = {"offset": int(re.search(r"address_offset 0x([0-9A-F]+)", body).group(1), 16),
                            "bits": int(re.search(r"size\s+(\d+)", body).group(1)),
                            "busif": busif.group(1) if busif else None}
    return regs


def disagreements(target: str, ports: dict, tcl: str, cfg: str) -> list[str]:
    """Everything on which the top's ports, the Tcl, kernel_args and link.cfg disagree."""
    t = load_target(target)
    args = {a.name: a for a in kernel.kernel_args(t)}
    regs = tcl_registers(tcl)
    assoc = set(re.findall(r"associate_bus_interfaces -busif (\w+) -clock ap_clk", tcl))
    sp = dict(re.findall(r"^sp=dfx_core_1\.(m_axi_\w+):(\S+)$", cfg, re.M))
    masters = sorted({re.match(r"(m_axi_[a-z0-9]+)_", n).group(1) for n in ports if n.startswith("m_axi_")})
    bad = []
    for m in masters:
        ptr = [a for a in args.values() if a.port == m]
        if len(ptr) != 1 or ptr[0].kind != "pointer" or ptr[0].bits != 64:
            bad.append(f"{m}: no single 64-bit pointer argument")
        elif regs.get(ptr[0].name, {}).get("busif") != m:
            bad.append(f"{m}: no Tcl register with ASSOCIATED_BUSIF {m}")
        if m not in sp:
            bad.append(f"{m}: no sp= line")
        if m not in assoc:
            bad.append(f"{m}: not associated with ap_clk")
        want = t.ddr.port_bits if m == "m_axi_ddr" else t.hbm.port_bits
        for s in ("wdata", "rdata"):
            if f"{m}_{s}" not in ports or ports[f"{m}_{s}"].bits != want:
                bad.append(f"{m}_{s}: not {want} bits")
        if f"{m}_wstrb" not in ports or ports[f"{m}_wstrb"].bits != want // 8:
            bad.append(f"{m}_wstrb: not {want // 8} bits")
        for s in ("awaddr", "araddr"):
            if f"{m}_{s}" not in ports or ports[f"{m}_{s}"].bits != 64:
                bad.append(f"{m}_{s}: not 64 bits")
    for m, bank in sp.items():
        if m not in masters:
            bad.append(f"sp= line for {m}, which the top does not have")
        elif m.startswith("m_axi_hbm") and bank != f"HBM[{int(m[9:])}]":
            bad.append(f"{m} -> {bank}: not its own pseudo-channel")
    for name, a in args.items():
        r = regs.get(name)
        if r is None or (r["offset"], r["bits"]) != (a.offset, a.bits):
            bad.append(f"argument {name}: kernel_args 0x{a.offset:x}/{a.bits}, Tcl {r}")
    for name in regs:
        if name not in args and name not in ("CTRL", "GIER", "IP_IER", "IP_ISR"):
            bad.append(f"Tcl register {name} is no argument")
    ctrl = {"CTRL": kernel.REG_CTRL, "GIER": kernel.REG_GIE, "IP_IER": kernel.REG_IER, "IP_ISR": kernel.REG_ISR}
    for name, off in ctrl.items():
        if regs.get(name, {}).get("offset") != off:
            bad.append(f"control register {name} not at 0x{off:x}")
    rb = 16 * t.ring.words_per_cycle + kernel.RING_HDR_BITS  # docs: the ring word, arch/kernel.py
    for pre in ("s_axis_ring", "m_axis_ring"):
        for s in ("tvalid", "tready", "tdata", "tlast"):
            if f"{pre}_{s}" not in ports:
                bad.append(f"missing {pre}_{s}")
        if ports.get(f"{pre}_tdata") and ports[f"{pre}_tdata"].bits != rb:
            bad.append(f"{pre}_tdata: not {rb} bits")
        if pre not in assoc:
            bad.append(f"{pre}: not associated with ap_clk")
    if "s_axi_control" not in assoc:
        bad.append("s_axi_control: not associated with ap_clk")
    if (1 << ports["s_axi_control_awaddr"].bits) != kernel.control_bytes(t):
        bad.append("s_axi_control address width does not span control_bytes")
    if not re.search(r"stream_connect=dfx_core_1\.m_axis_ring:", cfg) or \
            not re.search(r"stream_connect=\S+:dfx_core_1\.s_axis_ring$", cfg, re.M):
        bad.append("link.cfg does not connect both ring ports")
    if "-kernel_name dfx_core -ip_directory $path_to_packaged -ctrl_protocol ap_ctrl_hs" not in tcl:
        bad.append("no package_xo of dfx_core with ap_ctrl_hs")
    return bad


@pytest.fixture(scope="module")
def made():
    """target -> (ports, files of `make xo`, link.cfg for 4 cards)."""
    out = {}
    for name in TARGETS:
        t = load_target(name)
        out[name] = (ports_of(hw.top_file(name)), vitis.xo_files(name), link_config(t, _NoRegions, 4))
    return out


@pytest.mark.parametrize("target", TARGETS)
def test_top_tcl_kernel_args_and_link_cfg_agree(made, target):
    ports, files, cfg = made[target]
    assert disagreements(target, ports, files["package_dfx_core.tcl"], cfg) == []
    t = load_target(target)
    n_ptr = t.hbm.channels + int(t.ddr.present)
    assert len(tcl_registers(files["package_dfx_core.tcl"])) == 4 + 8 + n_ptr  # control, 8 scalar words, pointers
    assert cfg.count("sp=dfx_core_1.m_axi_") == n_ptr


def test_a_dropped_port_is_caught(made, tmp_path):
    ports, files, cfg = made["tiny"]
    text = hw.top_file("tiny").read_text()
    top = tmp_path / "dfx_core.v"
    top.write_text("".join(ln for ln in text.splitlines(True) if "wire [127:0] m_axi_hbm03_rdata" not in ln))
    broken = ports_of(top)
    assert "m_axi_hbm03_rdata" not in broken
    assert disagreements("tiny", broken, files["package_dfx_core.tcl"], cfg) == ["m_axi_hbm03_rdata: not 128 bits"]
    with pytest.raises(DfxError, match="m_axi_hbm03 has no rdata"):
        vitis.kernel_spec("tiny", top)
    # a whole master gone: its pointer argument names a port the top lacks
    top.write_text("".join(ln for ln in text.splitlines(True) if "m_axi_hbm02_" not in ln))
    with pytest.raises(DfxError, match="pointer argument hbm02 names m_axi_hbm02"):
        vitis.kernel_spec("tiny", top)
    top.write_text("".join(ln for ln in text.splitlines(True) if "m_axis_ring_tdata" not in ln))
    with pytest.raises(DfxError, match="missing AXI4-Stream port m_axis_ring"):
        vitis.kernel_spec("tiny", top)


def test_a_dropped_sp_line_or_a_moved_offset_is_caught(made):
    ports, files, cfg = made["u280"]
    tcl = files["package_dfx_core.tcl"]
    assert disagreements("u280", ports, tcl, cfg.replace("sp=dfx_core_1.m_axi_hbm17:HBM[17]\n", "")) == \
        ["m_axi_hbm17: no sp= line"]
    assert disagreements("u280", ports, tcl, cfg.replace("m_axi_hbm17:HBM[17]", "m_axi_hbm17:HBM[16]")) == \
        ["m_axi_hbm17 -> HBM[16]: not its own pseudo-channel"]
    moved = tcl.replace("address_offset 0x0A0 $reg", "address_offset 0x0A4 $reg")
    assert moved != tcl
    assert [b.split(":")[0] for b in disagreements("u280", ports, moved, cfg)] == ["argument hbm14"]  # 0x30 + 8 * 14
    unassoc = tcl.replace("-busif m_axi_ddr -clock", "-busif m_axi_ddr_x -clock")
    assert disagreements("u280", ports, unassoc, cfg) == ["m_axi_ddr: not associated with ap_clk"]


def test_kernel_spec_refuses_a_register_map_the_control_port_cannot_address(monkeypatch):
    real = kernel.kernel_args

    def more(t):  # one argument more than the generated top's 7 address bits reach
        a = real(t)
        return a + (kernel.Arg("extra", 64, "scalar", "x", offset=0x80),)
    monkeypatch.setattr(kernel, "kernel_args", more)
    with pytest.raises(DfxError, match="s_axi_control has 7 address bits"):
        vitis.kernel_spec("tiny")


def test_parser_tables_go_nowhere_visible(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    vitis._PARSER.clear()
    vitis.parse_ports(hw.top_file("tiny"))
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ the ring adapters
def test_ring_link_plan_per_target():
    plans = {n: vitis.target_ring_link(n) for n in TARGETS}
    assert {n: (p.ring_bits, p.beats, p.carries_tlast) for n, p in plans.items()} == \
        {"tiny": (160, 1, True), "u280-dfx": (1056, 3, True), "u280": (512, 1, False)}
    assert plans["u280-dfx"].efficiency == pytest.approx(1024 / 1536)
    assert plans["u280"].efficiency == pytest.approx(480 / 512)
    assert vitis.ring_link(512, 512).carries_tlast is False and vitis.ring_link(512, 512).beats == 1
    # the beats the performance model charges per word (Target.ring_word_beats) are the adapters'
    for n, p in plans.items():
        t = load_target(n)
        assert (t.ring_word_bits, t.ring_word_beats, t.ring.link_beat_bits) == (p.ring_bits, p.beats, p.link_bits)


def _run_adapters(tmp_path, target: str, stall: int, mutate=None) -> dict:
    from dfx.host import rtl
    link = vitis.target_ring_link(target)
    files = vitis.adapters_verilog(link, target)
    srcs = []
    for name, text in files.items():
        p = tmp_path / f"{name}.v"
        p.write_text(mutate(name, text) if mutate else text)
        srcs.append(p)
    rb = vitis.kernel_spec(target).ring_bits
    exe = rtl.build("icarus", "dfx_ring_adapt_tb", {"RB": rb, "LB": link.link_bits, "TLAST": int(link.carries_tlast)},
                    [TB / "dfx_ring_adapt_tb.v", *srcs], f"ring-adapt-{target}")
    out = subprocess.run(["vvp", "-n", str(exe), f"+stall={stall}", "+seed=3"], capture_output=True, text=True,
                         timeout=60).stdout
    return {k: int(v) for k, v in (ln.split() for ln in out.splitlines() if ln.split()[:1] in
                                   (["words"], ["cycles"], ["beats"], ["errors"]))}


@pytest.mark.rtl
@pytest.mark.parametrize("target", ["tiny", "u280-dfx", "u280"])
def test_ring_adapters_deliver_every_word_in_order(tmp_path, target):
    k = vitis.target_ring_link(target).beats
    free = _run_adapters(tmp_path, target, 0)
    assert free["errors"] == 0 and free["words"] == 200 and free["beats"] == 200 * k
    assert free["cycles"] <= 200 * k + 4  # one link beat per cycle when nothing stalls
    stalled = _run_adapters(tmp_path, target, 30)
    assert stalled["errors"] == 0 and stalled["words"] == 200 and stalled["cycles"] > free["cycles"]


@pytest.mark.rtl
@pytest.mark.skipif(shutil.which("verilator") is None, reason="verilator is not installed")
@pytest.mark.parametrize("target", TARGETS)
def test_ring_adapters_lint_clean(tmp_path, target):
    for name, text in vitis.adapters_verilog(vitis.target_ring_link(target), target).items():
        (tmp_path / f"{name}.v").write_text(text)
        r = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", name, str(tmp_path / f"{name}.v")],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "%Warning" not in r.stderr, r.stderr


@pytest.mark.rtl
def test_ring_adapter_bench_catches_a_misassembled_word(tmp_path):
    bad = _run_adapters(tmp_path, "u280-dfx", 0, lambda name, text: text.replace("sh <= sh >> 512", "sh <= sh >> 256"))
    assert bad["errors"] > 0


# ------------------------------------------------------------------ xclbin identity
def test_xclbin_key_args_use_xclbinutils_key_value_form():
    t = load_target("u280")
    args = vitis.xclbin_key_args("u280")
    keys = kernel.xclbin_keys({"name": t.name, **t.as_dict()})
    assert args[0::2] == ["--key-value"] * len(keys)
    assert dict(a.split(":", 2)[1:] for a in args[1::2]) == keys
    assert all(a.startswith("USER:") for a in args[1::2])


def _kv_json(path: Path, keys: dict) -> Path:
    path.write_text(json.dumps({"keyvalue_metadata": {"key_values": [{"key": k, "value": v} for k, v in keys.items()]}}))
    return path


def test_check_keys_standin_dump(tmp_path):
    t = load_target("u280")
    keys = kernel.xclbin_keys({"name": t.name, **t.as_dict()})
    vitis.check_keys("u280", _kv_json(tmp_path / "ok.json", keys))
    with pytest.raises(DfxError, match="dfx_target='u280'.*want 'u280-dfx'"):
        vitis.check_keys("u280-dfx", tmp_path / "ok.json")
    with pytest.raises(DfxError, match="not a KEYVALUE_METADATA dump"):
        vitis.check_keys("u280", _kv_json(tmp_path / "bad.json", keys).with_name("missing.json"))


# ------------------------------------------------------------------ the Makefile, on stand-in tools
STANDIN = r'''#!{python}
"""Stand-in for {tool}: logs its argv, makes the file the real tool would, as little as that."""
import json, os, re, sys
a = sys.argv[1:]
with open(os.environ["STANDIN_LOG"], "a") as f:
    f.write(json.dumps(["{tool}"] + a) + "\n")
def opt(name):
    return a[a.index(name) + 1]
if "{tool}" == "vivado":
    open(a[a.index("-tclargs") + 1], "w").write("xo")
elif "{tool}" == "v++":
    open(opt("-o"), "w").write(json.dumps({{"kv": []}}))
elif "{tool}" == "xclbinutil":
    img = json.load(open(opt("--input")))
    for i, x in enumerate(a):  # XclBinClass.cxx getKeyValueComponents: domain:key:value, value keeps ':'
        if x == "--key-value":
            dom, key, val = a[i + 1].split(":", 2)
            assert dom == "USER", dom
            img["kv"] = [kv for kv in img["kv"] if kv["key"] != key] + [{{"key": key, "value": val}}]
    if "--output" in a:
        json.dump(img, open(opt("--output"), "w"))
    if "--dump-section" in a:
        sec, fmt, path = opt("--dump-section").split(":", 2)
        assert (sec, fmt) == ("KEYVALUE_METADATA", "JSON")
        json.dump({{"keyvalue_metadata": {{"key_values": img["kv"]}}}}, open(path, "w"))
elif "{tool}" == "emconfigutil":
    open(os.path.join(opt("--od"), "emconfig.json"), "w").write("{{}}")
'''


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """u280 bundles of a random 4-head model for 1 and 4 cards."""
    torch = pytest.importorskip("torch")
    from transformers import GPT2Config, GPT2LMHeadModel
    from dfx.compiler.driver import compile_model
    d = tmp_path_factory.mktemp("vitis_bundles")
    with torch.random.fork_rng():
        torch.manual_seed(3)
        GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=128, n_head=4, n_positions=32, vocab_size=128,
                                   bos_token_id=0, eos_token_id=0)).save_pretrained(d / "m")
    for n in (1, 4):
        compile_model(str(d / "m"), n, d / f"b{n}", target="u280", max_seq=32, progress=False)
    return {n: d / f"b{n}" for n in (1, 4)}


def _make(tmp_path, goal: str, **var) -> tuple[subprocess.CompletedProcess, list]:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    for tool in ("vivado", "v++", "xclbinutil", "emconfigutil"):
        p = bindir / tool
        p.write_text(STANDIN.format(python=sys.executable, tool=tool))
        p.chmod(p.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "log.jsonl"
    log.unlink(missing_ok=True)
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               STANDIN_LOG=str(log))
    cmd = ["make", "-s", "-C", str(ROOT / "hw" / "vitis"), goal, f"BUILD={tmp_path / 'build'}",
           f"PYTHON={sys.executable}", *(f"{k}={v}" for k, v in var.items())]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    calls = [json.loads(ln) for ln in log.read_text().splitlines()] if log.exists() else []
    return r, calls


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_xclbin_standin_links_the_bundle_with_aurora_and_stamps_the_keys(tmp_path, bundles):
    aur = tmp_path / "aurora"
    aur.mkdir()
    for i in (0, 1):
        (aur / f"aurora_flow_{i}.xo").write_text("xo")
    r, calls = _make(tmp_path, "xclbin", TARGET="u280", BUNDLE=bundles[4], AURORA_HLS=aur)
    assert r.returncode == 0, r.stdout + r.stderr
    b = tmp_path / "build"
    assert [c[0] for c in calls] == ["vivado"] * 3 + ["v++", "xclbinutil", "xclbinutil"]
    assert sorted(c[c.index("-source") + 1] for c in calls[:3]) == \
        sorted(str(b / f"package_{k}.tcl") for k in ("dfx_core", "dfx_ring_rx", "dfx_ring_tx"))
    link = calls[3]
    assert link[1:5] == ["--link", "-t", "hw", "--platform"] and link[5] == load_target("u280").card
    assert link[link.index("--config") + 1] == f"{bundles[4]}/link.cfg"
    assert link[link.index("--vivado.prop") + 1] == f"run.impl_1.STEPS.OPT_DESIGN.TCL.PRE={b}/floorplan.tcl"
    assert (b / "floorplan.tcl").read_text() == vitis.floorplan_tcl("u280")
    assert link[-5:] == [str(b / "dfx_core.xo"), str(b / "dfx_ring_tx.xo"), str(b / "dfx_ring_rx.xo"),
                         str(aur / "aurora_flow_0.xo"), str(aur / "aurora_flow_1.xo")]
    assert calls[4][calls[4].index("--input") + 1] == link[link.index("-o") + 1]
    assert "dfx: error" not in r.stderr and "the xclbin keys match target u280" in r.stdout
    dump = json.loads((b / "keys.hw.json").read_text())
    t = load_target("u280")
    assert {kv["key"]: kv["value"] for kv in dump["keyvalue_metadata"]["key_values"]} == \
        kernel.xclbin_keys({"name": t.name, **t.as_dict()})


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_standin_refusals_and_the_one_card_emulation(tmp_path, bundles):
    r, calls = _make(tmp_path, "xclbin", TARGET="u280-dfx", BUNDLE=bundles[4])
    assert r.returncode != 0 and "compiled for another target than u280-dfx" in r.stderr
    assert "v++" not in [c[0] for c in calls]
    r, calls = _make(tmp_path, "xclbin", TARGET="u280", BUNDLE=bundles[4], AURORA_HLS=tmp_path / "none")
    assert r.returncode != 0 and "aurora_flow_0.xo missing" in r.stdout
    r, calls = _make(tmp_path, "hw_emu", TARGET="u280", BUNDLE=bundles[4])
    assert r.returncode != 0 and "hw_emu cannot emulate the QSFP links" in r.stdout
    r, calls = _make(tmp_path, "xclbin", TARGET="u280", BUNDLE=bundles[4].name)
    assert r.returncode != 0 and "give an absolute path" in r.stdout and "v++" not in [c[0] for c in calls]
    r, calls = _make(tmp_path, "hw_emu", TARGET="u280", BUNDLE=bundles[1])
    assert r.returncode == 0, r.stdout + r.stderr
    link = [c for c in calls if c[0] == "v++"][0]
    assert link[1:3] == ["--link", "-t"] and link[3] == "hw_emu" and not any("aurora" in x for x in link)
    assert calls[-1][0] == "emconfigutil" and (tmp_path / "build" / "emconfig.json").exists()
    r, _ = _make(tmp_path, "xo", TARGET="tiny")
    assert r.returncode == 0, r.stdout + r.stderr
    r, _ = _make(tmp_path, "xclbin", TARGET="tiny", BUNDLE=bundles[1])
    assert r.returncode != 0 and "names no card" in r.stderr + r.stdout


# ------------------------------------------------------------------ per-SLR floorplan
def _module_text(name: str, target: str = "u280") -> str:
    files = [hw.top_file(target)] if name == vitis.KERNEL else hw.rtl_sources()
    for f in files:
        text = f.read_text()
        if re.search(rf"^\s*module\s+{name}\b", text, re.M):
            return text
    raise AssertionError(f"no module {name} in the sources")


def test_floorplan_paths_are_the_rtl_hierarchy():
    """Every instance and generate block the floorplan names is in the Verilog, under that name."""
    for parent, inst, child in vitis.FLOORPLAN_PATH:
        assert re.search(rf"\b{child}\b[^;]*?\)\s*{inst}\s*\(", _module_text(parent), re.S), (parent, inst, child)
    for mod, label in vitis.FLOORPLAN_GENERATE:
        assert re.search(rf"begin\s*:\s*{label}\b", _module_text(mod)), (mod, label)
    placed = set(vitis.SLR_PLAN) | {"dfx_mpu_path"}
    level1 = {child for parent, _inst, child in vitis.FLOORPLAN_PATH if parent == "dfx_core_flat"}
    assert level1 | {"dfx_core_flat"} == placed


_TCL_STANDIN = r"""
# stand-ins for Vivado's get_cells / get_pblocks / add_cells_to_pblock over a list of cell names
proc get_pblocks {name} { return $name }
proc get_cells {args} {
    global cells prims
    set f [lindex $args end]
    if {![regexp {NAME =~ "(.*)"} $f -> re]} { error "filter without NAME: $f" }
    set pool [expr {[string match "*IS_PRIMITIVE*" $f] ? $prims : $cells}]
    set out {}
    foreach c $pool { if {[regexp -- $re $c]} { lappend out $c } }
    return $out
}
proc add_cells_to_pblock {pb cs} { foreach c $cs { puts "PLACED $pb $c" } }
"""


@pytest.mark.skipif(shutil.which("tclsh") is None, reason="needs tclsh")
@pytest.mark.parametrize("target", ["u280-dfx", "u280"])
def test_floorplan_tcl_standin_places_each_block_by_the_plan(tmp_path, target):
    """The floorplan Tcl, run by tclsh against stand-ins of Vivado's cell queries over the names
    Vivado gives dfx_core's hierarchy (generate blocks as `label[i].`), puts every MPU lane, buffer
    bank and block in its SLR's pblock, once; Vivado itself is not run here."""
    t = load_target(target)
    pre = "level0_i/ulp/dfx_core_1/inst/u_core"
    prims = [f"{pre}/cs_reg[0]", f"{pre}/g_ptr[3].ptr_reg[7]"]
    cells = [f"{pre}/u_rd", f"{pre}/u_rd/q_reg", f"{pre}/u_wr", f"{pre}/u_dma", f"{pre}/u_iq", f"{pre}/g_ddr.u_ddr",
             f"{pre}/u_vpu", f"{pre}/u_net", f"{pre}/u_mpu", f"{pre}/u_mpu/u_mpu", f"{pre}/u_mpu/u_mpu/v_reg",
             f"{pre}/u_vbuf", *prims]
    cells += [f"{pre}/u_vbuf/g_bank[{b}].mem_reg" for b in range(64)] + [f"{pre}/u_vbuf/g_rot[3].r_reg"]
    cells += [c for j in range(t.matrix.lanes) for c in
              (f"{pre}/u_mpu/u_mpu/g_lane[{j}].u_tree", f"{pre}/u_mpu/u_mpu/g_lane[{j}].u_tree/x_reg",
               f"{pre}/u_mpu/u_mpu/g_lane[{j}].acc_reg[31]")]
    script = tmp_path / "run.tcl"
    script.write_text(_TCL_STANDIN + f"set cells {{{' '.join(cells)}}}\nset prims {{{' '.join(prims)}}}\n"
                      + vitis.xo_files(target)["floorplan.tcl"])
    r = subprocess.run(["tclsh", str(script)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    placed = [ln.split()[1:] for ln in r.stdout.splitlines() if ln.startswith("PLACED ")]
    where = {c: pb for pb, c in placed}
    assert len(where) == len(placed), "a cell went into two pblocks"
    slr = {c: int(pb.removeprefix("pblock_dynamic_SLR")) for c, pb in where.items()}
    lanes = vitis.mpu_lanes_per_slr(t.matrix.lanes)
    want_lane = [i for i, n in enumerate(lanes) for _ in range(n)]
    for j in range(t.matrix.lanes):
        assert slr[f"{pre}/u_mpu/u_mpu/g_lane[{j}].u_tree"] == slr[f"{pre}/u_mpu/u_mpu/g_lane[{j}].acc_reg[31]"] \
            == want_lane[j]
        assert f"{pre}/u_mpu/u_mpu/g_lane[{j}].u_tree/x_reg" not in slr  # inside a placed cell: it follows it
    assert [slr[f"{pre}/u_vbuf/g_bank[{b}].mem_reg"] for b in range(4)] == [0, 1, 0, 1]
    assert all(f"{pre}/u_vbuf/g_bank[{b}].mem_reg" in slr for b in range(64))
    assert {slr[f"{pre}/{b}"] for b in ("u_rd", "u_wr", "u_dma", "u_iq", "g_ddr.u_ddr")} == {0}
    assert (slr[f"{pre}/u_vpu"], slr[f"{pre}/u_net"]) == (1, 2)
    assert all(slr[p] == 0 for p in prims)  # the controller's own cells
    for free in ("u_mpu", "u_mpu/u_mpu", "u_mpu/u_mpu/v_reg", "u_vbuf", "u_vbuf/g_rot[3].r_reg"):
        assert f"{pre}/{free}" not in slr, free
    # a block the netlist does not have stops the run with its pattern
    script.write_text(script.read_text().replace("g_ddr.u_ddr ", "g_ddr.u_ddr_renamed ", 1))
    r = subprocess.run(["tclsh", str(script)], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "dfx floorplan: no cell matches" in r.stderr and "u_ddr" in r.stderr


def test_floorplan_only_for_a_card_with_slrs():
    assert "floorplan.tcl" in vitis.xo_files("u280") and "floorplan.tcl" not in vitis.xo_files("tiny")
