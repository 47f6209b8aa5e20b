"""Model frontends: presets, random weights, HF checkpoint folders, ONNX graphs, load_model."""

import json
import shutil

import numpy as np
import pytest

from dfx.compiler import frontend, presets
from dfx.compiler.hf import load_hf_folder
from dfx.compiler.model import GPT2Config, array_weights, canonical_shapes
from dfx.compiler.presets import PRESETS, random_weights
from dfx.errors import ModelError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

TINY = dict(n_layer=2, n_embd=64, n_head=4, vocab_size=384, n_positions=32)


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A random tiny GPT2LMHeadModel saved with save_pretrained, every parameter non-trivial
    (so biases are non-zero and no two initializers are equal), and its state dict in numpy."""
    cfg = transformers.GPT2Config(**TINY, use_cache=False, bos_token_id=0, eos_token_id=0)
    with torch.random.fork_rng(), torch.no_grad():  # its own seed; the global generator is left as it was
        torch.manual_seed(1234)
        model = transformers.GPT2LMHeadModel(cfg).eval()
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    folder = tmp_path_factory.mktemp("tiny_hf")
    model.save_pretrained(folder)
    sd = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    return folder, model, sd


def hf_expected(sd):
    """Canonical name -> array, from the HF model's own state dict."""
    out = {k[len("transformer."):]: v for k, v in sd.items() if k.startswith("transformer.")
           and not k.endswith((".attn.bias", ".attn.masked_bias"))}
    out["wte"], out["wpe"] = out.pop("wte.weight"), out.pop("wpe.weight")
    return out


@pytest.fixture(scope="module")
def exports(tiny, tmp_path_factory):
    """Real torch.onnx.export (dynamo) files of the tiny model: eager and sdpa, static shapes
    (position embedding and mask folded) and dynamic shapes (mask subgraph kept)."""
    import copy
    import warnings

    folder, model, _ = tiny
    out = tmp_path_factory.mktemp("onnx")
    n_pos = TINY["n_positions"]
    files = {}
    plans = {
        "eager_full": ("eager", n_pos, False),  # static, every position row kept (folded)
        "sdpa_dyn": ("sdpa", 8, True),  # dynamic batch/seq: wpe initializer + mask subgraph
        "eager_dyn": ("eager", 8, True),
        "sdpa_short": ("sdpa", 8, False),  # static 8 tokens: only 8 position rows survive
    }
    for name, (impl, seq, dynamic) in plans.items():
        m = copy.deepcopy(model)
        m.config._attn_implementation = impl
        kw = {}
        if dynamic:
            kw["dynamic_shapes"] = {"input_ids": {0: torch.export.Dim("batch"),
                                                  1: torch.export.Dim("seq", max=n_pos)}}
        path = out / f"{name}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(m, (torch.zeros(1, seq, dtype=torch.long),), str(path), **kw)
        files[name] = path
    return files


# ---------------------------------------------------------------------------- IR and presets
EXPECTED_PARAMS = {"gpt2": 124_439_808, "gpt2-medium": 354_823_168, "gpt2-large": 774_030_080,
                   "gpt2-xl": 1_557_611_200}


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_shapes_and_params(name):
    c = PRESETS[name]
    assert c.head_dim == 64 and c.d_ff == 4 * c.n_embd
    assert (c.vocab_size, c.n_positions, c.layer_norm_epsilon) == (50257, 1024, 1e-5)
    shapes = canonical_shapes(c)
    assert len(shapes) == 2 + 12 * c.n_layer + 2
    assert sum(int(np.prod(s)) for s in shapes.values()) == c.n_params
    assert c.fp16_bytes == 2 * c.n_params
    # the same count from Hugging Face's own module, built on the meta device (no memory)
    with torch.device("meta"):
        hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(
            n_layer=c.n_layer, n_embd=c.n_embd, n_head=c.n_head))
    assert sum(p.numel() for p in hf.parameters()) == c.n_params
    if name in EXPECTED_PARAMS:
        assert c.n_params == EXPECTED_PARAMS[name]


