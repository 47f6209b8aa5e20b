"""Hardware target files: every target loads; bad files get one clear error naming file and field."""

import pytest

from dfx.arch.target import TARGET_DIR, load_target, load_target_file, target_names
from dfx.errors import TargetError


def test_all_targets_load_and_are_consistent():
    assert {"u280", "u280-dfx", "tiny"} <= set(target_names())
    for name in target_names():
        t = load_target(name)
        assert t.name == name
        assert t.tile_bytes == t.hbm.channels * t.port_bytes
    dfx = load_target("u280-dfx")
    assert (dfx.matrix.lanes, dfx.matrix.width, dfx.hbm.channels) == (16, 64, 32)
    assert dfx.kernel_hbm_gbps == pytest.approx(409.6)
    assert dfx.macs_per_cycle == 1024


def _write(tmp_path, text):
    p = tmp_path / "t.toml"
    p.write_text(text)
    return p


def _mutated(tmp_path, old, new):
    src = (TARGET_DIR / "tiny.toml").read_text()
    assert old in src
    return _write(tmp_path, src.replace(old, new, 1))


def test_missing_field(tmp_path):
    p = _mutated(tmp_path, "lanes = 4\n", "")
    with pytest.raises(TargetError, match=r"t\.toml: missing field matrix\.lanes"):
        load_target_file(p)


def test_missing_section(tmp_path):
    src = (TARGET_DIR / "tiny.toml").read_text()
    p = _write(tmp_path, src[: src.index("[ring]")])
    with pytest.raises(TargetError, match=r"missing section \[ring\]"):
        load_target_file(p)


def test_wrong_type(tmp_path):
    p = _mutated(tmp_path, "lanes = 4\n", 'lanes = "four"\n')
    with pytest.raises(TargetError, match=r"matrix\.lanes must be int"):
        load_target_file(p)


def test_inconsistent_tile_and_ports(tmp_path):
    p = _mutated(tmp_path, "port_bits = 128\n", "port_bits = 256\n")
    with pytest.raises(TargetError, match=r"hbm\.port_bits .* must equal one weight tile"):
        load_target_file(p)


def test_not_power_of_two(tmp_path):
    p = _mutated(tmp_path, "width = 8\nmul_latency", "width = 12\nmul_latency")
    with pytest.raises(TargetError, match=r"matrix\.width must be a power of two"):
        load_target_file(p)


def test_fp_latencies_below_the_pipelines_are_refused(tmp_path):
    """The FP pipelines have a minimum depth (arch.target ADD_LATENCY_MIN, MUL_LATENCY_MIN); a target
    asking for less is one line, not an RTL that does not elaborate."""
    p = _mutated(tmp_path, "add_latency = 7 ", "add_latency = 6 ")
    with pytest.raises(TargetError, match=r"matrix\.add_latency must be at least 7"):
        load_target_file(p)
    p = _mutated(tmp_path, "mul_latency = 5 ", "mul_latency = 4 ")
    with pytest.raises(TargetError, match=r"matrix\.mul_latency must be at least 5"):
        load_target_file(p)


def test_unknown_field_and_bad_toml(tmp_path):
    p = _mutated(tmp_path, "lanes = 4\n", "lanes = 4\nlames = 4\n")
    with pytest.raises(TargetError, match=r"unknown field matrix\.lames"):
        load_target_file(p)
    with pytest.raises(TargetError, match="not valid TOML"):
        load_target_file(_write(tmp_path, "name = \n"))
    with pytest.raises(TargetError, match="unknown target 'nope'"):
        load_target("nope")


def test_xclbin_keys_follow_the_hardware_sections_only():
    """The xclbin identity changes with a hardware field and not with a perf or host field."""
    import dataclasses

    from dfx.arch import kernel
    t = load_target("tiny")
    keys = kernel.xclbin_keys(t.as_dict())
    assert keys["dfx_target"] == "tiny" and len(keys["dfx_hw"]) == 16
    faster_host = dataclasses.replace(t, host=dataclasses.replace(t.host, pcie_gbps=t.host.pcie_gbps * 2))
    assert kernel.xclbin_keys(faster_host.as_dict()) == keys
    more_lanes = dataclasses.replace(t, matrix=dataclasses.replace(t.matrix, lanes=t.matrix.lanes * 2))
    assert kernel.xclbin_keys(more_lanes.as_dict())["dfx_hw"] != keys["dfx_hw"]
