"""DoLa: token for token, and premature layer for premature layer, equal to transformers 4.46's
generate(dola_layers=...) (fixtures recorded by scripts/reference/dola.py on the 12-layer
tests/fixtures/dola-model); the candidate layers, the divergence and the contrast against their
definitions; the trace, the CLI and refusals."""

import json

import numpy as np
import pytest
from helpers import FIXTURES
from helpers import fixture_model as load
from helpers import log_softmax64, run_cli
from safetensors.numpy import load_file

import minigpt
from minigpt.call.strategies import build_options
from minigpt.sources.dola import RELATIVE_TOP, contrast, layer_divergence, premature_layers
from minigpt.strategies.options import OptionError

REFERENCE = json.loads((FIXTURES / "strategies" / "dola.json").read_text())
SCORES = load_file(str(FIXTURES / "strategies" / "dola.safetensors"))
CASES = {case["name"]: case for case in REFERENCE["cases"]}


@pytest.mark.parametrize("name", CASES)
def test_matches_transformers(name):
    """The tokens, and the premature layer chosen at each step (read off transformers' own contrast)."""
    case = CASES[name]
    out = minigpt.generate(load(REFERENCE["model"]), case["prompt"], trace_top=0, **case["options"])
    assert out.sequences[0] == case["sequence"]
    assert [step.state["dola_layer"] for step in out.steps[0]] == case["layers"]


def test_fixtures_exercise_dola():
    """The lens cases all depart from greedy and change layers between steps; without ln_f ("raw", as
    transformers reads) early layers are nearly flat and DoLa mostly keeps the greedy tokens."""
    lens = [c for c in CASES.values() if c["options"]["dola_read_out"] == "lens"]
    assert all(c["sequence"] != c["greedy"] for c in lens)
    assert any(len(set(c["layers"])) > 1 for c in lens)
    assert any(c["sequence"] != c["greedy"] for c in CASES.values() if c["options"]["dola_read_out"] == "raw")


