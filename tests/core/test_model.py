"""The forward pass on its own terms: the math of each function, float32 throughout, the KV cache,
left padding. Parity with transformers is in test_parity.py."""

import math

import numpy as np
import pytest
from helpers import random_params

import minigpt.core.model as M
from minigpt.core.config import GPTConfig
from minigpt.core.model import nest

CONFIG = GPTConfig(vocab_size=97, n_positions=32, n_embd=24, n_layer=2, n_head=3, n_inner=40)


def make_model(config=CONFIG, seed=0):
    params = nest(random_params(config, seed))
    params["lm_head"] = params["wte"]
    return M.GPT2(config, params)


@pytest.fixture(scope="module")
def model():
    return make_model()


def test_gelu_is_the_tanh_approximation():
    x = np.linspace(-6, 6, 101, dtype=np.float32)
    want = [0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3))) for v in x.astype(float)]
    assert M.gelu(x).dtype == np.float32
    np.testing.assert_allclose(M.gelu(x), want, rtol=1e-6, atol=1e-6)


def test_layer_norm_normalises():
    x = np.random.default_rng(0).standard_normal((3, 5, 16)).astype(np.float32) * 7 + 3
    y = M.layer_norm(x, np.ones(16, np.float32), np.zeros(16, np.float32), 1e-5)
    np.testing.assert_allclose(y.mean(-1), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(-1), 1, atol=1e-3)


def test_softmax_masks_and_sums_to_one():
    p = M.softmax(np.array([[1.0, -np.inf, 2.0]], dtype=np.float32))
    assert p[0, 1] == 0 and abs(p.sum() - 1) < 1e-6


def test_no_float64_anywhere(model, monkeypatch):
    """Every array entering or leaving each math function is float32 (a float64 scalar would upcast)."""
    seen = []

    def checked(fn):
        def wrapper(*args, **kwargs):
            out = fn(*args, **kwargs)
            for value in [*args, *kwargs.values(), out]:
                if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                    seen.append((fn.__name__, value.dtype))
            return out
        return wrapper

    for name in ("layer_norm", "gelu", "softmax", "linear", "attention", "unembed"):
        monkeypatch.setattr(M, name, checked(getattr(M, name)))
    cache = model.new_cache(2, 6)
    first = model.forward(np.array([[1, 2, 3], [4, 5, 6]]), cache, np.array([[0, 1, 1], [1, 1, 1]]))
    step = model.forward(np.array([[7], [8]]), cache, last_only=True)
    assert {name for name, _ in seen} >= {"layer_norm", "gelu", "softmax", "linear", "attention", "unembed"}
    assert all(dtype == np.float32 for _, dtype in seen), [s for s in seen if s[1] != np.float32]
    for array in (first.logits, first.hidden, step.logits, step.hidden, cache.k, cache.v):
        assert array.dtype == np.float32


def test_shapes(model):
    assert model([1, 2, 3]).shape == (3, 97)
    assert model([[1, 2, 3], [3, 2, 1]]).shape == (2, 3, 97)


def test_cache_steps_equal_full_pass(model):
    ids = np.random.default_rng(1).integers(0, 97, size=(2, 10))
    full = model(ids)
    cache = model.new_cache(2, 10)
    chunks = [model.forward(ids[:, :4], cache).logits]
    for t in range(4, 10):
        chunks.append(model.forward(ids[:, t : t + 1], cache).logits)
    np.testing.assert_allclose(np.concatenate(chunks, axis=1), full, rtol=0, atol=1e-5 * np.abs(full).max())
    assert cache.length == 10


def test_left_padding_never_leaks(model):
    rng = np.random.default_rng(2)
    short, long = rng.integers(0, 97, 4), rng.integers(0, 97, 7)
    ids = np.stack([np.concatenate([rng.integers(0, 97, 3), short]), long])  # row 0: 3 junk pads
    mask = np.array([[0, 0, 0, 1, 1, 1, 1], [1] * 7])
    batch = model(ids, attention_mask=mask)
    tol = 1e-5 * np.abs(batch).max()
    np.testing.assert_allclose(batch[0, 3:], model(short), rtol=0, atol=tol)
    np.testing.assert_allclose(batch[1], model(long), rtol=0, atol=tol)
    other_pads = ids.copy()
    other_pads[0, :3] = [5, 6, 7]
    np.testing.assert_allclose(model(other_pads, attention_mask=mask)[0, 3:], batch[0, 3:], rtol=0, atol=tol)


