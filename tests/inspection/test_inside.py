"""Looking inside against TransformerLens 4.x: run_with_cache, attribute, patch and head_scores on the dense fixture
checkpoints (tests/fixtures/inside/, written by scripts/reference/inside.py), compared with what TransformerLens
recorded there, with NumPy alone; and the identities that hold whatever the reference says: the cache's logits
are the model's own, the parts of an attribution add up to the logit, patching the corrupted token's embedding
stream gives the clean metric, patching before it the corrupted one. Live TransformerLens: test_inside_live.py.
"""

import json
from functools import lru_cache

import numpy as np
import pytest
from conftest import FIXTURES
from safetensors.numpy import load_file

import minigpt
from minigpt.call import memory
from minigpt.inspection.inside import attribution
from minigpt.inspection.inside import cache as cache_module
from minigpt.inspection.inside import hooked
from minigpt.inspection.inside.cache import point_names

NAMES = ("dense", "dense-odd")
RTOL = 1e-4  # relative to the largest magnitude of the reference array


@lru_cache(maxsize=None)
def fixture(name: str):
    folder = FIXTURES / "inside" / name
    meta = json.loads((folder / "reference.json").read_text())
    return minigpt.load(str(folder)), meta, load_file(str(folder / "reference.safetensors"))


@pytest.fixture(params=NAMES)
def dense(request):
    return fixture(request.param)


def relative_error(ours, ref) -> float:
    ours = np.asarray(ours)
    assert ours.dtype == np.float32 and ours.shape == ref.shape, (ours.dtype, ours.shape, ref.shape)
    return float(np.abs(ours - ref).max() / max(np.abs(ref).max(), 1e-30))


def test_the_cache_holds_transformer_lens_arrays_under_its_names(dense):
    model, meta, ref = dense
    cache = minigpt.run_with_cache(model, meta["prompts"]["cache"])
    assert sorted(cache) == sorted(key.removeprefix("cache.") for key in ref if key.startswith("cache."))
    assert list(cache) == point_names(model.config)  # in the pass's order
    for name, array in cache.items():
        assert relative_error(array, ref[f"cache.{name}"]) <= RTOL, name
    assert relative_error(cache.logits, ref["tl.logits"]) <= RTOL


def test_the_cache_gives_the_models_own_logits_and_transformers_logits(dense):
    model, meta, ref = dense
    ids = meta["prompts"]["cache"]
    cache = minigpt.run_with_cache(model, ids)
    np.testing.assert_array_equal(cache.logits, model(np.array(ids)))  # the same operations in the same order
    assert relative_error(cache.logits, ref["hf.logits"]) <= 1e-5  # GPT2LMHeadModel, recorded


def test_a_batch_keeps_its_axis_and_a_filter_keeps_what_it_names(dense):
    model, meta, _ = dense
    ids = np.array([meta["prompts"]["clean"], meta["prompts"]["corrupted"]])
    batch = minigpt.run_with_cache(model, ids)
    one = minigpt.run_with_cache(model, ids[1])
    for name in ("hook_embed", "blocks.0.attn.hook_pattern", "blocks.1.attn.hook_result", "ln_final.hook_scale"):
        assert batch[name].shape == (2, *one[name].shape)
        np.testing.assert_allclose(batch[name][1], one[name], rtol=0, atol=1e-5 * np.abs(one[name]).max())
    c = model.config
    shapes = {"attn.hook_q": (10, c.n_head, c.head_dim), "attn.hook_pattern": (c.n_head, 10, 10),
              "attn.hook_result": (10, c.n_head, c.n_embd), "mlp.hook_post": (10, c.d_mlp), "ln1.hook_scale": (10, 1)}
    for point, shape in shapes.items():
        assert one[f"blocks.0.{point}"].shape == shape
    assert one["pattern", 0] is one["blocks.0.attn.hook_pattern"] and one[("scale",)] is one["ln_final.hook_scale"]
    kept = minigpt.run_with_cache(model, ids[0], names=lambda name: name.endswith("hook_z"))
    assert list(kept) == [f"blocks.{l}.attn.hook_z" for l in range(c.n_layer)]
    assert list(minigpt.run_with_cache(model, ids[0], names=["hook_embed"])) == ["hook_embed"]
    with pytest.raises(ValueError, match="'blocks.0.hook_nope' is not a point"):
        minigpt.run_with_cache(model, ids[0], names=["blocks.0.hook_nope"])
    with pytest.raises(KeyError, match="not in this cache"):
        kept["hook_embed"]


