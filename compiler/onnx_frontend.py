"""ONNX graphs of GPT-2 LM heads -> the IR.

Recognises what ``torch.onnx.export(GPT2LMHeadModel, (input_ids,), path)`` (the default dynamo
exporter, transformers 5, attention "eager" or "sdpa", static or dynamic shapes) produces. The
exporter does not keep a one-to-one map from parameter names to initializers: it folds the position
embedding into a constant when the shapes are static, drops all-zero biases and shares identical
initializers (a freshly initialised model has every LayerNorm weight equal to 1), and names the tied
token embedding ``lm_head.weight``. So the frontend reads the weights from the graph's *structure*,
not from initializer names:

1. every node must be an op this frontend knows for GPT-2 (:data:`KNOWN_OPS`, found from real
   exports; the attention-mask subgraph of dynamic exports is made of Range, CumSum, GatherND,
   LessOrEqual, Where, ...), else ``unsupported ONNX op 'Foo' at node '/bar'``;
2. wte is the Gather of a 2-D constant by the integer input (the token ids); wpe is the Gather of a
   2-D constant added to it or, in static exports, the folded constant added to it (then n_positions
   is the exported sequence length: that graph cannot take more tokens anyway);
3. the LayerNormalization nodes, in graph order, are ln_1/ln_2 of each layer and then ln_f (2L + 1
   of them); the linear layers are the Gemm/MatMul nodes with a constant right operand, in order
   c_attn, attn.c_proj, c_fc, mlp.c_proj per layer and then the LM head (4L + 1); a missing bias
   (Gemm without C, MatMul without a following Add of a constant) is zero;
4. data flow is checked: each c_attn reads its layer's ln_1, each c_fc its ln_2, the LM head ln_f,
   the LM head is the tied wte (same initializer or equal values) and produces the graph's first
   output; each layer has one Softmax and a GELU (Tanh -> "gelu_new", Erf -> "gelu");
5. n_head comes from the constant shape of the Reshape that splits Q, K or V into heads
   ([..., n_head, head_dim] with n_head * head_dim = d); when that shape is computed at run time,
   the ``n_head`` argument must give it (and, when both exist, they must agree).

Initializers stored as external data are memory-mapped, one tensor at a time, so large models are
never loaded whole.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np

from dfx.errors import ModelError

from .model import GPT2Config, GPT2Model, Weights, canonical_shapes, check_shape

# Op types seen in real exports of GPT2LMHeadModel (eager and sdpa, static and dynamic shapes),
# plus Constant/Identity (other exporters and optimisers) and Erf (exact GELU).
KNOWN_OPS = frozenset({
    "Add", "And", "Cast", "Concat", "Constant", "CumSum", "Equal", "Erf", "Expand", "Gather",
    "GatherND", "Gemm", "Identity", "IsNaN", "LayerNormalization", "LessOrEqual", "MatMul", "Max",
    "Mul", "Not", "Pow", "Range", "Reshape", "Shape", "Slice", "Softmax", "Split", "Squeeze", "Sub",
    "Tanh", "Transpose", "Unsqueeze", "Where",
})
# Ops that only move or re-view data: followed when tracing a value to where it comes from.
PASS_THROUGH = frozenset({"Reshape", "Identity", "Cast", "Squeeze", "Unsqueeze", "Flatten"})
INT_TYPES = {6, 7, 12, 13}  # INT32, INT64, UINT32, UINT64 (onnx.TensorProto)


def _err(path, msg):
    return ModelError(f"{path}: {msg}")


class _Graph:
    def __init__(self, model, folder: Path, path: Path):
        self.path, self.folder = path, folder
        g = model.graph
        self.g = g
        self.nodes = list(g.node)
        self.init = {t.name: t for t in g.initializer}
        self.const_nodes = {}
        for n in self.nodes:
            if n.op_type == "Constant" and n.output:
                self.const_nodes[n.output[0]] = n
        self.producer = {}
        self.consumers: dict[str, list] = {}
        for n in self.nodes:
            for o in n.output:
                self.producer[o] = n
            for i in n.input:
                if i:
                    self.consumers.setdefault(i, []).append(n)

    # ---- constants ------------------------------------------------------------------------
    def is_const(self, name: str) -> bool:
        return name in self.init or name in self.const_nodes

    def const_shape(self, name: str) -> tuple[int, ...]:
        if name in self.init:
            return tuple(int(d) for d in self.init[name].dims)
        return tuple(self.const(name).shape)

    def const(self, name: str) -> np.ndarray:
        """A constant's value; external data is memory-mapped, not read."""
        from onnx import numpy_helper

        if name in self.init:
            t = self.init[name]
            if t.data_location == 1:  # TensorProto.EXTERNAL
                return self._external(t)
            return self._array(t, f"initializer {t.name!r}")
        node = self.const_nodes[name]
        for a in node.attribute:
            if a.name == "value":
                return self._array(a.t, f"Constant node {node.name!r}")
            if a.name in ("value_float", "value_int"):
                return np.array(a.f if a.name == "value_float" else a.i)
            if a.name in ("value_floats", "value_ints"):
                return np.array(list(a.floats) if a.name == "value_floats" else list(a.ints))
        raise _err(self.path, f"Constant node {node.name!r} has no value this frontend can read")

    def ints(self, name: str) -> list[int] | None:
        """A constant's values as ints; None unless it is an integer tensor."""
        v = self.const(name)
        return [int(x) for x in v.reshape(-1)] if np.issubdtype(v.dtype, np.integer) else None

    def _array(self, t, what: str) -> np.ndarray:
        from onnx import numpy_helper

        self._dtype(t, what)
        try:
            return numpy_helper.to_array(t)
        except ValueError:  # its data does not fill its dims
            raise _err(self.path, f"{what}: its data does not match its shape {list(t.dims)}") from None

    def _dtype(self, t, what: str) -> np.dtype:
        from onnx import helper

        try:
            return np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type))
        except (KeyError, TypeError):
            raise _err(self.path, f"{what}: data type {t.data_type} is not a tensor type dfx reads") from None

    def _external(self, t) -> np.ndarray:
        info = {e.key: e.value for e in t.external_data}
        where = f"initializer {t.name!r}"
        loc = info.get("location", "")
        if not loc or "\0" in loc or Path(loc).is_absolute() or ".." in Path(loc).parts:
            raise _err(self.path, f"{where}: external data location {loc!r} is not a file next to the model")
        f = self.folder / loc
        dtype = self._dtype(t, where)
        shape = tuple(int(d) for d in t.dims)
        try:
            offset, length = int(info.get("offset", 0)), int(info.get("length", -1))
        except ValueError:
            raise _err(self.path, f"{where}: external data offset/length are not integers") from None
        if offset < 0 or min(shape, default=0) < 0:
            raise _err(self.path, f"{where}: negative external data offset or dimension")
        nbytes = math.prod(shape) * dtype.itemsize
        if "length" in info and length != nbytes:
            raise _err(self.path, f"{where}: external length {length} != {nbytes}")
        if not f.is_file():
            raise _err(self.path, f"{where}: external data file {loc!r} is missing")
        if f.stat().st_size < offset + nbytes:
            raise _err(self.path, f"{where}: external data file {loc!r} is truncated")
        return np.memmap(f, dtype=dtype, mode="r", offset=offset, shape=shape)

    # ---- structure ------------------------------------------------------------------------
    def origin(self, name: str) -> str:
        """Follow data-only ops back to where a value is computed."""
        seen = 0
        while name in self.producer and self.producer[name].op_type in PASS_THROUGH and seen < 64:
            name = self.producer[name].input[0]
            seen += 1
        return name

    def forward(self, name: str) -> list:
        """Consumers of a value, looking through data-only ops."""
        out = []
        for n in self.consumers.get(name, []):
            if n.op_type in PASS_THROUGH and n.input[0] == name:
                out.extend(self.forward(n.output[0]))
            else:
                out.append((n, name))
        return out

    def ancestors_ops(self, start: str, stop: str) -> Counter:
        """Op types of the nodes computing ``start`` from ``stop`` (exclusive)."""
        ops, todo, seen = Counter(), [start], set()
        while todo:
            v = todo.pop()
            if v == stop or v in seen or v not in self.producer:
                continue
            seen.add(v)
            n = self.producer[v]
            ops[n.op_type] += 1
            todo.extend(i for i in n.input if i and not self.is_const(i))
        return ops


