"""Static timing estimate of the dfx core from Yosys's netlists, without Vivado.

    from dfx.hw import timing
    rep = timing.analyze(json.load(open("netlist.json")), top="dfx_core_flat", corner=timing.PESSIMISTIC)
    rep.worst(10)                      # the ten longest register-to-register paths, each a timing.TimingPath
    rep.blocks()                       # per block (module): its longest path and widest net

The netlist is Yosys's `write_json` after `synth_xilinx -family xcup -noiopad` (UltraScale+ cells:
LUT1-6, CARRY4/8, MUXF7-9, FDRE/FDSE/FDCE/FDPE, SRL16E/SRLC32E, LUT RAMs, RAMB18E2/RAMB36E2,
URAM288, DSP48E2), with or without its hierarchy. The estimate is a longest-path search over the
cells, each weighted by a corner's delay (Corner below; the figures and their sources are in
docs/hw.md, "Timing estimate"). It is hierarchical: each module definition is analysed once, reduced
to a boundary model (the latest arrival at each output from its registers, the longest way from each
input to a register, the longest way from each input port to each output), and its instances are
those models in the parent. So the whole core of every target is analysed without flattening it, and
a path that runs through several modules is found in the lowest module that holds both its ends.

What it assumes (docs/hw.md says why; each makes the figure optimistic or pessimistic as noted):
- one clock; every clock pin and the nets of BUFGs are left out; ports of the top are registers in
  the shell (an input launches at 0, an output ends at a register one net away);
- a path costs the corner's `reg` once (clock to out, setup, clock uncertainty), then per cell its
  delay and per net `net` (none on dedicated routes: carry chains, LUT into MUXF, DSP cascades);
- a DSP48E2 register Yosys 0.23 leaves outside (it packs none for UltraScale+) counts as inside
  when Vivado would pull it in: a flip-flop whose output goes only to DSP inputs is the A/B/C/D
  register, a flip-flop fed straight from P alone is the P register (UG579, UG901);
- no placement: no SLR crossing, no congestion; high fan-out is reported (`Net`), not priced.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import re
import subprocess
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dfx.hw import synth
from dfx.hw.synth import base_name

BUDGET_NS = 5.0  # 200 MHz with room for placement and routing (DEVELOPERS.md)


class TimingError(Exception):
    """A netlist the estimate cannot read (unknown cells, a combinational loop, no such top)."""


@dataclass(frozen=True)
class Corner:
    """Per-cell delays in ns for an UltraScale+ -2 part (docs/hw.md, "Timing estimate", names the
    data sheets). `reg` is paid once per path; `net` once per net that is not a dedicated route."""
    name: str
    lut: float            # a LUT1-6 (and a LUT RAM's read) from input to output
    net: float            # general routing between two cells
    carry_in: float       # into a carry chain (S or DI) and out of it
    carry_hop: float      # along the chain, per CARRY8 (8 bits; a CARRY4 is half a hop)
    muxf: float           # MUXF7/8/9, fed by LUTs on dedicated routes
    reg: float            # clock to out + setup + clock uncertainty, once per path
    dsp_mult: float       # DSP48E2: A/B/D (pin or register) to the M register or on to the ALU
    dsp_alu: float        # DSP48E2: M, C, PCIN or the mode pins through the ALU to P (pin or register)
    srl_clkq: float       # extra clock-to-out of an SRL16E/SRLC32E and of a LUT RAM
    bram_clkq: float      # extra clock-to-out of a RAMB18E2/RAMB36E2 without its output register
    uram_clkq: float      # extra clock-to-out of a URAM288 without its output register
    ram_reg_clkq: float   # extra clock-to-out of a block RAM or UltraRAM with its output register


OPTIMISTIC = Corner("optimistic", lut=0.10, net=0.30, carry_in=0.25, carry_hop=0.04, muxf=0.05, reg=0.35,
                    dsp_mult=1.40, dsp_alu=1.00, srl_clkq=0.80, bram_clkq=1.20, uram_clkq=1.50,
                    ram_reg_clkq=0.20)
PESSIMISTIC = Corner("pessimistic", lut=0.15, net=0.50, carry_in=0.35, carry_hop=0.07, muxf=0.10, reg=0.45,
                     dsp_mult=1.90, dsp_alu=1.30, srl_clkq=1.10, bram_clkq=1.60, uram_clkq=2.00,
                     ram_reg_clkq=0.35)
CORNERS = {c.name: c for c in (OPTIMISTIC, PESSIMISTIC)}

FF_CELLS = {"FDRE", "FDSE", "FDCE", "FDPE", "FDRE_1", "FDSE_1", "FDCE_1", "FDPE_1", "LDCE", "LDPE"}
CLOCK_PINS = {"C", "CLK", "WCLK", "CLKARDCLK", "CLKBWRCLK", "RDCLK", "WRCLK", "G"}
IGNORED_CELLS = {"GND", "VCC", "BUFG", "BUFGCE", "BUFGCTRL", "BUFG_GT"}
SRL_CELLS = {"SRL16E", "SRLC16E", "SRLC32E"}
BRAM_CELLS = {"RAMB18E2", "RAMB36E2", "FIFO18E2", "FIFO36E2"}
URAM_CELLS = {"URAM288", "URAM288_BASE"}
LUTRAM_RE = re.compile(r"^RAM(16|32|64|128|256|512)(X\d+[SD]|M\d*)(_1)?$")
LUTRAM_ADDR_RE = re.compile(r"^(ADDR[A-H]|A\d*|DPRA\d*)$")
DSP_GROUPS = {"A": "A", "ACIN": "A", "B": "B", "BCIN": "B", "D": "D", "C": "C"}
DSP_REG_OF = {"A": "AREG", "B": "BREG", "D": "DREG", "C": "CREG"}
DSP_CASCADE_IN = {"ACIN", "BCIN", "PCIN", "CARRYCASCIN", "MULTSIGNIN"}


@dataclass
class TimingPath:
    """One register-to-register (or port) path: its delay in the corner, the logic cells on it, where
    it starts and ends (hierarchical names), the module whose analysis closed it, and the widest net
    on it (leaf loads)."""
    ns: float
    levels: int
    start: str
    end: str
    module: str
    kind: str = "reg2reg"   # reg2reg | in2reg | reg2out | in2out (ports of the analysed top only)
    fanout: int = 0
    via: list[str] = field(default_factory=list)

    def row(self) -> str:
        return f"{self.ns:6.2f} ns  {self.levels:3d} lvl  fo {self.fanout:6d}  {self.start}  ->  {self.end}"


@dataclass
class Net:
    """A net with many leaf loads, in the module that drives it."""
    module: str
    name: str
    fanout: int


@dataclass
class _Arr:
    t: float
    lv: int
    name: str
    fo: int


@dataclass
class Model:
    """A module's boundary: out_arr[out bit] from its registers, in_req[in bit] to its registers,
    thru[(in port, out bit)] through it, and the leaf loads of each input bit."""
    name: str
    out_arr: dict[tuple[str, int], _Arr]
    in_req: dict[tuple[str, int], _Arr]
    thru: dict[tuple[str, tuple[str, int]], tuple[float, int]]
    in_loads: dict[tuple[str, int], int]
    paths: list[TimingPath]        # closed in this module (worst per endpoint, the top ones)
    nets: list[Net]
    children: dict[str, int]       # child module definition -> instances
    blackboxes: set[str]
    n_over: int = 0                # endpoints whose longest path closed here exceeds BUDGET_NS


def _param(cell: dict, name: str, default=0):
    v = cell.get("parameters", {}).get(name)
    if v is None:
        return default
    if isinstance(v, int):
        return v
    s = str(v).strip()
    if s and set(s) <= {"0", "1"}:
        return int(s, 2)
    return s


class _Analyser:
    def __init__(self, modules: dict, corner: Corner, keep: int):
        self.mods = modules
        self.c = corner
        self.keep = keep
        self.models: dict[str, Model] = {}
        self.loops: dict[str, int] = {}

    # ------------------------------------------------------------------ one module
    def model(self, mname: str) -> Model:
        if mname in self.models:
            return self.models[mname]
        mod = self.mods[mname]
        c = self.c
        cells = mod.get("cells", {})
        # names of bits
        bitname: dict[int, str] = {}
        for nn, nd in sorted(mod.get("netnames", {}).items(), key=lambda kv: (kv[1].get("hide_name", 0), len(kv[0]))):
            bits = nd["bits"]
            for i, b in enumerate(bits):
                if isinstance(b, int) and b not in bitname:
                    bitname[b] = nn if len(bits) == 1 else f"{nn}[{i}]"
        ports = mod.get("ports", {})
        in_bits: dict[int, tuple[str, int]] = {}
        out_bits: dict[int, list[tuple[str, int]]] = defaultdict(list)
        for pn, pd in ports.items():
            for i, b in enumerate(pd["bits"]):
                if not isinstance(b, int):
                    continue
                if pd["direction"] == "input":
                    in_bits[b] = (pn, i)
                else:
                    out_bits[b].append((pn, i))
        # drivers and loads
        driver: dict[int, tuple[str, str]] = {}
        loads: dict[int, list[tuple[str, str]]] = defaultdict(list)
        kinds: dict[str, str] = {}
        children: dict[str, int] = defaultdict(int)
        blackboxes: set[str] = set()
        for cn, cd in cells.items():
            t = cd["type"]
            kinds[cn] = self._kind(t)
            if kinds[cn] == "inst":
                children[t] += 1
                sub = self.mods[t]
                if sub.get("attributes", {}).get("blackbox") and not sub.get("cells"):
                    kinds[cn] = "blackbox"
                    blackboxes.add(base_name(t))
            dirs = cd.get("port_directions") or self._dirs(t)
            for pn, bits in cd["connections"].items():
                d = dirs.get(pn, "input")
                for b in bits:
                    if not isinstance(b, int):
                        continue
                    if d == "output":
                        driver[b] = (cn, pn)
                    else:
                        loads[b].append((cn, pn))
        ff_q = {b for b, (cn, pn) in driver.items() if kinds[cn] == "ff" and pn == "Q"}
        clock_bits = {b for b, ls in loads.items()
                      if ls and all(pn in CLOCK_PINS or kinds[cn] == "ignore" for cn, pn in ls)}
        clock_bits |= {b for b, (cn, pn) in driver.items()
                       if kinds[cn] == "ignore" and cells[cn]["type"].startswith("BUFG")}
        # DSP registers Vivado would pull in (module docstring)
        absorbed_in: set[tuple[str, str]] = set()        # (dsp cell, group)
        absorbed_out_bits: set[int] = set()
        for cn, cd in cells.items():
            if kinds[cn] != "dsp":
                continue
            conn = cd["connections"]
            for g in ("A", "B", "C", "D"):
                bs = [b for b in conn.get(g, []) if isinstance(b, int)]
                if bs and all(b in ff_q and all(kinds[lc] == "dsp" for lc, _ in loads[b]) for b in bs):
                    absorbed_in.add((cn, g))
            ps = [b for b in conn.get("P", []) if isinstance(b, int) and loads.get(b)]
            if ps and not _param(cd, "PREG") and all(
                    len(loads[b]) == 1 and kinds[loads[b][0][0]] == "ff" and loads[b][0][1] == "D"
                    and b not in out_bits for b in ps):
                absorbed_out_bits.update(ps)

        # leaf loads per bit (children's inputs count their own leaf loads)
        def leaf_loads(b: int) -> int:
            n = 0
            for cn, pn in loads.get(b, ()):
                k = kinds[cn]
                if k == "inst":
                    sub = self.model(cells[cn]["type"])
                    idx = cells[cn]["connections"][pn].index(b)
                    n += sub.in_loads.get((pn, idx), 0)
                elif k != "ignore":
                    n += 1
            return n

        # graph: nodes are bit ids and synthetic ids (DSP M registers)
        nxt = [max([b for b in driver] + [b for b in loads] + [0]) + 1]

        def synth_node() -> int:
            nxt[0] += 1
            return nxt[0]

        edges: dict[int, list[tuple[int, float, int]]] = defaultdict(list)   # src -> (dst, delay, levels)
        starts: dict[int, tuple[float, int, str]] = {}                         # node -> (launch, levels, name)
        ends: list[tuple[int, float, int, str]] = []                           # (node, extra, levels, name)

        def net_in(b: int, dedicated: bool = False) -> float:
            if dedicated or b in clock_bits:
                return 0.0
            if b in absorbed_out_bits:
                return 0.0
            return c.net

        def add_start(node: int, launch: float, name: str, lv: int = 0):
            old = starts.get(node)
            if old is None or launch > old[0]:
                starts[node] = (launch, lv, name)

        for cn, cd in cells.items():
            k = kinds[cn]
            t = cd["type"]
            conn = cd["connections"]
            dirs = cd.get("port_directions") or self._dirs(t)
            ins = {pn: bs for pn, bs in conn.items() if dirs.get(pn, "input") != "output" and pn not in CLOCK_PINS}
            outs = {pn: bs for pn, bs in conn.items() if dirs.get(pn) == "output"}
            if k == "ignore":
                continue
            if k == "ff":
                for pn, bs in ins.items():
                    for b in bs:
                        if isinstance(b, int) and b not in clock_bits:
                            ends.append((b, net_in(b), 0, bitname.get(conn["Q"][0], cn) + f" ({pn})"))
                q = conn.get("Q", [None])[0]
                if isinstance(q, int):
                    add_start(q, 0.0, bitname.get(q, cn))
            elif k in ("lut", "inv", "wire", "muxf"):
                o = (outs.get("O") or [None])[0]
                if not isinstance(o, int):
                    continue
                if k == "lut":
                    d, lv = c.lut, 1
                elif k == "muxf":
                    d, lv = c.muxf, 1
                else:
                    d, lv = 0.0, 0
                for pn, bs in ins.items():
                    for b in bs:
                        if not isinstance(b, int):
                            continue
                        ded = (k in ("inv", "wire")) or (k == "muxf" and pn in ("I0", "I1"))
                        edges[b].append((o, net_in(b, ded) + d, lv))
            elif k == "carry":
                w = 8 if t == "CARRY8" else 4
                hop = c.carry_hop / 8.0
                oo = outs.get("O", [])
                co = outs.get("CO", [])
                for pn in ("S", "DI"):
                    for i, b in enumerate(ins.get(pn, [])):
                        if not isinstance(b, int):
                            continue
                        for j in range(i, w):
                            for ob in (oo[j] if j < len(oo) else None, co[j] if j < len(co) else None):
                                if isinstance(ob, int):
                                    edges[b].append((ob, net_in(b) + c.carry_in + hop * (j - i), 1))
                for pn in ("CI", "CYINIT", "CI_TOP"):
                    for b in ins.get(pn, []):
                        if not isinstance(b, int):
                            continue
                        ded = pn == "CI" and b in driver and kinds[driver[b][0]] == "carry"
                        extra = 0.0 if ded else c.carry_in
                        for j in range(w):
                            for ob in (oo[j] if j < len(oo) else None, co[j] if j < len(co) else None):
                                if isinstance(ob, int):
                                    edges[b].append((ob, net_in(b, ded) + extra + hop * (j + 1), 1 if not ded else 0))
            elif k == "srl":
                for pn, bs in ins.items():
                    for b in bs:
                        if not isinstance(b, int) or b in clock_bits:
                            continue
                        if re.fullmatch(r"A\d*", pn):
                            for ob in (x for v in outs.values() for x in v if isinstance(x, int)):
                                edges[b].append((ob, net_in(b) + c.lut, 1))
                        else:
                            ends.append((b, net_in(b), 0, f"{cn} ({pn})"))
                for ob in (x for v in outs.values() for x in v if isinstance(x, int)):
                    add_start(ob, c.srl_clkq, f"{cn} (SRL)")
            elif k == "lutram":
                size = int(LUTRAM_RE.match(t).group(1))
                mux = {128: 1, 256: 2, 512: 3}.get(size, 0)
                obits = [x for v in outs.values() for x in v if isinstance(x, int)]
                for pn, bs in ins.items():
                    for b in bs:
                        if not isinstance(b, int) or b in clock_bits:
                            continue
                        ends.append((b, net_in(b), 0, f"{cn} ({pn})"))
                        if LUTRAM_ADDR_RE.match(pn):
                            for ob in obits:
                                edges[b].append((ob, net_in(b) + c.lut + mux * c.muxf, 1 + mux))
                for ob in obits:
                    add_start(ob, c.srl_clkq, f"{cn} (LUT RAM)")
            elif k in ("bram", "uram"):
                for pn, bs in ins.items():
                    for b in bs:
                        if isinstance(b, int) and b not in clock_bits:
                            ends.append((b, net_in(b), 0, f"{cn} ({pn})"))
                for pn, bs in outs.items():
                    if k == "bram":
                        reg = _param(cd, "DOB_REG" if "B" in pn.replace("DOUT", "", 1)[:2] else "DOA_REG")
                        clkq = c.ram_reg_clkq if reg else c.bram_clkq
                    else:
                        reg = str(_param(cd, "OREG_B" if pn.endswith("_B") else "OREG_A", "FALSE")).upper()
                        clkq = c.ram_reg_clkq if reg in ("TRUE", "1") else c.uram_clkq
                    for b in bs:
                        if isinstance(b, int):
                            add_start(b, clkq, f"{cn} ({pn})")
            elif k == "dsp":
                self._dsp(cn, cd, ins, outs, absorbed_in, net_in, edges, starts, ends, synth_node, add_start,
                          clock_bits)
            elif k in ("inst", "blackbox"):
                sub = None if k == "blackbox" else self.model(t)
                for pn, bs in ins.items():
                    for i, b in enumerate(bs):
                        if not isinstance(b, int) or b in clock_bits:
                            continue
                        if sub is None:
                            ends.append((b, c.net, 0, f"{cn} ({base_name(t)}, black box).{pn}[{i}]"))
                            continue
                        r = sub.in_req.get((pn, i))
                        if r is not None:
                            ends.append((b, r.t, r.lv, f"{cn}/{r.name}"))
                for pn, bs in outs.items():
                    for i, b in enumerate(bs):
                        if not isinstance(b, int):
                            continue
                        if sub is None:
                            add_start(b, 0.0, f"{cn} ({base_name(t)}, black box).{pn}[{i}]")
                            continue
                        a = sub.out_arr.get((pn, i))
                        if a is not None:
                            add_start(b, a.t, f"{cn}/{a.name}", a.lv)
                if sub is not None:
                    for (ip, (op, oi)), (d, lv) in sub.thru.items():
                        ob = conn[op][oi]
                        if not isinstance(ob, int):
                            continue
                        for b in conn.get(ip, []):
                            if isinstance(b, int) and b not in clock_bits:
                                edges[b].append((ob, d, lv))
            else:
                raise TimingError(f"module {base_name(mname)}: no timing for cell {cn} of type {t}")

        fo_cache: dict[int, int] = {}

        def fanout(b: int) -> int:
            if b not in fo_cache:
                fo_cache[b] = leaf_loads(b)
            return fo_cache[b]

        order = self._topo(edges, mname)
        # forward from the registers: arrival at every node
        arr: dict[int, _Arr] = {}
        pred: dict[int, int] = {}
        for node, (launch, lv, name) in starts.items():
            arr[node] = _Arr(launch, lv, name, 0)
        for node in order:
            a = arr.get(node)
            if a is None:
                continue
            fo = fanout(node) if node in loads else 0
            for dst, d, lv in edges.get(node, ()):
                t_ = a.t + d
                old = arr.get(dst)
                if old is None or t_ > old.t:
                    arr[dst] = _Arr(t_, a.lv + lv, a.name, max(a.fo, fo))
                    pred[dst] = node
        # endpoints
        best_end: dict[str, TimingPath] = {}
        for node, extra, lv, name in ends:
            a = arr.get(node)
            if a is None:
                continue
            t_ = a.t + extra + c.reg
            p = best_end.get(name)
            if p is None or t_ > p.ns:
                best_end[name] = TimingPath(round(t_, 3), a.lv + lv, a.name, name, base_name(mname), "reg2reg",
                                      max(a.fo, fanout(node) if node in loads else 0), [])
                best_end[name]._node = node  # type: ignore[attr-defined]
        paths = heapq.nlargest(self.keep, best_end.values(), key=lambda p: p.ns)
        n_over = sum(1 for p in best_end.values() if p.ns > BUDGET_NS)
        for p in paths[:10]:
            p.via = self._via(p._node, pred, driver, cells)  # type: ignore[attr-defined]
        out_arr = {}
        for b, pl in out_bits.items():
            a = arr.get(b)
            if a is not None:
                for key in pl:
                    out_arr[key] = a
        # backward: the longest way from each node to a register
        req: dict[int, _Arr] = {}
        for node, extra, lv, name in ends:
            old = req.get(node)
            if old is None or extra > old.t:
                req[node] = _Arr(extra, lv, name, 0)
        for node in reversed(order):
            best = req.get(node)
            for dst, d, lv in edges.get(node, ()):
                r = req.get(dst)
                if r is not None and (best is None or d + r.t > best.t):
                    best = _Arr(d + r.t, lv + r.lv, r.name, 0)
            if best is not None:
                req[node] = best
        in_req = {key: req[b] for b, key in in_bits.items() if b in req}
        in_loads = {key: fanout(b) for b, key in in_bits.items()}
        # through paths: input port -> output bit
        thru: dict[tuple[str, tuple[str, int]], tuple[float, int]] = {}
        reach_out = self._cone(edges, set(out_bits))
        by_port: dict[str, list[int]] = defaultdict(list)
        for b, (pn, _) in in_bits.items():
            if b in reach_out:
                by_port[pn].append(b)
        pos = {n: i for i, n in enumerate(order)}
        for pn, bs in by_port.items():
            far: dict[int, tuple[float, int]] = {b: (0.0, 0) for b in bs}
            for node in sorted((n for n in reach_out if n in pos), key=pos.__getitem__):
                f = far.get(node)
                if f is None:
                    continue
                for dst, d, lv in edges.get(node, ()):
                    if dst in reach_out:
                        o = far.get(dst)
                        if o is None or f[0] + d > o[0]:
                            far[dst] = (f[0] + d, f[1] + lv)
            for b, pl in out_bits.items():
                if b in far:
                    for key in pl:
                        thru[(pn, key)] = far[b]
        nets = sorted((Net(base_name(mname), bitname.get(b, str(b)), fanout(b))
                       for b in loads if b in driver and b not in clock_bits),
                      key=lambda n: -n.fanout)[:5]
        m = Model(mname, out_arr, in_req, thru, in_loads, paths, nets, dict(children), blackboxes, n_over)
        self.models[mname] = m
        return m

    # ------------------------------------------------------------------ helpers
    def _kind(self, t: str) -> str:
        if t in self.mods and not t.startswith("$__") and not self._is_lib(t):
            return "inst"
        if t in FF_CELLS:
            return "ff"
        if re.fullmatch(r"LUT[2-6]", t) or t == "LUT6_2":
            return "lut"
        if t == "LUT1":
            return "wire"
        if t == "INV":
            return "inv"
        if t in ("MUXF7", "MUXF8", "MUXF9"):
            return "muxf"
        if t in ("CARRY4", "CARRY8"):
            return "carry"
        if t == "DSP48E2":
            return "dsp"
        if t in SRL_CELLS:
            return "srl"
        if LUTRAM_RE.match(t):
            return "lutram"
        if t in BRAM_CELLS:
            return "bram"
        if t in URAM_CELLS:
            return "uram"
        if t in IGNORED_CELLS:
            return "ignore"
        return "unknown:" + t

    def _is_lib(self, t: str) -> bool:
        src = str(self.mods[t].get("attributes", {}).get("src", ""))
        return "share/yosys" in src

    def _dirs(self, t: str) -> dict[str, str]:
        m = self.mods.get(t)
        if m is None:
            return {}
        return {pn: pd["direction"] for pn, pd in m.get("ports", {}).items()}

    def _dsp(self, cn, cd, ins, outs, absorbed_in, net_in, edges, starts, ends, synth_node, add_start, clock_bits):
        c = self.c
        use_mult = str(_param(cd, "USE_MULT", "MULTIPLY")).upper() != "NONE"
        mreg = bool(_param(cd, "MREG"))
        preg = bool(_param(cd, "PREG"))
        alu_in = synth_node()     # the ALU's input: M (register or wire), C, PCIN, modes
        p_node = synth_node()     # the ALU's output, before P's register
        mult_out = synth_node()
        edges[alu_in].append((p_node, c.dsp_alu, 0))
        if mreg:
            ends.append((mult_out, 0.0, 0, f"{cn} (DSP M register)"))
            add_start(alu_in, 0.0, f"{cn} (DSP M register)")
        else:
            edges[mult_out].append((alu_in, 0.0, 0))
        for pn, bs in ins.items():
            g = DSP_GROUPS.get(pn)
            ded = pn in DSP_CASCADE_IN
            for b in bs:
                if not isinstance(b, int) or b in clock_bits:
                    continue
                if pn.startswith("CE") or pn.startswith("RST"):
                    ends.append((b, net_in(b), 0, f"{cn} ({pn})"))
                    continue
                absorbed = g is not None and (cn, g) in absorbed_in
                reg = g is not None and bool(_param(cd, DSP_REG_OF[g]))
                n_in = 0.0 if (absorbed or ded) else net_in(b)
                if reg:
                    ends.append((b, n_in, 0, f"{cn} (DSP {DSP_REG_OF[g]})"))
                    continue
                if g in ("A", "B", "D") and use_mult:
                    edges[b].append((mult_out, n_in + c.dsp_mult, 1))
                else:
                    edges[b].append((alu_in, n_in, 1))
        for g in ("A", "B", "D", "C"):
            if _param(cd, DSP_REG_OF[g]):
                tgt = mult_out if (g != "C" and use_mult) else alu_in
                src = synth_node()
                add_start(src, 0.0, f"{cn} (DSP {DSP_REG_OF[g]})")
                edges[src].append((tgt, c.dsp_mult if tgt is mult_out else 0.0, 1))
        obits = [b for v in outs.values() for b in v if isinstance(b, int)]
        if preg:
            ends.append((p_node, 0.0, 0, f"{cn} (DSP P register)"))
            for b in obits:
                add_start(b, 0.0, f"{cn} (DSP P register)")
        else:
            for b in obits:
                edges[p_node].append((b, 0.0, 0))

    def _topo(self, edges, mname) -> list[int]:
        """Nodes in topological order. Yosys's ABC shares logic across a carry chain so that a chain's
        input can depend structurally on its own output while the function does not (a false loop:
        the SAT-proven FP32 adder has one). Such loops are broken where a depth-first search closes
        them, as Vivado's timer breaks loops, and counted in `loops` of the module."""
        dropped = 0
        for _ in range(100):
            indeg: dict[int, int] = defaultdict(int)
            nodes = set(edges)
            for src, lst in edges.items():
                for dst, _, _ in lst:
                    indeg[dst] += 1
                    nodes.add(dst)
            order = [n for n in nodes if indeg[n] == 0]
            i = 0
            while i < len(order):
                for dst, _, _ in edges.get(order[i], ()):
                    indeg[dst] -= 1
                    if indeg[dst] == 0:
                        order.append(dst)
                i += 1
            if len(order) == len(nodes):
                self.loops[mname] = dropped
                return order
            rest = nodes - set(order)
            state: dict[int, int] = {}
            back: set[tuple[int, int]] = set()
            for root in rest:
                if root in state:
                    continue
                stack = [(root, iter(edges.get(root, ())))]
                state[root] = 1
                while stack:
                    n, it = stack[-1]
                    for dst, _, _ in it:
                        if dst not in rest:
                            continue
                        if state.get(dst) == 1:
                            back.add((n, dst))
                        elif dst not in state:
                            state[dst] = 1
                            stack.append((dst, iter(edges.get(dst, ()))))
                            break
                    else:
                        state[n] = 2
                        stack.pop()
            for src, dst in back:
                edges[src] = [e for e in edges[src] if e[0] != dst]
            dropped += len(back)
        raise TimingError(f"module {base_name(mname)}: combinational loops that could not be broken")

    @staticmethod
    def _cone(edges, sinks: set[int]) -> set[int]:
        rev: dict[int, list[int]] = defaultdict(list)
        for src, lst in edges.items():
            for dst, _, _ in lst:
                rev[dst].append(src)
        seen = set(sinks)
        stack = list(sinks)
        while stack:
            n = stack.pop()
            for s in rev.get(n, ()):
                if s not in seen:
                    seen.add(s)
                    stack.append(s)
        return seen

    @staticmethod
    def _via(node, pred, driver, cells) -> list[str]:
        out: list[str] = []
        seen = 0
        while node is not None and seen < 200:
            seen += 1
            d = driver.get(node)
            if d is not None:
                src = str(cells[d[0]].get("attributes", {}).get("src", "")).split("|")[0]
                loc = "" if "share/yosys" in src else re.sub(r"\.\d+-\d+\.\d+$", "", re.sub(r"^.*/hw/", "hw/", src))
                tag = f"{base_name(cells[d[0]]['type'])} {loc}".strip()
                if not out or out[-1] != tag:
                    out.append(tag)
            node = pred.get(node)
        return out[::-1]


