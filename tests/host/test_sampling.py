"""Next-token selection: greedy, temperature, top-k, top-p, argument checks."""

import numpy as np
import pytest

from dfx.errors import DfxError
from dfx.host.sampling import SamplingError, greedy, probabilities, sample


def rand_logits(seed, n=50):
    return np.random.default_rng(seed).normal(0, 3, n).astype(np.float32)


def test_greedy_first_index_of_max():
    x = np.array([1.0, 5.0, 2.0, 5.0, 5.0], np.float32)
    assert sample(x) == 1
    assert sample(x, temperature=None) == 1
    assert sample(x, temperature=0.0, top_k=3, top_p=0.5) == 1


def test_greedy_nan_never_wins():
    x = np.array([1.0, np.nan, 3.0, np.nan], np.float32)
    assert sample(x) == 2
    assert greedy(np.array([np.nan, -np.inf, -np.inf], np.float32)) == 1
    assert greedy(np.array([np.nan, 0.0], np.float32)) == 1
    with pytest.raises(SamplingError, match="NaN"):
        greedy(np.array([np.nan, np.nan], np.float32))


def test_greedy_handles_inf():
    x = np.array([0.0, np.inf, 1.0, np.inf], np.float32)
    assert sample(x) == 1


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("temperature", [0.1, 1.0, 7.0])
def test_top_k_1_is_greedy(seed, temperature):
    x = rand_logits(seed)
    rng = np.random.default_rng(seed)
    for _ in range(20):
        assert sample(x, temperature=temperature, top_k=1, rng=rng) == int(np.argmax(x))


def test_top_k_1_tie_keeps_lower_index():
    x = np.array([0.0, 3.0, 1.0, 3.0], np.float32)
    rng = np.random.default_rng(0)
    assert {sample(x, temperature=1.0, top_k=1, rng=rng) for _ in range(50)} == {1}


@pytest.mark.parametrize("seed", range(5))
def test_tiny_top_p_is_greedy(seed):
    x = rand_logits(seed)
    rng = np.random.default_rng(seed)
    for _ in range(20):
        assert sample(x, temperature=2.0, top_p=1e-9, rng=rng) == int(np.argmax(x))


def test_top_p_keeps_the_crossing_token():
    p = np.array([0.5, 0.3, 0.15, 0.05])
    x = np.log(p).astype(np.float32)
    # 0.5 < 0.6: the second token crosses 0.6 and is kept; the third is not.
    q = probabilities(x, 1.0, top_p=0.6)
    assert np.count_nonzero(q) == 2
    np.testing.assert_allclose(q[:2], [0.5 / 0.8, 0.3 / 0.8], rtol=1e-6)
    # Mass exactly reached at 0.8 by two tokens: no third token.
    assert np.count_nonzero(probabilities(x, 1.0, top_p=0.8)) == 2
    assert np.count_nonzero(probabilities(x, 1.0, top_p=0.81)) == 3
    assert np.count_nonzero(probabilities(x, 1.0, top_p=1.0)) == 4


def test_top_k_then_top_p_renormalises():
    p = np.array([0.4, 0.3, 0.2, 0.1])
    x = np.log(p).astype(np.float32)
    # top-k 2 leaves 0.4/0.7 = 0.571 and 0.429: top_p 0.55 keeps only the first.
    assert np.count_nonzero(probabilities(x, 1.0, top_k=2, top_p=0.55)) == 1
    assert np.count_nonzero(probabilities(x, 1.0, top_k=2, top_p=0.6)) == 2


def test_top_k_restricts_support():
    x = rand_logits(3)
    q = probabilities(x, 1.5, top_k=5)
    assert np.count_nonzero(q) == 5
    assert set(np.flatnonzero(q)) == set(np.argsort(-x, kind="stable")[:5])
    rng = np.random.default_rng(1)
    assert {sample(x, 1.5, top_k=5, rng=rng) for _ in range(500)} <= set(np.flatnonzero(q))


def test_temperature_scales_distribution():
    x = np.array([1.0, 0.0], np.float32)
    np.testing.assert_allclose(probabilities(x, 1.0)[0], np.e / (np.e + 1), rtol=1e-6)
    np.testing.assert_allclose(probabilities(x, 0.5)[0], np.e ** 2 / (np.e ** 2 + 1), rtol=1e-6)
    # Tiny temperature: no overflow, all mass on the maximum.
    np.testing.assert_allclose(probabilities(np.array([1000.0, 999.0], np.float32), 1e-4), [1.0, 0.0])


