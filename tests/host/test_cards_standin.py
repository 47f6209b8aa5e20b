"""The xrt and pynq backends (dfx.host.cards) on stand-ins for pyxrt and PYNQ 3.0.1 (no card, no
XRT here: tests/host/standins/ reproduce the real APIs' limits over the exact simulator).

What is checked: a generation through either backend gives the exact simulator's ids (N = 1, 4);
a 64-bit value passed whole as a pyxrt scalar fails, and the backend refuses what a C int cannot
carry; no register access; a timeout is a DeviceTimeout that leaves the card usable (the late run
is kept, not destroyed in flight); PYNQ moves only the bytes of a token's I/O per call (measured),
never reads CTRL (ap_done is clear-on-read, which the stand-in's scheduler needs); the number of
cards is checked.
"""

import gc
import sys
import time

import pytest

from dfx.arch import kernel
from dfx.arch.target import load_target
from dfx.compiler.bundle import Bundle
from dfx.errors import DeviceTimeout, DfxError
from dfx.host.runtime import Session
from standins.axlf import dfx_xclbin
from standins.cards import StandinCards
from standins.pynq_standin import make_pynq
from standins.pyxrt_standin import FATAL, make_pyxrt

NEW = 8


@pytest.fixture
def standin(monkeypatch, tmp_path):
    """standin(api, bundle, cards=None, **make_opts) -> (stand-in cards, xclbin path) with the
    stand-in module in sys.modules and an xclbin stamped for the bundle."""
    def make(api, bundle, ncards=None, **opts):
        b = Bundle(bundle)
        cards = StandinCards(load_target(b.manifest["target"]["name"]), ncards or b.n)
        mod = make_pyxrt(cards, **opts) if api == "xrt" else make_pynq(cards, **opts)
        monkeypatch.setitem(sys.modules, "pyxrt" if api == "xrt" else "pynq", mod)
        return cards, dfx_xclbin(tmp_path / "dfx_core.xclbin", kernel.xclbin_keys(b.manifest["target"]))
    return make


_SIM_IDS: dict = {}


def sim_ids(bundle, prompt, new=NEW):
    key = (str(bundle), tuple(prompt), new)
    if key not in _SIM_IDS:
        s = Session(bundle, backend="sim", mode="exact")
        _SIM_IDS[key] = s.generate(prompt, max_new_tokens=new, eos_token_id=None)
        s.close()
    return _SIM_IDS[key]


@pytest.mark.parametrize("n", [1, 4])
@pytest.mark.parametrize("api,opts", [("xrt", {}), ("xrt", {"legacy": True}), ("pynq", {}),
                                      ("pynq", {"ert": False})], ids=["pyxrt", "pyxrt-2.15", "pynq-ert", "pynq-sw"])
def test_standin_generation_gives_the_exact_simulators_ids(standin, tiny_bundle, tiny_prompt, n, api, opts):
    cards, xclbin = standin(api, tiny_bundle(n), **opts)
    s = Session(tiny_bundle(n), backend=api, xclbin=str(xclbin))
    assert s.generate(tiny_prompt, max_new_tokens=NEW, eos_token_id=None) == sim_ids(tiny_bundle(n), tiny_prompt)
    s.close()


@pytest.mark.parametrize("api", ["xrt", "pynq"])
def test_standin_u280_bundle_with_ddr_gives_the_exact_simulators_ids(standin, tiny_bundle, tiny_prompt, api):
    """A u280 bundle keeps its embedding tables in DDR: one more buffer, in DDR[0]."""
    b = tiny_bundle(1, "u280")
    cards, xclbin = standin(api, b)
    s = Session(b, backend=api, xclbin=str(xclbin))
    assert len(s.devices[0].ports) == cards.t.hbm.channels + 1
    assert s.generate(tiny_prompt, max_new_tokens=NEW, eos_token_id=None) == sim_ids(b, tiny_prompt)
    assert any(e[1] == "DDR[0]" for e in cards.sync_log[0])
    s.close()