def test_preset_param_counts_headline():
    assert abs(PRESETS["gpt2"].n_params / 1e6 - 124.4) < 0.1
    assert abs(PRESETS["gpt2-xl"].n_params / 1e9 - 1.558) < 0.001
    assert (PRESETS["dfx-1.5b"].n_layer, PRESETS["dfx-1.5b"].n_embd, PRESETS["dfx-1.5b"].n_head) == (48, 1536, 24)


@pytest.mark.parametrize("kw, match", [
    (dict(n_layer=2, n_embd=65, n_head=4), "not a multiple of n_head"),
    (dict(n_layer=0, n_embd=64, n_head=4), "n_layer must be a positive integer"),
    (dict(n_layer=2, n_embd=64, n_head=4, layer_norm_epsilon=0.0), "layer_norm_epsilon"),
    (dict(n_layer=2, n_embd=64, n_head=4, activation="relu"), "activation"),
    (dict(n_layer=2**63, n_embd=64, n_head=4), r"n_layer 9223372036854775808 is more than dfx handles \(1024\)"),
])
def test_config_validation(kw, match):
    with pytest.raises(ModelError, match=match):
        GPT2Config(**kw)


def test_weights_unknown_name_and_array_weights_checks():
    c = GPT2Config(**TINY)
    w = random_weights(c, 0)
    with pytest.raises(ModelError, match="no tensor named 'lm_head.weight'"):
        w.get("lm_head.weight")
    arrays = {n: w.get(n) for n in w.names()}
    arrays["h.1.mlp.c_fc.bias"] = np.zeros(5, np.float32)
    with pytest.raises(ModelError, match=r"'h.1.mlp.c_fc.bias' has shape \[5\], expected \[256\]"):
        array_weights(c, arrays)


def test_random_weights_deterministic_and_order_independent():
    c = GPT2Config(**TINY)
    a, b = random_weights(c, seed=7), random_weights(c, seed=7)
    names = a.names()
    first = {n: a.get_f16(n) for n in names}
    second = {n: b.get_f16(n) for n in reversed(names)}
    for n in names:
        assert first[n].dtype == np.float16 and first[n].shape == a.shape(n)
        assert np.array_equal(first[n].view(np.uint16), second[n].view(np.uint16)), n
        assert np.array_equal(a.get(n), first[n].astype(np.float32))
    other = random_weights(c, seed=8)
    assert not np.array_equal(other.get_f16("wte"), first["wte"])
    assert np.all(first["h.0.ln_1.weight"] == 1) and np.all(first["h.0.ln_1.bias"] == 0)
    assert np.all(first["h.1.attn.c_attn.bias"] == 0)
    assert abs(float(first["wte"].astype(np.float32).std()) - 0.02) < 0.001
    proj = first["h.0.mlp.c_proj.weight"].astype(np.float32).std()
    assert abs(proj - 0.02 / np.sqrt(2 * c.n_layer)) < 0.001


def test_random_weights_std_knobs():
    c = GPT2Config(**TINY)
    w = random_weights(c, 1, std=0.1, wte_std=0.5, bias_std=0.01, ln_std=0.1)
    assert abs(float(w.get("wte").std()) - 0.5) < 0.02
    assert abs(float(w.get("h.0.attn.c_attn.weight").std()) - 0.1) < 0.005
    ln = w.get("h.1.ln_2.weight")
    assert 0.9 < ln.mean() < 1.1 and ln.std() > 0.05
    assert w.get("ln_f.bias").std() > 0.05
    assert w.get("h.0.mlp.c_fc.bias").std() > 0.005
    assert w.source["kind"] == "random" and w.source["seed"] == 1
    json.dumps(w.source)
    with pytest.raises(ModelError, match="std must be a finite number"):
        random_weights(c, 0, std=-1.0)


def test_random_gpt2_preset_is_fp16_and_lazy():
    m = frontend.load_model("gpt2", random_weights=True, seed=3)
    assert m.config == PRESETS["gpt2"]
    wte = m.weights.get_f16("wte")
    assert wte.dtype == np.float16 and wte.shape == (50257, 768)
    assert np.array_equal(wte, frontend.load_model("gpt2", random_weights=True, seed=3).weights.get_f16("wte"))