def test_frequencies_match_known_distribution():
    p = np.array([0.6, 0.3, 0.1])
    x = np.log(p).astype(np.float32)
    rng = np.random.default_rng(20240601)
    n = 20000
    counts = np.bincount([sample(x, temperature=1.0, rng=rng) for _ in range(n)], minlength=3)
    freq = counts / n
    # Standard errors are at most 0.0035: a 0.02 bound is about 6 sigma.
    assert np.all(np.abs(freq - p) < 0.02), freq


def test_same_seed_same_sequence():
    x = rand_logits(7)
    args = dict(temperature=1.3, top_k=20, top_p=0.9)
    r1, r2, r3 = np.random.default_rng(42), np.random.default_rng(42), np.random.default_rng(43)
    s1 = [sample(x, rng=r1, **args) for _ in range(200)]
    s2 = [sample(x, rng=r2, **args) for _ in range(200)]
    s3 = [sample(x, rng=r3, **args) for _ in range(200)]
    assert s1 == s2
    assert len(set(s1)) > 3  # it really samples
    assert s1 != s3  # and the seed matters


def test_masked_logits_never_sampled():
    x = np.full(10, -np.inf, np.float32)
    x[[2, 7]] = [0.0, 0.5]
    x[4] = np.nan
    rng = np.random.default_rng(5)
    seen = {sample(x, temperature=t, rng=rng) for t in (0.5, 1.0, 10.0, 1000.0) for _ in range(300)}
    assert seen == {2, 7}
    assert sample(x) == 7


def test_all_masked_raises():
    x = np.full(4, -np.inf, np.float32)
    with pytest.raises(SamplingError, match="-inf"):
        sample(x, temperature=1.0, rng=np.random.default_rng(0))


@pytest.mark.parametrize("kwargs, match", [
    (dict(temperature=-0.1), "temperature"),
    (dict(temperature=float("nan")), "temperature"),
    (dict(temperature=1.0, top_p=0.0), "top_p"),
    (dict(temperature=1.0, top_p=1.5), "top_p"),
    (dict(temperature=1.0, top_p=-0.2), "top_p"),
    (dict(temperature=1.0, top_k=-1), "top_k"),
    (dict(temperature=1.0, top_k=2.5), "top_k"),
    (dict(top_k=-3), "top_k"),  # checked even when greedy
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(SamplingError, match=match) as e:
        sample(np.zeros(4, np.float32), rng=np.random.default_rng(0), **kwargs)
    assert isinstance(e.value, DfxError) and isinstance(e.value, ValueError)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("bad", [np.zeros((2, 3), np.float32), np.zeros(0, np.float32),
                                 np.arange(4)])
def test_bad_logits(bad):
    with pytest.raises(SamplingError):
        sample(bad)


def test_rng_must_be_generator():
    with pytest.raises(SamplingError, match="Generator"):
        sample(np.zeros(3, np.float32), temperature=1.0, rng=np.random.RandomState(0))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("temperature, top_k, top_p", [(1.0, 0, 0.9), (0.7, 10, 0.8), (1.5, 5, 1.0),
                                                       (1.0, 0, 0.3), (2.0, 30, 0.95)])
def test_kept_set_matches_transformers_warpers(seed, temperature, top_k, top_p):
    torch = pytest.importorskip("torch")
    lp = pytest.importorskip("transformers.generation.logits_process")
    x = rand_logits(seed, n=200)
    warpers = [lp.TemperatureLogitsWarper(temperature)]
    if top_k:
        warpers.append(lp.TopKLogitsWarper(top_k))
    if top_p < 1.0:
        warpers.append(lp.TopPLogitsWarper(top_p))
    scores = torch.from_numpy(x.astype(np.float64))[None]
    for w in warpers:
        scores = w(None, scores)
    ref = torch.softmax(scores, -1)[0].numpy()
    q = probabilities(x, temperature, top_k, top_p)
    assert set(np.flatnonzero(q)) == set(np.flatnonzero(ref))
    np.testing.assert_allclose(q, ref, atol=1e-9)
