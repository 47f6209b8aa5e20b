#!/usr/bin/env python
"""Static timing estimate of the dfx core (Yosys netlist, per-cell delays of an UltraScale+ -2 part):
the command line of dfx.hw.timing (hw/timing.py). `--help` lists the options; docs/hw.md, "Timing
estimate", gives the method, its limits and the tables."""

import sys

from dfx.hw.timing import main

if __name__ == "__main__":
    sys.exit(main())