def test_position_ids_follow_the_mask():
    mask = np.array([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert M.position_ids(mask).tolist() == [[1, 1, 0, 1, 2], [0, 1, 2, 3, 4]]


def test_cache_reorder_and_crop(model):
    ids = np.random.default_rng(3).integers(0, 97, size=(3, 5))
    cache = model.new_cache(3, 8)
    model.forward(ids, cache)
    cache.reorder([2, 2, 0])
    nxt = np.array([[1], [2], [3]])
    got = model.forward(nxt, cache).logits[:, -1]
    want = model(np.concatenate([ids[[2, 2, 0]], nxt], axis=1))[:, -1]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())
    cache.crop(5)
    again = model.forward(nxt[::-1], cache).logits[:, -1]
    want = model(np.concatenate([ids[[2, 2, 0]], nxt[::-1]], axis=1))[:, -1]
    np.testing.assert_allclose(again, want, rtol=0, atol=1e-5 * np.abs(want).max())


def test_bad_ids_and_context_are_refused(model):
    with pytest.raises(ValueError, match="outside the model's vocabulary"):
        model([1, 97])
    with pytest.raises(ValueError, match="n_positions=32"):
        model(list(range(33)))
    with pytest.raises(ValueError, match="integers"):
        model([1.5, 2.0])


def test_cache_reorder_in_place_identity_and_new_batch_size(model):
    """Same batch size: the filled positions move in place (no new arrays); the identity moves nothing;
    another batch size (contrastive search's copies) gives new arrays. Each matches a fresh full pass."""
    ids = np.random.default_rng(4).integers(0, 97, size=(2, 4))
    cache = model.new_cache(2, 6)
    model.forward(ids, cache)
    k = cache.k
    cache.reorder([0, 1])
    assert cache.k is k
    cache.reorder([1, 1])
    assert cache.k is k
    got = model.forward(np.array([[5], [6]]), cache).logits[:, -1]
    want = model(np.concatenate([ids[[1, 1]], [[5], [6]]], axis=1))[:, -1]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())
    cache.reorder([0, 0, 1])
    assert cache.batch_size == 3 and cache.k is not k
    got = model.forward(np.array([[7], [8], [9]]), cache).logits[:, -1]
    rows = np.concatenate([ids[[1, 1]], [[5], [6]]], axis=1)[[0, 0, 1]]
    want = model(np.concatenate([rows, [[7], [8], [9]]], axis=1))[:, -1]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())


def test_inspect_hands_out_the_residual_stream_and_attention(model):
    """inspect=True: n_layer + 1 residuals (the last read out through ln_f and the head is the logits),
    n_layer attention maps whose rows are distributions that never look ahead."""
    ids = np.random.default_rng(5).integers(0, 97, size=(1, 6))
    cache = model.new_cache(1, 6)
    out = model.forward(ids, cache, inspect=True)
    assert len(out.residuals) == CONFIG.n_layer + 1 and len(out.patterns) == CONFIG.n_layer
    np.testing.assert_allclose(model.read_out(out.residuals[-1]), out.logits, rtol=0, atol=1e-6 * np.abs(out.logits).max())
    for weights in out.patterns:
        assert weights.shape == (1, CONFIG.n_head, 6, 6)
        np.testing.assert_allclose(weights.sum(-1), 1, atol=1e-6)
        assert (np.triu(weights[0], k=1) == 0).all()
    plain = model.forward(ids, model.new_cache(1, 6))
    assert plain.residuals is None and plain.patterns is None
    np.testing.assert_array_equal(plain.logits, out.logits)


def test_the_tied_output_matrix_is_one_buffer(model):
    wte, head = model.params["wte"]["weight"], model.params["lm_head"]["weight"]
    assert head.shape == (CONFIG.n_embd, CONFIG.vocab_size) and head.flags.c_contiguous
    assert np.shares_memory(wte, head)
    x = np.random.default_rng(6).standard_normal((3, CONFIG.n_embd)).astype(np.float32)
    np.testing.assert_allclose(model.unembed(x), x @ wte.T, rtol=1e-6, atol=1e-6)
