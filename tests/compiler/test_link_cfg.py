"""The bundle's Vitis link config (dfx.compiler.vitis): memory ports, placement and the Aurora ring.

Read back as v++ reads a config: `[connectivity]` then key=value lines. The Aurora lines are
compared with pc2/Aurora-HLS's aurora_flow_test_hw.cfg (kernel names, ports, SLR2, the QSFP
`connect=` lines); the ring direction with the cabling card i QSFP1 -> card i+1 QSFP0.
"""

from __future__ import annotations

import re

import pytest

from dfx.arch.target import load_target
from dfx.compiler.vitis import link_config

TARGETS = ["tiny", "u280-dfx", "u280"]


class _NoRegions:
    regions: dict = {}


def parse(cfg: str) -> dict[str, list[str]]:
    """key -> values, in order, of the [connectivity] section and of the top-level options before
    any section (v++ command-line options: only kernel_frequency); refuses anything else."""
    out: dict[str, list[str]] = {}
    section = None
    for ln in cfg.splitlines():
        ln = ln.strip()
        if not ln or ln.startswith("#"):
            continue
        if ln.startswith("["):
            section = ln
            continue
        if section is None:
            k, v = ln.split("=", 1)
            assert k == "kernel_frequency", ln
            out.setdefault(k, []).append(v)
            continue
        assert section == "[connectivity]", ln
        k, v = ln.split("=", 1)
        assert k in ("nk", "sp", "slr", "stream_connect", "connect"), ln
        out.setdefault(k, []).append(v)
    return out


def streams(c: dict) -> dict[str, str]:
    """source port -> sink port of every stream_connect; no port used twice."""
    pairs = [v.split(":") for v in c["stream_connect"]]
    assert all(len(p) == 2 for p in pairs)
    src, dst = [p[0] for p in pairs], [p[1] for p in pairs]
    assert len(set(src)) == len(src) and len(set(dst)) == len(dst)
    return dict(pairs)


@pytest.mark.parametrize("target", TARGETS)
def test_the_kernel_clock_is_the_targets(target, tmp_path):
    """clock 0 (ap_clk) at the target's kernel_mhz, not the platform's default 300 MHz; a target
    file with another clock gives another line."""
    t = load_target(target)
    assert parse(link_config(t, _NoRegions, 2))["kernel_frequency"] == [f"0:{t.clock.kernel_mhz:g}"]
    import dataclasses
    fast = dataclasses.replace(t, clock=dataclasses.replace(t.clock, kernel_mhz=250.0))
    assert parse(link_config(fast, _NoRegions, 2))["kernel_frequency"] == ["0:250"]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("n", [1, 4])
def test_every_channel_has_its_port_and_nothing_pins_the_core(target, n):
    t = load_target(target)
    c = parse(link_config(t, _NoRegions, n))
    want = [f"dfx_core_1.m_axi_hbm{i:02d}:HBM[{i}]" for i in range(t.hbm.channels)]
    assert c["sp"] == want + (["dfx_core_1.m_axi_ddr:DDR[0]"] if t.ddr.present else [])
    assert not any(s.startswith("dfx_core_1:") for s in c.get("slr", []))


