#!/usr/bin/env python
"""Synthesizability check and resource estimate of the dfx core with Yosys: the command line of
dfx.hw.synth (hw/synth.py), whose docstring and `--help` describe it."""

import sys

from dfx.hw.synth import main

if __name__ == "__main__":
    sys.exit(main())
