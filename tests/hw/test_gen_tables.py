"""The RTL's ROMs and constants are generated from dfx.sim.numerics and must be current."""

from dfx.hw import gen_tables


def test_generated_files_are_current():
    assert gen_tables.main(["--check"]) == 0, "run `python -m dfx.hw.gen_tables`"
