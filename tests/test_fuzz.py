"""Fuzzing (issue 13): the bundle loader, the program decoder and assembler, the model frontends
and the CLI in front of them only ever fail with a typed one-line error (tests/fuzzing.py says
what each target feeds them). A few hundred deterministic cases here; `python scripts/fuzz.py`
runs thousands and counts the outcomes. DFX_FUZZ_EXAMPLES sets the examples per target."""

import pytest

import fuzzing

NEEDS_TORCH = {"onnx-bytes", "onnx-graph", "hf-folder", "cli-compile"}


@pytest.mark.parametrize("name", list(fuzzing.TARGETS))
def test_fuzz(name):
    if name in NEEDS_TORCH:
        pytest.importorskip("torch")
        pytest.importorskip("onnx")
    fuzzing.hypothesis_test(name, fuzzing.ci_examples(name))()