@pytest.mark.parametrize("name", CASES)
def test_scores_match_transformers(name):
    """The scores after the chain at the first steps: -inf at the same tokens, the same finite values."""
    case = CASES[name]
    model, reference = load(REFERENCE["model"]), SCORES[name]  # [steps, V]
    out = minigpt.generate(model, case["prompt"], trace_top=model.config.vocab_size, **case["options"])
    for step, want in zip(out.steps[0], reference):
        kept = np.isfinite(want)
        assert sorted(c.id for c in step.candidates) == sorted(np.flatnonzero(kept).tolist())  # softmax of the scores
        probs = np.exp(want[kept] - want[kept].max())
        probs /= probs.sum()
        got = {c.id: c.p for c in step.candidates}
        np.testing.assert_allclose([got[i] for i in np.flatnonzero(kept)], probs, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("n_layer", sorted(int(n) for n in REFERENCE["candidate_layers"]))
def test_candidate_layers_as_transformers_chooses_them(n_layer):
    for which, want in REFERENCE["candidate_layers"][str(n_layer)].items():
        if want is None:  # transformers fails there (no layer); minigpt says so
            with pytest.raises(ValueError, match=f"dola_layers='{which}' names no layer of this {n_layer}-layer model"):
                premature_layers(n_layer, which)
        else:
            assert premature_layers(n_layer, which) == want
    assert premature_layers(n_layer, [0]) == [0]


def test_divergence_by_its_definition():
    """1/2 KL(m || q_N) + 1/2 KL(m || q_j), m the average: computed here in float64, term by term."""
    rng = np.random.default_rng(1)
    final = (3 * rng.normal(size=(2, 40))).astype(np.float32)
    premature = (3 * rng.normal(size=(3, 2, 40))).astype(np.float32)
    premature[1, 0] = final[0]  # a layer that agrees with the final one
    got = layer_divergence(final, premature)  # [L, B]
    for j in range(3):
        for b in range(2):
            p, q = np.exp(log_softmax64(final[b])), np.exp(log_softmax64(premature[j, b]))
            m = (p + q) / 2
            want = 0.5 * np.sum(m * np.log(m / p)) + 0.5 * np.sum(m * np.log(m / q))
            assert got[j, b] == pytest.approx(want, rel=1e-4, abs=1e-6)
    assert got[1, 0] == pytest.approx(0, abs=1e-6)
    np.testing.assert_allclose(layer_divergence(premature[0], final[None])[0], got[0], rtol=1e-5)  # symmetric


def test_contrast_by_its_definition():
    """log q_N - log q_M for tokens with q_N >= 0.1 max q_N; -inf for the rest; the top token always stays."""
    rng = np.random.default_rng(2)
    final, premature = ((2 * rng.normal(size=(4, 30))).astype(np.float32) for _ in range(2))
    got = contrast(final, premature)
    lf, lp = log_softmax64(final), log_softmax64(premature)
    plausible = np.exp(lf) >= RELATIVE_TOP * np.exp(lf).max(-1, keepdims=True)
    assert (np.isfinite(got) == plausible).all()
    np.testing.assert_allclose(got[plausible], (lf - lp)[plausible], rtol=1e-4, atol=1e-5)
    assert np.isfinite(got[np.arange(4), final.argmax(-1)]).all()


def test_each_row_chooses_its_own_layer():
    """Per-row choice (the paper's): a prompt continues the same way alone or in a batch. transformers
    averages the divergence over the batch and would couple the rows."""
    model = load(REFERENCE["model"])
    cases = [CASES["lens-low"], CASES["lens-one-token-prompt"], CASES["lens-list"]]
    prompts = [case["prompt"] for case in cases]
    out = minigpt.generate(model, prompts, dola_layers="low", dola_read_out="lens", max_new_tokens=16, eos_token_id=256)
    for prompt, seq, steps in zip(prompts, out.sequences, out.steps):
        alone = minigpt.generate(model, prompt, dola_layers="low", dola_read_out="lens", max_new_tokens=16, eos_token_id=256)
        assert alone.sequences[0] == seq
        assert [s.state for s in alone.steps[0]] == [s.state for s in steps]
    assert out.sequences[0] == CASES["lens-low"]["sequence"]


def test_the_default_read_out_is_the_logit_lens():
    """The issue's "logit-lens read-out" is the default; "raw" (transformers 4.46's) must be asked for."""
    model = load(REFERENCE["model"])
    case = CASES["lens-low"]
    default = minigpt.generate(model, case["prompt"], dola_layers="low", max_new_tokens=16, eos_token_id=256)
    assert default.sequences[0] == case["sequence"]
    assert "read_out='lens'" in default.chain[0]


def test_read_outs_differ_only_by_the_final_norm():
    """"lens" reads the premature layers as unembed(ln_f(residual)), "raw" as unembed(residual); with a
    single candidate layer the first step's scores are then fixed by the definition."""
    model = load(REFERENCE["model"])
    prompt = CASES["raw-one-layer"]["prompt"]
    result = model.forward(np.array([prompt]), model.new_cache(1, len(prompt)), inspect=True)
    final = result.logits[:, -1]  # [1, V]
    for read_out, premature in (("raw", model.unembed(result.residuals[7][:, -1])),
                                ("lens", model.read_out(result.residuals[7][:, -1]))):
        out = minigpt.generate(model, prompt, dola_layers=[7], dola_read_out=read_out, max_new_tokens=1,
                               eos_token_id=256, trace_top=256)
        assert out.sequences[0] == [int(contrast(final, premature)[0].argmax())]
        assert out.steps[0][0].state == {"dola_layer": 7}


def test_sampling_with_dola():
    model = load(REFERENCE["model"])
    case = CASES["lens-high"]
    top1 = minigpt.generate(model, case["prompt"], "sample", top_k=1, seed=1, **case["options"])
    assert top1.sequences[0] == case["sequence"]
    assert [s.state["dola_layer"] for s in top1.steps[0]] == case["layers"]


def test_cli_json_and_trace(capsys):
    model = str(FIXTURES / "fullvocab")  # 2 layers: "low" is [1]
    code, out, _ = run_cli(capsys, "generate", "The dog", "--model", model, "--json", "--trace", "--max-new-tokens", "4",
                           "--dola-layers", "0,1", "--dola-read-out", "lens", "--repetition-penalty", "1.2")
    assert code == 0
    result = json.loads(out)
    assert result["chain"][0] == "dola(layers=[0, 1], read_out='lens', relative_top=0.1)"
    assert result["chain"][1].startswith("repetition_penalty")
    tok = minigpt.Tokenizer()
    want = minigpt.generate(minigpt.load(model), tok.encode("The dog"), max_new_tokens=4, dola_layers=[0, 1],
                            dola_read_out="lens", repetition_penalty=1.2)
    assert result["sequences"][0]["tokens"] == want.sequences[0]
    assert [s["state"] for s in result["sequences"][0]["steps"]] == [s.state for s in want.steps[0]]
    code, out, _ = run_cli(capsys, "generate", "The dog", "--model", model, "--trace", "--max-new-tokens", "2",
                           "--dola-layers", "low")
    assert code == 0 and out.count("[dola_layer=1]") == 2


@pytest.mark.parametrize("options, needle", [
    (dict(dola_layers="middle"), "dola_layers must be 'low', 'high' or a non-empty list of layer indices"),
    (dict(dola_layers=[]), "dola_layers must be 'low', 'high' or a non-empty list"),
    (dict(dola_layers=[-1]), "dola_layers must be 'low', 'high' or a non-empty list"),
    (dict(dola_layers=[True]), "dola_layers must be 'low', 'high' or a non-empty list"),
    (dict(dola_layers="2,4"), "dola_layers must be 'low', 'high' or a non-empty list"),
    (dict(dola_layers=[1, 12]), "dola_layers must name layers in [0, 12) of this 12-layer model"),
    (dict(dola_layers="low", dola_read_out="ln_f"), "dola_read_out must be one of raw, lens"),
    (dict(dola_read_out="lens"), "dola_read_out is used only with dola_layers"),
    (dict(dola_layers="low", guidance_scale=1.5), "guidance_scale and dola_layers cannot be combined"),
])
def test_bad_values_are_refused(options, needle):
    with pytest.raises(ValueError) as error:
        minigpt.generate(load(REFERENCE["model"]), [1, 2, 3], max_new_tokens=3, **options)
    assert needle in str(error.value)
    assert str(error.value).count(". ") == 0  # one sentence


def test_low_on_a_three_layer_model_is_refused():
    with pytest.raises(ValueError, match="dola_layers='low' names no layer of this 3-layer model; list the layers"):
        minigpt.generate(load("odd-f16"), [1, 2], dola_layers="low", max_new_tokens=2)


@pytest.mark.parametrize("strategy", ["beam", "beam-sample", "diverse-beam", "contrastive", "speculative"])
def test_other_strategies_refuse_dola(strategy):
    with pytest.raises(OptionError, match=f"strategy '{strategy}' does not use dola_layers; it is an option of: greedy, sample"):
        build_options(strategy, dola_layers="low")


def test_cli_refuses_bad_layers_in_one_line(capsys):
    code, out, err = run_cli(capsys, "generate", "The dog", "--model", str(FIXTURES / "fullvocab"), "--dola-layers", "0,2")
    assert code == 1 and out == ""
    assert err.startswith("minigpt: error: --dola-layers must name layers in [0, 2)") and err.count("\n") == 1