FLOAT, INT, INTS = 1, 2, 7  # the onnx.AttributeProto types read here
ATTR_KINDS = {FLOAT: ("a float", lambda a: a.f), INT: ("an integer", lambda a: a.i),
              INTS: ("a list of integers", lambda a: list(a.ints))}


def _attr(graph, node, name, default, kind: int):
    """The value of attribute `name` (of AttributeProto type `kind`), or default when absent."""
    for a in node.attribute:
        if a.name == name:
            if a.type != kind:
                raise _err(graph.path, f"{node.op_type} node {node.name!r}: attribute {name!r} is not "
                                       f"{ATTR_KINDS[kind][0]}")
            return ATTR_KINDS[kind][1](a)
    return default


def _load_proto(path: Path):
    try:
        import onnx
    except ImportError:
        raise ModelError("reading ONNX needs the onnx package (pip install 'dfx[ml]')") from None
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise ModelError(f"{path}: not a readable ONNX model ({type(e).__name__}: {e})") from None


def check_ops(graph: _Graph) -> None:
    """Every node is a known op with at least the inputs and outputs its ONNX schema requires
    (the frontend reads them by position)."""
    from onnx import defs

    for n in graph.nodes:
        name = n.name or (n.output[0] if n.output else "")
        if n.domain not in ("", "ai.onnx") or n.op_type not in KNOWN_OPS:
            op = n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}::{n.op_type}"
            raise _err(graph.path, f"unsupported ONNX op {op!r} at node {name!r}")
        schema = defs.get_schema(n.op_type)
        if len(n.input) < schema.min_input or len(n.output) < max(1, schema.min_output):
            raise _err(graph.path, f"{n.op_type} node {name!r} has {len(n.input)} inputs and {len(n.output)} "
                                   f"outputs; ONNX {n.op_type} needs at least {schema.min_input} and "
                                   f"{max(1, schema.min_output)}")