def test_preset_without_cache_or_without_release(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    with pytest.raises(ModelError, match="no weights for preset 'gpt2'.*--random-weights"):
        frontend.load_model("gpt2")
    with pytest.raises(ModelError, match="'dfx-1.5b' has no released weights; use --random-weights"):
        frontend.load_model("dfx-1.5b")


def test_preset_from_local_hf_cache(tiny, tmp_path, monkeypatch):
    """A snapshot in the HF cache layout is found (refs/main first); its config must match."""
    folder, _, sd = tiny
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    snap = tmp_path / "hub" / "models--openai-community--gpt2" / "snapshots" / "abc123"
    shutil.copytree(folder, snap)
    (snap.parent.parent / "refs").mkdir()
    (snap.parent.parent / "refs" / "main").write_text("abc123")
    assert presets.find_cached_checkpoint("gpt2") == snap
    with pytest.raises(ModelError, match="is not gpt2: it has 2 layers, d 64, 4 heads"):
        frontend.load_model("gpt2")
    # a cache that really holds a model of the preset's shape loads (make gpt2's config tiny)
    monkeypatch.setitem(PRESETS, "gpt2", GPT2Config(**TINY, name="gpt2"))
    m = frontend.load_model("gpt2")
    assert m.config.name == "gpt2" and m.weights.source["preset"] == "gpt2"
    assert np.array_equal(m.weights.get("wte"), sd["transformer.wte.weight"])


# ---------------------------------------------------------------------------- HF folders
def assert_same_as_hf(model, sd):
    exp = hf_expected(sd)
    assert set(exp) == set(model.weights.names())
    for n in model.weights.names():
        got = model.weights.get(n)
        assert got.dtype == np.float32 and got.shape == exp[n].shape, n
        assert np.array_equal(got.view(np.uint32), exp[n].view(np.uint32)), n


def test_hf_folder_round_trip(tiny):
    folder, _, sd = tiny
    m = load_hf_folder(folder)
    assert m.config == GPT2Config(**TINY, name=folder.name)
    assert m.weights.source["kind"] == "hf" and m.weights.source["weights_file"] == "model.safetensors"
    assert_same_as_hf(m, sd)
    # canonical layout is HF Conv1D (in, out): c_attn is (d, 3d)
    assert m.weights.shape("h.0.attn.c_attn.weight") == (64, 192)
    f16 = m.weights.get_f16("h.1.mlp.c_proj.weight")
    assert f16.dtype == np.float16 and np.array_equal(f16, sd["transformer.h.1.mlp.c_proj.weight"].astype(np.float16))


def _copy_config(src, dst):
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "config.json", dst / "config.json")


def test_pytorch_model_bin(tiny, tmp_path):
    folder, model, sd = tiny
    _copy_config(folder, tmp_path)
    state = model.state_dict()  # includes lm_head.weight (tied, equal to wte)
    assert "lm_head.weight" in state
    torch.save(state, tmp_path / "pytorch_model.bin")
    m = load_hf_folder(tmp_path)
    assert m.weights.source["weights_file"] == "pytorch_model.bin"
    assert_same_as_hf(m, sd)
    # an untied head is refused
    state = {k: v.clone() for k, v in state.items()}
    state["lm_head.weight"][0, 0] += 1.0
    torch.save(state, tmp_path / "pytorch_model.bin")
    with pytest.raises(ModelError, match="lm_head.weight differs from wte"):
        load_hf_folder(tmp_path).weights.get("wte")  # checked when wte is read, after the capacity check


@pytest.mark.parametrize("prefix", ["", "transformer."])
def test_prefix_both_ways(tiny, tmp_path, prefix):
    from safetensors.numpy import save_file

    folder, _, sd = tiny
    _copy_config(folder, tmp_path)
    tensors = {prefix + k[len("transformer."):]: np.ascontiguousarray(v) for k, v in sd.items()
               if k.startswith("transformer.")}
    assert (prefix + "wte.weight") in tensors and (prefix + "h.0.ln_1.weight") in tensors
    tensors[prefix + "h.0.attn.bias"] = np.tril(np.ones((4, 4), np.float32))  # old mask buffer: ignored
    save_file(tensors, str(tmp_path / "model.safetensors"))
    assert_same_as_hf(load_hf_folder(tmp_path), sd)