@dataclass
class Report:
    top: str
    corner: Corner
    models: dict[str, Model]
    top_model: Model
    port_paths: list[TimingPath]
    loops: dict[str, int]

    def _defs(self, mname: str) -> set[str]:
        seen = {mname}
        stack = [mname]
        while stack:
            for ch in self.models[stack.pop()].children:
                if ch in self.models and ch not in seen:
                    seen.add(ch)
                    stack.append(ch)
        return seen

    def paths(self, module: str | None = None) -> list[TimingPath]:
        """Every kept register-to-register path of the design (or of one module definition's
        subtree, by base name), longest first."""
        names = self._defs(self.top_model.name)
        if module is not None:
            names = {d for n in names if base_name(n) == module for d in self._defs(n)}
        ps = [p for n in names for p in self.models[n].paths]
        return sorted(ps, key=lambda p: -p.ns)

    def instances(self) -> dict[str, int]:
        """How many times each module definition is instantiated under the top."""
        count: dict[str, int] = defaultdict(int)
        count[self.top_model.name] = 1

        def walk(m: str, k: int):
            for ch, n in self.models[m].children.items():
                if ch in self.models:
                    count[ch] += k * n
                    walk(ch, k * n)
        walk(self.top_model.name, 1)
        return dict(count)

    def over_budget(self) -> int:
        """Register endpoints of the whole design whose longest path exceeds BUDGET_NS (each module
        definition's count times its instances)."""
        return sum(self.models[m].n_over * k for m, k in self.instances().items())

    def worst(self, n: int = 10) -> list[TimingPath]:
        return self.paths()[:n]

    def blocks(self) -> list[dict]:
        """Per module (base name) in the design: its longest path (closed in its subtree), how many
        kept paths exceed the budget, and its widest net."""
        rows = []
        byb: dict[str, list[str]] = defaultdict(list)
        for n in self._defs(self.top_model.name):
            byb[base_name(n)].append(n)
        for b, names in sorted(byb.items()):
            own = sorted((p for n in names for p in self.models[n].paths), key=lambda p: -p.ns)
            sub = self.paths(b)
            nets = sorted((x for n in names for x in self.models[n].nets), key=lambda x: -x.fanout)
            rows.append({"block": b, "worst": sub[0] if sub else None, "own_worst": own[0] if own else None,
                         "over_budget": sum(self.models[n].n_over for n in names),
                         "net": nets[0] if nets else None})
        return rows

    def blackboxes(self) -> set[str]:
        return {b for n in self._defs(self.top_model.name) for b in self.models[n].blackboxes}