def test_pyxrt_standin_scalars_are_c_ints_and_64bit_addresses_go_as_two_words(standin, tiny_bundle, tiny_prompt,
                                                                              monkeypatch):
    """pyxrt passes scalars as a C int: set_arg refuses 2^32, kernel(...) drops it silently. The
    kernel's scalars are all 32 bits (entry and status as two words each), the backend sets every
    word on every run as a C int, so an address past 2^31 and past 2^32 reaches the card whole."""
    cards, xclbin = standin("xrt", tiny_bundle(1))
    pyxrt = sys.modules["pyxrt"]
    assert all(a.bits == 32 for a in cards.args if a.kind == "scalar")
    s = Session(tiny_bundle(1), backend="xrt", xclbin=str(xclbin))
    dev = s.devices[0]
    entry = next(i for i, a in enumerate(cards.args) if a.name == "entry")
    r = pyxrt.run(dev.kernel)
    with pytest.raises(TypeError, match="incompatible function arguments"):
        r.set_arg(entry, 1 << 31)
    r.set_arg(entry, -1)  # the word 0xFFFFFFFF, as a C int
    assert not hasattr(dev.kernel, "read_register") and not hasattr(dev.kernel, "write_register")
    with pytest.raises(DfxError, match="no access to the kernel's registers"):
        dev.read_reg(kernel.REG_CTRL)
    card = s.bundle.cards[0]
    with pytest.raises(DfxError, match="does not fit 32 bits"):
        dev.set_args(ntok=1 << 32)
    with pytest.raises(DfxError, match="does not fit 64 bits"):
        dev.set_args(entry=1 << 64)
    # an entry with bit 31 and bit 32 set reaches the command's registers whole (the core then
    # finds no program there and says so through its status record)
    seen = []
    submit = cards.submit
    monkeypatch.setattr(cards, "submit", lambda c, regs: seen.append(bytes(regs)) or submit(c, regs))
    gen_entry = card["programs"]["generation"]["entry"]
    far = (3 << 31) + gen_entry
    with pytest.raises(DfxError):
        dev.set_args(entry=far, ntok=1, pos=0, core=0, ncores=1, status=card["io"]["status"])
        dev.start()
        dev.wait(10)
    assert cards.field(seen[-1], "entry") == far and cards.field(seen[-1], "status") == card["io"]["status"]
    # the kernel called with a word past 2^31: pyxrt.cpp swallows the failed cast and entry stays 0
    # (the summarization program, here with ntok 1: harmless); the backend never calls it so
    assert gen_entry != 0 == card["programs"]["summarization"]["entry"]
    vals = {"entry": (1 << 31) + gen_entry, "entry_hi": 0, "ntok": 1, "pos": 0, "core": 0, "ncores": 1,
            "status": card["io"]["status"], "status_hi": 0}
    run = dev.kernel(*(dev.bos[int(a.name[3:])] if a.kind == "pointer" else vals[a.name] for a in cards.args))
    assert cards.field(run.cmd.regs, "entry") == 0
    assert run.wait(0) == pyxrt.ert_cmd_state.ERT_CMD_STATE_COMPLETED
    # the card is still usable by the backend afterwards
    assert s.generate(tiny_prompt, max_new_tokens=4, eos_token_id=None) == sim_ids(tiny_bundle(1), tiny_prompt, 4)
    s.close()