def _weight(graph, node, b, trans):
    """The (in, out) shape of the 2-D constant weight `b` of a Gemm/MatMul, and a getter for it."""
    shp = graph.const_shape(b)
    if len(shp) != 2:
        raise _err(graph.path, f"{node.op_type} node {node.name!r}: weight {b!r} is not 2-D")
    wshape = shp[::-1] if trans else shp
    return wshape, ((lambda: graph.const(b).T) if trans else (lambda: graph.const(b)))

def _linear(graph: _Graph, node):
    """(input value, weight getter, weight shape (in, out), weight source key, bias getter|None)."""
    p = graph.path
    if node.op_type == "Gemm":
        if _attr(graph, node, "transA", 0, INT) or _attr(graph, node, "alpha", 1.0, FLOAT) != 1.0 \
                or _attr(graph, node, "beta", 1.0, FLOAT) != 1.0:
            raise _err(p, f"Gemm node {node.name!r} has transA/alpha/beta this frontend does not map")
        b = node.input[1]
        if not graph.is_const(b):
            return None
        trans = bool(_attr(graph, node, "transB", 0, INT))
        wshape, wget = _weight(graph, node, b, trans)
        bias = None
        if len(node.input) > 2 and node.input[2]:
            c = node.input[2]
            if not graph.is_const(c) or math.prod(graph.const_shape(c)) != wshape[1]:
                raise _err(p, f"Gemm node {node.name!r}: bias {c!r} is not a constant of {wshape[1]} values")
            bias = lambda c=c, n=wshape[1]: graph.const(c).reshape(n)
        return node.input[0], wget, wshape, (b, trans), bias
    # MatMul: right operand a constant, or a Transpose of one
    b = node.input[1]
    trans = False
    if not graph.is_const(b):
        prod = graph.producer.get(b)
        if prod is None or prod.op_type != "Transpose" or not graph.is_const(prod.input[0]):
            return None
        perm = _attr(graph, prod, "perm", [1, 0], INTS)
        if list(perm) != [1, 0]:
            raise _err(p, f"Transpose node {prod.name!r} feeding MatMul {node.name!r} has perm {perm}")
        b, trans = prod.input[0], True
    wshape, wget = _weight(graph, node, b, trans)
    bias = None
    users = graph.forward(node.output[0])
    if len(users) == 1 and users[0][0].op_type == "Add":
        add, via = users[0]
        other = [i for i in add.input if i != via]
        if len(other) == 1 and graph.is_const(other[0]) and \
                math.prod(graph.const_shape(other[0])) == wshape[1]:
            bias = lambda c=other[0], n=wshape[1]: graph.const(c).reshape(n)
    return node.input[0], wget, wshape, (b, trans), bias