def analyze(netlist: dict, top: str, corner: Corner = PESSIMISTIC, keep: int = 50,
            extra: dict | None = None) -> Report:
    """Analyse Yosys's JSON netlist from module `top` (a base name or the exact module name) down.
    `extra`: more module definitions (another netlist's "modules"), used where the first has only a
    black box of the same name (the ROMs, synthesized alone). `keep`: paths kept per module."""
    mods = dict(netlist["modules"])
    for name, m in (extra or {}).items():
        if name not in mods or (mods[name].get("attributes", {}).get("blackbox") and not mods[name].get("cells")):
            mods[name] = m
    for m in mods.values():
        if m.get("attributes", {}).get("blackbox") and "cells" in m and not m["cells"]:
            m.pop("cells")
    cand = [n for n in mods if n == top or base_name(n) == top]
    real = [n for n in cand if mods[n].get("cells")]
    if not real:
        raise TimingError(f"no module {top} with cells in the netlist")
    tops = [n for n in real if mods[n].get("attributes", {}).get("top")] or real
    tname = tops[0]
    an = _Analyser(mods, corner, keep)
    tm = an.model(tname)
    # the top's ports: inputs launched by a register in the shell, outputs caught by one
    c = corner
    port_paths = []
    for (pn, i), r in tm.in_req.items():
        port_paths.append(TimingPath(round(r.t + c.reg, 3), r.lv, f"{pn}[{i}] (input port)", r.name,
                               base_name(tname), "in2reg"))
    for (pn, i), a in tm.out_arr.items():
        port_paths.append(TimingPath(round(a.t + c.net + c.reg, 3), a.lv, a.name, f"{pn}[{i}] (output port)",
                               base_name(tname), "reg2out"))
    for (ip, (op, oi)), (d, lv) in tm.thru.items():
        port_paths.append(TimingPath(round(d + c.net + c.reg, 3), lv, f"{ip} (input port)", f"{op}[{oi}] (output port)",
                               base_name(tname), "in2out"))
    port_paths.sort(key=lambda p: -p.ns)
    return Report(tname, corner, an.models, tm, port_paths[:keep], an.loops)