def test_the_memory_guard_prices_the_cache_before_the_pass(dense, monkeypatch):
    model, meta, _ = dense
    footprint = cache_module.cache_footprint(model.config, 1, 10, point_names(model.config))
    monkeypatch.setattr(memory, "available", lambda: footprint.nbytes // 2)
    monkeypatch.setattr(cache_module, "run_hooked", None)  # the refusal comes before any pass
    with pytest.raises(ValueError) as refused:
        minigpt.run_with_cache(model, meta["prompts"]["clean"])
    message = str(refused.value)
    assert message.startswith("this activation cache would need about") and message.count(". ") == 0
    assert "lower names (fewer points kept)" in message


def test_attribution_equals_transformer_lens_and_adds_up(dense):
    model, meta, ref = dense
    for i, case in enumerate(meta["attribution"]):
        got = minigpt.attribute(model, meta["prompts"]["cache"], case["token"], versus=case["versus"],
                                position=case["position"], by=case["by"],
                                fold_value_biases=case["fold_value_biases"], centered=case["centered"])
        assert got.labels == case["labels"]
        assert relative_error(got.contributions, ref[f"attribution.{i}"]) <= RTOL, case
        assert abs(got.leftover - case["leftover"]) <= RTOL * max(abs(case["leftover"]), 1e-3)
        assert abs(got.total - got.logit) <= 1e-5 * np.abs(got.contributions).sum()
        assert got.to_json()["parts"][0]["label"] == case["labels"][0]


def test_an_attribution_that_does_not_add_up_is_refused(dense, monkeypatch):
    model, meta, _ = dense
    parts = attribution.head_parts
    monkeypatch.setattr(attribution, "head_parts", lambda *args: (lambda labels, p: (labels[:-1], p[:-1]))(
        *parts(*args)))  # the attention output biases forgotten
    with pytest.raises(ArithmeticError, match="add up to"):
        minigpt.attribute(model, meta["prompts"]["cache"], 3)


@pytest.mark.parametrize("where", ["resid_pre", "attn_out", "mlp_out", "head"])
def test_patching_equals_transformer_lens(dense, where):
    model, meta, ref = dense
    prompts, expected = meta["prompts"], meta["patch"]
    got = minigpt.patch(model, prompts["clean"], prompts["corrupted"], where)
    assert (got.answer, got.wrong) == (expected["answer"], expected["wrong"])
    values = ref[f"patch.{where}"]
    scale = max(np.ptp(values), abs(expected["clean_metric"] - expected["corrupted_metric"]))
    assert got.values.shape == values.shape and np.abs(got.values - values).max() <= RTOL * scale
    assert abs(got.clean_metric - expected["clean_metric"]) <= RTOL * scale
    assert abs(got.corrupted_metric - expected["corrupted_metric"]) <= RTOL * scale
    assert got.to_json()["axes"] == (["layer", "head"] if where == "head" else ["layer", "position"])


def test_patching_identities(dense):
    """The prompts differ at position 4 alone: the clean stream there at layer 0 makes the corrupted run clean;
    nothing patched before position 4 changes the corrupted run."""
    model, meta, _ = dense
    prompts = meta["prompts"]
    differ = int(np.flatnonzero(np.array(prompts["clean"]) != np.array(prompts["corrupted"]))[0])
    for where in ("resid_pre", "attn_out", "mlp_out"):
        got = minigpt.patch(model, prompts["clean"], prompts["corrupted"], where)
        tol = 1e-5 * max(abs(got.clean_metric), abs(got.corrupted_metric), 1.0)
        np.testing.assert_allclose(got.values[:, :differ], got.corrupted_metric, rtol=0, atol=tol)
        if where == "resid_pre":
            assert abs(got.values[0, differ] - got.clean_metric) <= tol
            np.testing.assert_allclose(got.recovered[0, differ], 1.0, atol=1e-3)


def test_head_detectors_equal_transformer_lens(dense):
    model, meta, ref = dense
    for kind in ("previous_token", "duplicate_token", "induction"):
        scores = minigpt.head_scores(model, meta["prompts"]["repeated"], kind)
        assert np.abs(scores.scores - ref[f"heads.{kind}"]).max() <= RTOL, kind
        excluded = minigpt.head_scores(model, meta["prompts"]["repeated"], kind, exclude_bos=True,
                                       exclude_current_token=True)
        assert np.abs(excluded.scores - ref[f"heads.{kind}.excluded"]).max() <= RTOL, kind
        assert scores.scores.dtype == np.float32 and scores.to_json()["kind"] == kind


def test_no_float64_in_the_hooked_pass_or_its_results(dense, monkeypatch):
    """Every array entering or leaving the pass's functions is float32, and so is every result's."""
    model, meta, _ = dense
    seen = []

    def checked(fn):
        def wrapper(*args, **kwargs):
            out = fn(*args, **kwargs)
            for value in [*args, *kwargs.values(), *(out if isinstance(out, tuple) else (out,))]:
                if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                    seen.append((fn.__name__, value.dtype))
            return out
        return wrapper

    for name in ("linear", "attention", "gelu", "normalize", "head_results", "block_step", "final_step"):
        monkeypatch.setattr(hooked, name, checked(getattr(hooked, name)))
    prompts = meta["prompts"]
    cache = minigpt.run_with_cache(model, prompts["cache"])
    results = [minigpt.attribute(model, prompts["cache"], 1, fold_value_biases=True, centered=True).contributions,
               minigpt.patch(model, prompts["clean"], prompts["corrupted"], "head").values,
               minigpt.patch(model, prompts["clean"], prompts["corrupted"], "resid_pre").values,
               minigpt.head_scores(model, prompts["repeated"], "induction").scores]
    assert {name for name, _ in seen} >= {"linear", "attention", "gelu", "normalize", "head_results", "block_step"}
    assert all(dtype == np.float32 for _, dtype in seen), [s for s in seen if s[1] != np.float32]
    assert all(a.dtype == np.float32 for a in [*cache.values(), cache.logits, *results])


def test_refusals_are_one_sentence(dense):
    model, meta, _ = dense
    prompts = meta["prompts"]
    cases = [(lambda: minigpt.patch(model, prompts["clean"], prompts["clean"][:-1], "head"), "same length"),
             (lambda: minigpt.patch(model, prompts["clean"], prompts["corrupted"], "heads"), "where must be"),
             (lambda: minigpt.patch(model, prompts["clean"], prompts["corrupted"], "head", answer=1, wrong=1),
              "two different tokens"),
             (lambda: minigpt.attribute(model, prompts["cache"], 1, by="neuron"), "by must be"),
             (lambda: minigpt.attribute(model, prompts["cache"], 10**6), "outside the model's vocabulary"),
             (lambda: minigpt.attribute(model, prompts["cache"], 1, position=12), "position must be"),
             (lambda: minigpt.head_scores(model, prompts["cache"], "copy"), "kind must be"),
             (lambda: minigpt.head_scores(model, prompts["cache"][:1], "induction"), "at least 2 tokens")]
    for call, words in cases:
        with pytest.raises(ValueError, match=words):
            call()


def test_patching_with_answer_and_wrong_given(dense):
    """answer and wrong given, swapped from the defaults: the sweep and the metrics change sign."""
    model, meta, _ = dense
    prompts = meta["prompts"]
    default = minigpt.patch(model, prompts["clean"], prompts["corrupted"], "mlp_out")
    swapped = minigpt.patch(model, prompts["clean"], prompts["corrupted"], "mlp_out", answer=default.wrong,
                            wrong=default.answer)
    np.testing.assert_allclose(swapped.values, -default.values, rtol=0, atol=1e-6 * np.abs(default.values).max())
    assert swapped.clean_metric == -default.clean_metric


def test_an_edit_at_a_named_point_is_what_the_pass_goes_on_with(dense):
    """An edit that returns a copy, at every point, changes no bit; zeroing a layer's attention output is the model
    without that layer's W_O and b_O; a uniform causal pattern gives each position the mean of the values."""
    model, meta, _ = dense
    ids = np.array([meta["prompts"]["cache"]])
    names = point_names(model.config)
    copied = hooked.run_hooked(model, ids, hooked.Hooks(edits={name: np.copy for name in names}))
    np.testing.assert_array_equal(copied, model(ids))
    zeroed = hooked.run_hooked(model, ids, hooked.Hooks(edits={"blocks.0.hook_attn_out": np.zeros_like}))
    params = {**model.params, "h": [dict(layer) for layer in model.params["h"]]}
    proj = model.params["h"][0]["attn"]["c_proj"]
    params["h"][0]["attn"] = {**params["h"][0]["attn"], "c_proj": {k: np.zeros_like(v) for k, v in proj.items()}}
    without = minigpt.GPT2(model.config, {k: v for k, v in params.items() if k != "lm_head"})
    np.testing.assert_allclose(zeroed, without(ids), rtol=0, atol=1e-5 * np.abs(zeroed).max())
    T = ids.shape[1]
    uniform = np.tril(np.ones((T, T), dtype=np.float32)) / np.arange(1, T + 1, dtype=np.float32)[:, None]
    hooks = hooked.Hooks(keep={"blocks.0.attn.hook_v", "blocks.0.attn.hook_z"},
                         edits={"blocks.0.attn.hook_pattern": lambda p: np.broadcast_to(uniform, p.shape)})
    hooked.run_hooked(model, ids, hooks)
    v, z = hooks.kept["blocks.0.attn.hook_v"][0], hooks.kept["blocks.0.attn.hook_z"][0]  # [T, H, D]
    np.testing.assert_allclose(z, np.cumsum(v, axis=0) / np.arange(1, T + 1)[:, None, None], rtol=1e-5, atol=1e-6)
