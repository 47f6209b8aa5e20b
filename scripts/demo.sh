#!/usr/bin/env bash
# The demo: set up, compile the demo GPT-2 for 4 simulated FPGAs, and generate text on them
# (sampled at temperature 0.8, top-k 40, seed 0: greedy decoding of so small a model repeats itself).
# Optional arguments: a prompt, and the number of new tokens.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/dfx compile models/demo-gpt2 --fpgas 4 -o build/demo-4fpga.dfx
.venv/bin/dfx generate build/demo-4fpga.dfx "${1:-import os
import sys

def main():
}" --max-new-tokens "${2:-60}" --temperature 0.8 --top-k 40 --seed 0