# ---------------------------------------------------------------------- running it on the core
ROMS = ("dfx_rom_gelu", "dfx_rom_exp", "dfx_rom_recip", "dfx_rom_rsqrt")


def _rom_netlist(out: Path, yosys: str) -> dict:
    """The VPU's and MPU's tables synthesized alone (the core's run keeps them as black boxes: inside
    the core Yosys spends most of its time on them); rerun when a table's source changes."""
    from dfx import hw
    srcs = sorted(p for p in hw.rtl_sources() if p.stem in ROMS)
    stamp = hashlib.sha256(b"".join(p.read_bytes() for p in srcs)).hexdigest()
    out.mkdir(parents=True, exist_ok=True)
    js, st = out / "netlist.json", out / "sources.sha256"
    if not (js.exists() and st.exists() and st.read_text().strip() == stamp):
        mods: dict = {}
        for src in srcs:
            part = out / f"{src.stem}.json"
            script = (f"read_verilog {src}; synth_xilinx -family xcup -noiopad -top {src.stem}; "
                      f"write_json {part}")
            r = subprocess.run([yosys, "-q", "-p", script], capture_output=True, text=True)
            if r.returncode != 0:
                raise TimingError(f"yosys failed on {src.name}: {(r.stderr or r.stdout).strip()[-300:]}")
            mods[src.stem] = json.loads(part.read_text())["modules"][src.stem]
            part.unlink()
        js.write_text(json.dumps({"modules": mods}))
        st.write_text(stamp + "\n")
    return json.loads(js.read_text())["modules"]