def _infer_n_head(graph: _Graph, c_attn_out: str, d: int) -> int | None:
    """n_head from the Reshape of Q/K/V after the split of c_attn's output (None if dynamic)."""
    found = set()
    for split, _ in graph.forward(c_attn_out):
        if split.op_type != "Split":
            continue
        for part in split.output:
            for r in graph.consumers.get(part, []):
                if r.op_type != "Reshape":
                    continue
                shp_name = r.input[1]
                vals = None
                if graph.is_const(shp_name):
                    vals = graph.ints(shp_name)
                elif shp_name in graph.producer and graph.producer[shp_name].op_type == "Concat":
                    cat = graph.producer[shp_name]
                    if all(graph.is_const(i) for i in cat.input[-2:]):
                        parts = [graph.ints(i) for i in cat.input[-2:]]
                        tail = None if None in parts else parts[0] + parts[1]
                        vals = tail if tail and len(tail) == 2 else None
                if not vals or len(vals) < 2:
                    continue
                h, hd = vals[-2], vals[-1]
                if h == -1 and hd > 0 and d % hd == 0:  # [..., -1, head_dim]
                    h = d // hd
                elif hd == -1 and h > 0 and d % h == 0:  # [..., n_head, -1]
                    hd = d // h
                if h > 0 and hd > 0 and h * hd == d:
                    found.add(h)
    if len(found) > 1:
        raise _err(graph.path, f"inconsistent head counts in the attention reshapes: {sorted(found)}")
    return found.pop() if found else None