@pytest.mark.parametrize("target", TARGETS)
def test_four_cards_ring_over_aurora(target):
    c = parse(link_config(load_target(target), _NoRegions, 4))
    assert c["nk"] == ["dfx_core:1:dfx_core_1", "dfx_ring_tx:1:dfx_ring_tx_1", "dfx_ring_rx:1:dfx_ring_rx_1",
                       "aurora_flow_0:1:aurora_flow_0", "aurora_flow_1:1:aurora_flow_1"]
    assert sorted(c["slr"]) == ["aurora_flow_0:SLR2", "aurora_flow_1:SLR2", "dfx_ring_rx_1:SLR2", "dfx_ring_tx_1:SLR2"]
    s = streams(c)
    # out: core -> tx adapter -> QSFP1 (to card i+1); in: QSFP0 (from card i-1) -> rx adapter -> core
    assert s["dfx_core_1.m_axis_ring"] == "dfx_ring_tx_1.s_axis_ring"
    assert s["dfx_ring_tx_1.m_axis_link"] == "aurora_flow_1.tx_axis"
    assert s["aurora_flow_0.rx_axis"] == "dfx_ring_rx_1.s_axis_link"
    assert s["dfx_ring_rx_1.m_axis_ring"] == "dfx_core_1.s_axis_ring"
    # the unused directions of both QSFP ports are tied off, so every Aurora stream is connected
    assert s["dfx_ring_tx_1.m_axis_idle"] == "aurora_flow_0.tx_axis"
    assert s["aurora_flow_1.rx_axis"] == "dfx_ring_rx_1.s_axis_drain"
    assert len(s) == 6
    # aurora_flow_test_hw.cfg's QSFP lines, one set per port
    for i in (0, 1):
        assert f"io_clk_qsfp{i}_refclkb_00:aurora_flow_{i}/gt_refclk_{i}" in c["connect"]
        assert f"aurora_flow_{i}/gt_port:io_gt_qsfp{i}_00" in c["connect"]
        assert f"aurora_flow_{i}/init_clk:ii_level0_wire/ulp_m_aclk_freerun_ref_00" in c["connect"]
    assert len(c["connect"]) == 6


@pytest.mark.parametrize("target", TARGETS)
def test_one_card_loops_the_ring_on_the_card_without_aurora(target):
    cfg = link_config(load_target(target), _NoRegions, 1)
    c = parse(cfg)
    assert "aurora" not in cfg and "connect" not in c and "slr" not in c
    assert c["nk"] == ["dfx_core:1:dfx_core_1", "dfx_ring_tx:1:dfx_ring_tx_1", "dfx_ring_rx:1:dfx_ring_rx_1"]
    s = streams(c)
    assert s == {"dfx_core_1.m_axis_ring": "dfx_ring_tx_1.s_axis_ring",
                 "dfx_ring_rx_1.m_axis_ring": "dfx_core_1.s_axis_ring",
                 "dfx_ring_tx_1.m_axis_link": "dfx_ring_rx_1.s_axis_link",
                 "dfx_ring_tx_1.m_axis_idle": "dfx_ring_rx_1.s_axis_drain"}
    # following the streams from the core's output leads back to its input
    port, hops = "dfx_core_1.m_axis_ring", 0
    while port != "dfx_core_1.s_axis_ring":
        port = s[port]
        port = {"dfx_ring_tx_1.s_axis_ring": "dfx_ring_tx_1.m_axis_link",
                "dfx_ring_rx_1.s_axis_link": "dfx_ring_rx_1.m_axis_ring"}.get(port, port)
        hops += 1
        assert hops < 5


def test_the_memory_map_comment_names_every_hbm_region(tmp_path):
    torch = pytest.importorskip("torch")
    from transformers import GPT2Config, GPT2LMHeadModel
    from dfx.compiler.bundle import Bundle
    from dfx.compiler.driver import compile_model
    with torch.random.fork_rng():
        torch.manual_seed(2)
        GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=64, n_head=2, n_positions=32, vocab_size=64,
                                   bos_token_id=0, eos_token_id=0)).save_pretrained(tmp_path / "m")
    compile_model(str(tmp_path / "m"), 2, tmp_path / "b", target="tiny", max_seq=32, progress=False)
    cfg = (tmp_path / "b" / "link.cfg").read_text()
    regions = [r["name"] for r in Bundle(tmp_path / "b").cards[0]["regions"] if r["space"] == "hbm"]
    named = set(re.findall(r"^#   (\S+) +flat 0x", cfg, re.M))
    assert regions and set(regions) == named
    assert "2 card(s)" in cfg and "aurora_flow_1.tx_axis" in cfg