def run(target: str = "tiny", netlist: Path | None = None, reuse: bool = False, keep: int = 50,
        out: Path | None = None, yosys: str | None = None, timeout: float | None = None) -> dict:
    """Synthesize target's core (dfx.hw.synth, top dfx_core_flat, the ROMs as black boxes and
    synthesized alone) or read `netlist` (Yosys JSON, e.g. build/synth/<target>/netlist.json of
    scripts/synth.py), and analyse it in both corners. Returns what `scripts/timing.py --json` prints."""
    t0 = time.time()
    res: dict = {"target": target, "budget_ns": BUDGET_NS, "corners": {}}
    if netlist is None:
        out = Path(out) if out else synth.ROOT / "build" / "timing" / target
        sres = synth.synthesize(target, out=out, blackbox=ROMS, reuse=reuse, yosys=yosys, timeout=timeout)
        if sres["problems"]:
            raise TimingError("synthesis reported problems: " + "; ".join(sres["problems"][:3]))
        netlist = out / "netlist.json"
        res.update(yosys=sres["yosys"], synth_seconds=sres["seconds"], params=sres["params"],
                   command=f"python scripts/timing.py --target {target}")
    else:
        res.update(command=f"python scripts/timing.py --target {target} --netlist {netlist}")
    if not Path(netlist).exists():
        raise TimingError(f"no netlist at {netlist} (scripts/synth.py writes one per run)")
    data = json.loads(Path(netlist).read_text())
    extra = None
    boxed = [m for m in data["modules"] if m in ROMS and not data["modules"][m].get("cells")]
    if boxed:
        extra = _rom_netlist(synth.ROOT / "build" / "timing" / "roms", synth.find_yosys(yosys))
    res["netlist"] = str(netlist)
    for corner in (PESSIMISTIC, OPTIMISTIC):
        rep = analyze(data, "dfx_core_flat", corner, keep=keep, extra=extra)
        res["corners"][corner.name] = {
            "corner": asdict(corner),
            "worst": [asdict(p) for p in rep.worst(keep)],
            "block_paths": [asdict(p) for m in rep.models.values() for p in m.paths[:10]],
            "ports": [asdict(p) for p in rep.port_paths[:10]],
            "blocks": [{"block": b["block"],
                        "own_worst": asdict(b["own_worst"]) if b["own_worst"] else None,
                        "over_budget": b["over_budget"],
                        "net": asdict(b["net"]) if b["net"] else None} for b in rep.blocks()],
            "over_budget": rep.over_budget(),
            "loops_broken": {base_name(k): v for k, v in rep.loops.items() if v},
            "black_boxes": sorted(rep.blackboxes()),
        }
    res["seconds"] = round(time.time() - t0, 1)
    return res