def load_onnx(path, n_head: int | None = None, name: str | None = None) -> GPT2Model:
    """A GPT-2 LM-head ONNX graph -> GPT2Model with lazy weights (see the module doc)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"no such ONNX file: {path}")
    graph = _Graph(_load_proto(path), path.parent, path)
    p = path
    check_ops(graph)

    # token ids: the first non-initializer graph input, an integer tensor
    inputs = [i for i in graph.g.input if i.name not in graph.init]
    if not inputs:
        raise _err(p, "not a GPT-2 LM head: the graph has no inputs")
    ids = inputs[0]
    if ids.type.tensor_type.elem_type not in INT_TYPES:
        raise _err(p, f"not a GPT-2 LM head: its first input {ids.name!r} is not integer token ids")

    # wte: Gather(2-D const, ids)
    gathers = [n for n in graph.nodes if n.op_type == "Gather" and graph.is_const(n.input[0])
               and len(graph.const_shape(n.input[0])) == 2 and graph.origin(n.input[1]) == ids.name]
    if len(gathers) != 1:
        raise _err(p, f"not a GPT-2 LM head: expected one token-embedding Gather on input "
                      f"{ids.name!r}, found {len(gathers)}")
    wte_node = gathers[0]
    wte_key = wte_node.input[0]
    vocab, d = graph.const_shape(wte_key)

    # wpe: added to the token embedding
    wpe_get = wpe_rows = wpe_kind = None
    adds = [(n, v) for n, v in graph.forward(wte_node.output[0]) if n.op_type == "Add"]
    if len(adds) == 1:
        add, via = adds[0]
        other = [i for i in add.input if i != via][0]
        src = graph.origin(other)
        if graph.is_const(src):
            shp = graph.const_shape(src)
            if len(shp) >= 2 and shp[-1] == d and all(s == 1 for s in shp[:-2]):
                wpe_rows, wpe_kind = shp[-2], "folded"
                wpe_get = lambda s=src, r=shp[-2]: graph.const(s).reshape(r, d)
        elif src in graph.producer and graph.producer[src].op_type == "Gather":
            pg = graph.producer[src]
            if graph.is_const(pg.input[0]) and len(graph.const_shape(pg.input[0])) == 2 \
                    and graph.const_shape(pg.input[0])[1] == d:
                wpe_rows, wpe_kind = graph.const_shape(pg.input[0])[0], "initializer"
                wpe_get = lambda s=pg.input[0]: graph.const(s)
    if wpe_get is None:
        raise _err(p, "not a GPT-2 LM head: no position embedding added to the token embedding")

    # LayerNorms and linear layers, in graph order
    lns = [n for n in graph.nodes if n.op_type == "LayerNormalization"]
    if len(lns) < 3 or len(lns) % 2 == 0:
        raise _err(p, f"not a GPT-2 LM head: {len(lns)} LayerNormalization nodes (expected 2 * n_layer + 1)")
    n_layer = (len(lns) - 1) // 2
    linears = []
    for n in graph.nodes:
        if n.op_type in ("Gemm", "MatMul"):
            lin = _linear(graph, n)
            if lin is not None:
                linears.append((n, lin))
    if len(linears) != 4 * n_layer + 1:
        raise _err(p, f"not a GPT-2 LM head: {len(linears)} linear layers for {n_layer} layers "
                      f"(expected {4 * n_layer + 1})")

    eps_all = set()
    getters: dict[str, object] = {"wte": lambda: graph.const(wte_key), "wpe": wpe_get}
    ln_names = [f"h.{i}.ln_{j}" for i in range(n_layer) for j in (1, 2)] + ["ln_f"]
    for ln, canon in zip(lns, ln_names):
        axis = _attr(graph, ln, "axis", -1, INT)
        if axis != -1:
            raise _err(p, f"LayerNormalization {ln.name!r} normalises axis {axis}, expected -1")
        # the attribute is a float32: take its shortest decimal form (1e-05, not 9.9999997e-06)
        eps_all.add(float(str(np.float32(_attr(graph, ln, "epsilon", 1e-5, FLOAT)))))
        w = ln.input[1] if len(ln.input) > 1 else ""
        b = ln.input[2] if len(ln.input) > 2 else ""
        if not w or not graph.is_const(w) or (b and not graph.is_const(b)):
            raise _err(p, f"LayerNormalization {ln.name!r}: scale and bias must be constants")
        getters[canon + ".weight"] = lambda w=w: graph.const(w).reshape(-1)
        getters[canon + ".bias"] = (lambda b=b: graph.const(b).reshape(-1)) if b else \
            (lambda: np.zeros(d, np.float32))
    if len(eps_all) != 1:
        raise _err(p, f"LayerNormalization epsilons differ: {sorted(eps_all)}")

    lin_names = [f"h.{i}.{m}" for i in range(n_layer)
                 for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")]
    softmaxes = sum(n.op_type == "Softmax" for n in graph.nodes)
    if softmaxes != n_layer:
        raise _err(p, f"not a GPT-2 LM head: {softmaxes} Softmax nodes for {n_layer} layers")
    activations = set()
    ln_shapes: dict[str, tuple] = {}
    for ln, canon in zip(lns, ln_names):
        for i, part in ((1, "weight"), (2, "bias")):
            has = len(ln.input) > i and ln.input[i]
            ln_shapes[f"{canon}.{part}"] = (math.prod(graph.const_shape(ln.input[i])),) if has else (d,)
    lin_shapes: dict[str, tuple] = {}
    for k, ((node, (x, wget, wshape, _key, bias)), canon) in enumerate(zip(linears, lin_names)):
        layer, which = divmod(k, 4)
        if which in (0, 2):  # c_attn reads ln_1, c_fc reads ln_2
            want = lns[2 * layer + which // 2].output[0]
            if graph.origin(x) != want:
                raise _err(p, f"not a GPT-2 LM head: {canon} (node {node.name!r}) does not read "
                              f"{ln_names[2 * layer + which // 2]} (node {lns[2 * layer + which // 2].name!r})")
        if which == 3:  # the MLP activation between c_fc and c_proj
            fc = linears[k - 1][0]
            ops = graph.ancestors_ops(x, fc.output[0])
            if ops.get("Tanh"):
                activations.add("gelu_new")
            elif ops.get("Erf"):
                activations.add("gelu")
            else:
                raise _err(p, f"layer {layer}: the MLP activation (ops {dict(ops)}) is not a GELU")
        getters[canon + ".weight"] = wget
        getters[canon + ".bias"] = bias or (lambda n=wshape[1]: np.zeros(n, np.float32))
        lin_shapes[canon + ".weight"] = tuple(wshape)
        lin_shapes[canon + ".bias"] = (wshape[1],)
    if len(activations) != 1:
        raise _err(p, f"layers use different activations: {sorted(activations)}")

    # LM head: reads ln_f, is the tied wte, gives the first output
    head, (hx, hget, hshape, (hkey, htrans), hbias) = linears[-1]
    if graph.origin(hx) != lns[-1].output[0]:
        raise _err(p, f"not a GPT-2 LM head: the last linear layer (node {head.name!r}) does not read ln_f")
    if tuple(hshape) != (d, vocab):
        raise _err(p, f"not a GPT-2 LM head: the LM head has shape {list(hshape)}, expected "
                      f"{[d, vocab]} (tied to wte {[vocab, d]})")
    if hbias is not None:
        raise _err(p, f"the LM head (node {head.name!r}) has a bias; GPT-2's LM head has none")
    if not (hkey == wte_key and htrans) and not np.array_equal(hget(), graph.const(wte_key).T):
        raise _err(p, "the LM head weight differs from wte; dfx supports only GPT-2 with the LM head "
                      "tied to the token embedding")
    out0 = graph.g.output[0].name if graph.g.output else None
    if out0 is None or graph.origin(out0) != head.output[0]:
        raise _err(p, "not a GPT-2 LM head: the graph's first output is not the LM-head logits")

    # n_head
    inferred = _infer_n_head(graph, linears[0][0].output[0], d)
    if inferred is not None and n_head is not None and inferred != n_head:
        raise _err(p, f"n_head {n_head} was given but the graph splits attention into {inferred} heads")
    heads = inferred if inferred is not None else n_head
    if heads is None:
        raise _err(p, "cannot infer n_head (the attention reshape shapes are computed at run time); "
                      "give it explicitly")

    config = GPT2Config(n_layer=n_layer, n_embd=d, n_head=heads, vocab_size=vocab,
                        n_positions=wpe_rows, layer_norm_epsilon=eps_all.pop(),
                        name=name or path.stem, activation=activations.pop())
    # every shape is known now: check them all before anyone reads a tensor
    got_shapes = {"wte": (vocab, d), "wpe": (wpe_rows, d), **ln_shapes, **lin_shapes}
    for canon, want in canonical_shapes(config).items():
        check_shape(canon, got_shapes[canon], want, str(p))
    source = {"kind": "onnx", "path": str(path.resolve()), "wpe": wpe_kind,
              "n_head_from": "graph" if inferred is not None else "argument"}
    return GPT2Model(config, Weights(config, source, lambda n: getters[n]()))