def test_truncated_safetensors(tiny, tmp_path):
    folder, _, _ = tiny
    _copy_config(folder, tmp_path)
    data = (folder / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match=r"cannot read .*model.safetensors: .*truncated or corrupted"):
        load_hf_folder(tmp_path).weights.get("wte")  # checked when wte is read, after the capacity check


def _save(tmp_path, folder, tensors):
    from safetensors.numpy import save_file

    _copy_config(folder, tmp_path)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp_path / "model.safetensors"))


def test_missing_tensor(tiny, tmp_path):
    folder, _, sd = tiny
    t = dict(sd)
    del t["transformer.h.1.mlp.c_fc.bias"]
    _save(tmp_path, folder, t)
    with pytest.raises(ModelError, match=r"missing tensor 'h.1.mlp.c_fc.bias'"):
        load_hf_folder(tmp_path).weights.get("wte")  # checked when wte is read, after the capacity check


def test_wrong_shape(tiny, tmp_path):
    folder, _, sd = tiny
    t = dict(sd)
    t["transformer.h.0.attn.c_attn.weight"] = sd["transformer.h.0.attn.c_attn.weight"].T
    _save(tmp_path, folder, t)
    with pytest.raises(ModelError, match=r"'h.0.attn.c_attn.weight' has shape \[192, 64\], expected \[64, 192\]"):
        load_hf_folder(tmp_path).weights.get("wte")  # checked when wte is read, after the capacity check


def test_unexpected_tensor(tiny, tmp_path):
    folder, _, sd = tiny
    t = dict(sd)
    t["transformer.h.2.ln_1.weight"] = np.ones(64, np.float32)
    _save(tmp_path, folder, t)
    with pytest.raises(ModelError, match=r"unexpected tensor 'transformer.h.2.ln_1.weight'"):
        load_hf_folder(tmp_path).weights.get("wte")  # checked when wte is read, after the capacity check


def test_folder_errors(tiny, tmp_path):
    folder, _, _ = tiny
    with pytest.raises(ModelError, match="no such checkpoint folder"):
        load_hf_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        load_hf_folder(tmp_path / "empty")
    _copy_config(folder, tmp_path / "noweights")
    with pytest.raises(ModelError, match="no weights file"):
        load_hf_folder(tmp_path / "noweights")
    cfg = json.loads((folder / "config.json").read_text())
    for key, val, match in [("activation_function", "relu", "activation_function 'relu' is not supported"),
                            ("model_type", "llama", "model_type is 'llama'"),
                            ("scale_attn_by_inverse_layer_idx", True, "scale_attn_by_inverse_layer_idx"),
                            ("activation_function", ["gelu"], r"activation_function \['gelu'\] is not supported"),
                            ("layer_norm_epsilon", "small", "layer_norm_epsilon must be a number, got 'small'")]:
        bad = tmp_path / f"bad_{key}_{type(val).__name__}"
        shutil.copytree(folder, bad)
        (bad / "config.json").write_text(json.dumps({**cfg, key: val}))
        with pytest.raises(ModelError, match=match):
            load_hf_folder(bad)
    ok = tmp_path / "pytorch_tanh"
    shutil.copytree(folder, ok)
    (ok / "config.json").write_text(json.dumps({**cfg, "activation_function": "gelu_pytorch_tanh"}))
    assert load_hf_folder(ok).config.activation == "gelu_new"


# ---------------------------------------------------------------------------- ONNX
def test_export_op_sets_are_known(exports):
    """The exports really contain what the frontend claims to handle."""
    from dfx.compiler.onnx_frontend import KNOWN_OPS

    ops = {k: {n.op_type for n in onnx.load(str(p), load_external_data=False).graph.node}
           for k, p in exports.items()}
    assert all(o <= KNOWN_OPS for o in ops.values()), ops
    assert {"Range", "CumSum", "LessOrEqual", "Where"} <= ops["eager_dyn"]  # mask subgraph
    assert {"IsNaN", "Where"} <= ops["sdpa_short"]