def report(res: dict, paths: int = 10, block: str | None = None) -> str:
    """The text `scripts/timing.py` prints (with `block`: that module's longest paths instead of the
    core's)."""
    pes, opt = res["corners"]["pessimistic"], res["corners"]["optimistic"]
    b = res["budget_ns"]
    cp, co = pes["corner"], opt["corner"]
    out = [f"dfx_core_flat, target {res['target']}: static timing estimate, budget {b:.1f} ns (200 MHz)",
           f"netlist {res['netlist']}" + (f" ({res['yosys']}, synthesis {res['synth_seconds']:.0f} s)"
                                          if "yosys" in res else ""),
           f"corners (ns): LUT {co['lut']}-{cp['lut']} + net {co['net']}-{cp['net']} per level; carry "
           f"{co['carry_in']}-{cp['carry_in']} in + {co['carry_hop']}-{cp['carry_hop']} per CARRY8; "
           f"DSP48E2 A/B->M {co['dsp_mult']}-{cp['dsp_mult']}, ->P {co['dsp_alu']}-{cp['dsp_alu']}; "
           f"register {co['reg']}-{cp['reg']} per path (docs/hw.md, Timing estimate)",
           f"figures made by: {res['command']}", ""]
    ow = {r["block"]: r for r in opt["blocks"]}
    w = max(len(r["block"]) for r in pes["blocks"]) + 2
    head = (f"{'block (module)':<{w}} {'pessim.':>8} {'optim.':>8} {'lvl':>4} {'> budget':>8}  "
            f"{'widest net (leaf loads)':<30} longest path (pessimistic)")
    out += [head, "-" * len(head)]
    comb = []
    for r in sorted(pes["blocks"], key=lambda r: -(r["own_worst"] or {"ns": 0})["ns"]):
        p = r["own_worst"]
        if p is None:
            comb.append(r["block"])
            continue
        po = ow.get(r["block"], {}).get("own_worst")
        net = r["net"]
        nets = f"{net['name'][:22]} {net['fanout']:,}" if net else ""
        out.append(f"{r['block']:<{w}} {p['ns']:8.2f} {po['ns'] if po else 0:8.2f} {p['levels']:4d} "
                   f"{r['over_budget']:8,}  {nets:<30} {p['start']} -> {p['end']}")
    out.append("(> budget: register endpoints of one instance whose longest path, closed in that module, is over "
               "budget; lvl: logic cells on the path)")
    if comb:
        out.append("no register-to-register path of their own (their paths close in the modules above): "
                   + ", ".join(comb))
    if block:
        ps = [p for p in pes["block_paths"] if p["module"] == block][:paths]
        out += ["", f"the {len(ps)} longest paths closed in {block} (pessimistic), with the cells they run through:"]
    else:
        ps = pes["worst"][:paths]
        out += ["", f"the {paths} longest register-to-register paths (pessimistic):"]
    for i, p in enumerate(ps):
        out.append(f"  {p['ns']:6.2f} ns {p['levels']:3d} lvl  [{p['module']}] {p['start']} -> {p['end']}")
        if p["via"] and (block or i == 0):
            out.append("    through: " + " | ".join(p["via"]))
    out += ["", "ports of dfx_core_flat (the shell's registers on the other side):"]
    for p in pes["ports"][:3]:
        out.append(f"  {p['ns']:6.2f} ns {p['kind']:7s} {p['start']} -> {p['end']}")
    if pes["loops_broken"]:
        out.append("false combinational loops broken (Yosys's ABC shares logic across a carry chain): "
                   + ", ".join(f"{k} {v}" for k, v in sorted(pes["loops_broken"].items())))
    if pes["black_boxes"]:
        out.append("black boxes (their ports taken as registers): " + ", ".join(pes["black_boxes"]))
    n = pes["over_budget"]
    out += ["", f"register endpoints over {b:.1f} ns in the whole core (pessimistic): {n:,}"
            + ("" if n else "  -- every path within budget")]
    return "\n".join(out)