@pytest.mark.parametrize("n", [1, 4])
@pytest.mark.parametrize("api", ["xrt", "pynq"])
def test_standin_timeout_leaves_the_card_usable(standin, tiny_bundle, tiny_prompt, api, n):
    cards, xclbin = standin(api, tiny_bundle(n))
    s = Session(tiny_bundle(n), backend=api, xclbin=str(xclbin), timeout_s=0.3)
    late = n - 1
    cards.latency[late] = 0.5  # this card finishes 0.5 s after the ring ran: past the 0.3 s timeout
    with pytest.raises(DeviceTimeout, match=f"card {late} did not finish within 0.3 s"):
        s.generate(tiny_prompt, max_new_tokens=NEW, eos_token_id=None)
    cards.latency[late] = 0.0
    # the next call waits for the late run (up to the timeout again), then runs as ever
    assert s.generate(tiny_prompt, max_new_tokens=NEW, eos_token_id=None) == sim_ids(tiny_bundle(n), tiny_prompt)
    # a card that stays late past that is named, and usable once its run has ended
    cards.latency[late] = 2.0
    with pytest.raises(DeviceTimeout):
        s.generate(tiny_prompt, max_new_tokens=2, eos_token_id=None)
    cards.latency[late] = 0.0
    with pytest.raises(DeviceTimeout, match=f"card {late} still runs a call that timed out"):
        s.generate(tiny_prompt, max_new_tokens=2, eos_token_id=None)
    time.sleep(2.0)
    assert s.generate(tiny_prompt, max_new_tokens=NEW, eos_token_id=None) == sim_ids(tiny_bundle(n), tiny_prompt)
    s.close()
    gc.collect()
    assert FATAL == []  # no xrt::run was destroyed while its command ran (XRT would abort the process)


@pytest.mark.parametrize("n", [1, 4])
def test_pynq_standin_per_token_sync_bytes_are_small(standin, tiny_bundle, tiny_prompt, n):
    """Per generated token each card moves its ids, a cleared and a read status record, its logits
    slice and the argmax: measured on the stand-in's syncs, next to one whole channel buffer."""
    cards, xclbin = standin("pynq", tiny_bundle(n))
    s = Session(tiny_bundle(n), backend="pynq", xclbin=str(xclbin))
    prompt = tiny_prompt[:10]  # one prompt call, then NEW - 1 token calls
    s.generate(prompt, max_new_tokens=1, eos_token_id=None)
    marks = [len(cards.sync_log[j]) for j in range(n)]
    s.generate(prompt, max_new_tokens=NEW, eos_token_id=None)
    for j in range(n):
        v0, v1 = s.bundle.cards[j]["io"]["vocab"]
        summ = 4 * len(prompt) + 2 * kernel.STATUS_BYTES + 2 * (v1 - v0) + 6
        token = 4 + 2 * kernel.STATUS_BYTES + 2 * (v1 - v0) + 6
        assert cards.synced_bytes(j, marks[j]) == summ + (NEW - 1) * token
    # what PYNQ's whole-buffer sync would move instead, for one channel buffer
    buf = s.devices[0].bufs[0]
    mark = len(cards.sync_log[0])
    buf.sync_from_device()
    assert cards.synced_bytes(0, mark) == buf.nbytes > 10 * token
    print(f"\nN={n}: {token} bytes synced per card per generated token; one channel buffer is {buf.nbytes}")
    s.close()


def test_pynq_standin_reading_ap_done_steals_completion_from_the_scheduler(standin, tiny_bundle, tiny_prompt):
    """Why the backend waits on the handle: a host read of CTRL takes ap_done (clear-on-read) and the
    stand-in's ERT never sees the command complete, as on a card."""
    cards, xclbin = standin("pynq", tiny_bundle(1))
    s = Session(tiny_bundle(1), backend="pynq", xclbin=str(xclbin))
    dev = s.devices[0]
    card = s.bundle.cards[0]
    dev.write_mem("hbm", card["io"]["ids"], bytes(4))
    dev.set_args(entry=card["programs"]["generation"]["entry"], ntok=1, pos=0, core=0, ncores=1,
                 status=card["io"]["status"])
    dev.start()
    time.sleep(0.01)
    assert dev.ip.read(kernel.REG_CTRL) & kernel.AP_DONE  # the host took ap_done ...
    dev.ip.device._handle_events(50)
    assert not dev.handle.done  # ... and the scheduler never completes the command
    dev.pending = False  # (the stand-in's command is stuck: drop it)
    s.close()


def test_standin_too_few_cards_is_one_line(standin, tiny_bundle):
    _cards, xclbin = standin("xrt", tiny_bundle(4), ncards=2)
    with pytest.raises(DfxError, match=r"the bundle needs 4 card\(s\); xrt finds 2"):
        Session(tiny_bundle(4), backend="xrt", xclbin=str(xclbin))
