"""The Python API of README.md: its example runs as written, with Hugging Face's semantics."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "models" / "demo-gpt2"


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_import_dfx_is_light():
    code = "import sys, dfx; print(sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'torch')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_readme_example_runs_and_matches_hf(tmp_path, monkeypatch, capsys):
    torch = pytest.importorskip("torch")
    from transformers import GPT2LMHeadModel

    (tmp_path / "models").symlink_to(ROOT / "models")
    monkeypatch.chdir(tmp_path)
    ns = {}
    exec(compile(readme_example(), "README.md", "exec"), ns)
    prompt, ids = ns["prompt"], ns["ids"]
    assert (tmp_path / "demo-2fpga.dfx" / "manifest.json").exists()
    assert ns["bundle"].n == 2
    m = GPT2LMHeadModel.from_pretrained(DEMO, dtype=torch.float32, attn_implementation="eager").eval()
    with torch.no_grad():
        ref = m.generate(torch.tensor([prompt]), max_new_tokens=8, do_sample=False, pad_token_id=0)[0].tolist()
    assert ids == ref
    assert capsys.readouterr().out == ns["tok"].decode(ids[len(prompt):]) + "\n"


def test_generate_is_stream_with_hf_names(tmp_path):
    import dfx

    bundle = dfx.compile(DEMO, fpgas=1, out=tmp_path / "b")
    s = dfx.Session(bundle, mode="fast")
    prompt = [464, 2068, 7586, 21831]
    greedy = s.generate(prompt, max_new_tokens=5, eos_token_id=None)
    assert greedy[:4] == prompt and len(greedy) == 9
    assert greedy == s.generate(np.array([prompt]), max_new_tokens=5, eos_token_id=None)  # one row, batch 1
    assert greedy[4:] == [st.token for st in s.stream(prompt, max_new_tokens=5, eos_token_id=None)]
    sampled = s.generate(prompt, max_new_tokens=5, do_sample=True, top_k=0, seed=3, eos_token_id=None)
    assert sampled == s.generate(prompt, max_new_tokens=5, do_sample=True, top_k=0, seed=3, eos_token_id=None)
    # greedy ignores temperature, as HF does; eos_token_id stops after emitting it
    assert s.generate(prompt, max_new_tokens=5, temperature=0.01, eos_token_id=None) == greedy
    assert s.generate(prompt, max_new_tokens=5, eos_token_id=greedy[5]) == greedy[:6]
    with pytest.raises(dfx.DfxError, match="input_ids must be token ids"):
        s.generate([[1, 2], [3, 4]])
    with pytest.raises(dfx.DfxError, match="do_sample needs a temperature > 0"):
        s.generate(prompt, do_sample=True, temperature=0)