@pytest.mark.parametrize("name", ["eager_full", "sdpa_dyn", "eager_dyn"])
def test_onnx_equals_hf_folder(tiny, exports, name):
    from dfx.compiler.onnx_frontend import load_onnx

    folder, _, sd = tiny
    hf = load_hf_folder(folder)
    ox = load_onnx(exports[name], name=hf.config.name)
    assert ox.config == hf.config
    assert ox.weights.names() == hf.weights.names()
    for n in hf.weights.names():
        a, b = ox.weights.get(n), hf.weights.get(n)
        assert a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32)), n
    assert ox.weights.source["wpe"] == ("folded" if name == "eager_full" else "initializer")


def test_onnx_static_short_export_keeps_only_exported_positions(tiny, exports):
    from dfx.compiler.onnx_frontend import load_onnx

    _, _, sd = tiny
    m = load_onnx(exports["sdpa_short"])
    assert m.config.n_positions == 8 and m.weights.source["wpe"] == "folded"
    assert np.array_equal(m.weights.get("wpe"), sd["transformer.wpe.weight"][:8])
    assert np.array_equal(m.weights.get("h.1.attn.c_attn.weight"), sd["transformer.h.1.attn.c_attn.weight"])


def test_onnx_external_data(tiny, exports, tmp_path):
    from dfx.compiler.onnx_frontend import load_onnx

    _, _, sd = tiny
    proto = onnx.load(str(exports["eager_dyn"]))
    onnx.save_model(proto, str(tmp_path / "ext.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="ext.data", size_threshold=0)
    m = load_onnx(tmp_path / "ext.onnx")
    w = m.weights.get("h.0.mlp.c_fc.weight")
    assert np.array_equal(w, sd["transformer.h.0.mlp.c_fc.weight"])
    # found by tests/fuzzing.py: external data names only files next to the model, and bad
    # offsets, data types and sizes are one-line errors
    for key, value, match in [("location", "/etc/passwd", "location '/etc/passwd' is not a file next to the model"),
                              ("location", "../ext.data", "is not a file next to the model"),
                              ("offset", "-64", "negative external data offset"),
                              ("offset", "abc", "offset/length are not integers")]:
        bad = onnx.load(str(tmp_path / "ext.onnx"), load_external_data=False)
        t = [t for t in bad.graph.initializer if t.name.endswith("h.0.mlp.c_fc.weight")][0]
        [e for e in t.external_data if e.key == key][0].value = value
        onnx.save_model(bad, str(tmp_path / "bad.onnx"))
        with pytest.raises(ModelError, match=match):
            load_onnx(tmp_path / "bad.onnx").weights.get("h.0.mlp.c_fc.weight")
    t.data_type = 0
    onnx.save_model(bad, str(tmp_path / "bad.onnx"))
    with pytest.raises(ModelError, match="data type 0 is not a tensor type dfx reads"):
        load_onnx(tmp_path / "bad.onnx").weights.get("h.0.mlp.c_fc.weight")
    (tmp_path / "ext.data").write_bytes((tmp_path / "ext.data").read_bytes()[:100])
    with pytest.raises(ModelError, match="truncated"):
        load_onnx(tmp_path / "ext.onnx").weights.get("h.1.mlp.c_fc.weight")


def test_onnx_unsupported_op(exports, tmp_path):
    from dfx.compiler.onnx_frontend import load_onnx

    proto = onnx.load(str(exports["sdpa_dyn"]))
    node = [n for n in proto.graph.node if n.op_type == "Softmax"][1]
    node.op_type = "FancySoftmax"
    onnx.save_model(proto, str(tmp_path / "bogus.onnx"))
    with pytest.raises(ModelError, match=rf"unsupported ONNX op 'FancySoftmax' at node '{node.name}'"):
        load_onnx(tmp_path / "bogus.onnx")


def test_onnx_not_gpt2(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    from dfx.compiler.onnx_frontend import load_onnx

    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [w])
    onnx.save_model(helper.make_model(g), str(tmp_path / "mm.onnx"))
    with pytest.raises(ModelError, match="not a GPT-2 LM head: its first input 'x' is not integer token ids"):
        load_onnx(tmp_path / "mm.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelError, match="not a readable ONNX model"):
        load_onnx(tmp_path / "junk.onnx")


def test_onnx_untied_head_refused(exports, tmp_path):
    from onnx import numpy_helper

    from dfx.compiler.onnx_frontend import load_onnx

    proto = onnx.load(str(exports["eager_full"]))
    # give the LM head its own (different) copy of the embedding
    head = [n for n in proto.graph.node if n.op_type == "MatMul" and n.input[1] and
            any(m.output[0] == n.input[1] and m.op_type == "Transpose" for m in proto.graph.node)][-1]
    tr = [m for m in proto.graph.node if m.output[0] == head.input[1]][0]
    wte = [t for t in proto.graph.initializer if t.name == tr.input[0]][0]
    arr = numpy_helper.to_array(wte).copy()
    arr[3, 5] += 1.0
    proto.graph.initializer.append(numpy_helper.from_array(arr, "untied_head"))
    tr.input[0] = "untied_head"
    onnx.save_model(proto, str(tmp_path / "untied.onnx"))
    with pytest.raises(ModelError, match="LM head weight differs from wte"):
        load_onnx(tmp_path / "untied.onnx")


# ---------------------------------------------------------------------------- load_model
def test_load_model_dispatch(tiny, exports, tmp_path):
    folder, _, sd = tiny
    with pytest.raises(ModelError, match=r"no such model or file: nope-model \(presets: gpt2, gpt2-medium"):
        frontend.load_model("nope-model")
    m = frontend.load_model(str(folder))
    assert m.weights.source["kind"] == "hf"
    o = frontend.load_model(str(exports["eager_dyn"]))
    assert o.weights.source["kind"] == "onnx" and o.config.n_layer == 2
    r = frontend.load_model(str(folder), random_weights=True, seed=5, init_std=0.05)
    assert r.config == m.config and r.weights.source["kind"] == "random"
    assert r.weights.source["config_from"]["kind"] == "hf"
    assert not np.array_equal(r.weights.get("wte"), sd["transformer.wte.weight"])
    with pytest.raises(ModelError, match="give the checkpoint folder"):
        frontend.load_model(str(folder / "model.safetensors"))


def test_corrupted_pytorch_bin(tiny, tmp_path):
    folder, _, _ = tiny
    _copy_config(folder, tmp_path)
    (tmp_path / "pytorch_model.bin").write_bytes(np.random.default_rng(0).bytes(3000))
    with pytest.raises(ModelError, match=r"cannot read .*pytorch_model.bin: .*refuses to unpickle"):
        load_hf_folder(tmp_path).weights.get("wte")  # checked when wte is read, after the capacity check


def test_onnx_n_head_argument_must_agree(exports):
    from dfx.compiler.onnx_frontend import load_onnx

    assert load_onnx(exports["eager_full"], n_head=4).config.n_head == 4
    with pytest.raises(ModelError, match="n_head 8 was given but the graph splits attention into 4 heads"):
        load_onnx(exports["eager_full"], n_head=8)


def test_hf_folder_and_its_onnx_export_give_equivalent_bundles(tiny, exports, tmp_path):
    """The same model through both frontends: identical programs and HBM/DDR images."""
    from dfx.compiler.bundle import Bundle
    from dfx.compiler.driver import compile_model

    folder = tiny[0]
    compile_model(str(folder), 2, tmp_path / "hf", target="tiny", progress=False)
    compile_model(str(exports["eager_dyn"]), 2, tmp_path / "onnx", target="tiny", progress=False)
    a, b = Bundle(tmp_path / "hf"), Bundle(tmp_path / "onnx")
    assert a.manifest["weights"]["kind"] == "hf" and b.manifest["weights"]["kind"] == "onnx"
    for ca, cb in zip(a.cards, b.cards):
        assert [c["sha256"] for c in ca["hbm_channels"]] == [c["sha256"] for c in cb["hbm_channels"]]
        assert ca.get("ddr") == cb.get("ddr")
        assert {p: v["sha256"] for p, v in ca["programs"].items()} == \
               {p: v["sha256"] for p, v in cb["programs"].items()}
