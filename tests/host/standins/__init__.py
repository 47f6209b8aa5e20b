"""Stand-ins for the card software dfx cannot run here (no U280, no XRT): fake `pyxrt` and
`pynq` modules with the real APIs' limits, over the exact simulator (cards.py), and an xclbin
writer (axlf.py). Tests put a stand-in in sys.modules; every test that does says "standin" in
its name."""