def main(argv=None) -> int:
    import argparse
    import sys
    ap = argparse.ArgumentParser(prog="scripts/timing.py", description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="tiny", help="hardware target (default: tiny)")
    ap.add_argument("--netlist", type=Path, help="analyse this Yosys JSON netlist instead of synthesizing")
    ap.add_argument("--reuse", action="store_true", help="reuse the last synthesis if its script is the same")
    ap.add_argument("--paths", type=int, default=10, help="longest paths to list (default 10)")
    ap.add_argument("--block", metavar="MODULE", help="list the longest paths closed in this module, with the "
                    "cells they run through")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--yosys", help="the yosys executable (default: yosys on PATH)")
    ap.add_argument("--timeout", type=float, help="give up synthesis after this many seconds")
    a = ap.parse_args(argv)
    try:
        if a.target not in synth.TARGETS:
            raise TimingError(f"unknown target {a.target!r}; known: {', '.join(synth.TARGETS)}")
        if a.netlist is None and not a.reuse:
            print(f"timing.py: {a.target}: synthesizing with yosys (build/timing/{a.target}/yosys.log) ...",
                  file=sys.stderr, flush=True)
        res = run(a.target, netlist=a.netlist, reuse=a.reuse, keep=max(50, a.paths), yosys=a.yosys,
                  timeout=a.timeout)
    except (TimingError, synth.SynthError) as e:
        print(f"timing.py: error: {e}", file=sys.stderr)
        return 1
    if a.block:
        rows = [r for r in res["corners"]["pessimistic"]["blocks"] if r["block"] == a.block]
        if not rows:
            print(f"timing.py: error: no block {a.block} in the core", file=sys.stderr)
            return 1
    print(json.dumps(res, indent=1) if a.json else report(res, a.paths, a.block))
    return 0
