"""Classifier-free guidance: token-for-token equal to transformers' generate(guidance_scale=...,
negative_prompt_ids=...) and its processed scores (fixtures recorded by scripts/reference/guidance.py),
the formula against an independent computation, the batch sharing, the CLI, and refusals."""

import json

import numpy as np
import pytest
from conftest import assert_close
from helpers import FIXTURES
from helpers import fixture_model as load
from helpers import log_softmax64, run_cli
from safetensors.numpy import load_file

import minigpt
from minigpt.call.strategies import build_options
from minigpt.core.model import left_pad
from minigpt.sources.guidance import Guided, guided_log_probs
from minigpt.sources.model_scores import Batch
from minigpt.strategies.options import OptionError

REFERENCE = json.loads((FIXTURES / "strategies" / "guidance.json").read_text())
SCORES = load_file(str(FIXTURES / "strategies" / "guidance.safetensors"))
CASES = {case["name"]: case for case in REFERENCE["cases"]}
SAD = "A very sad and gloomy story:"


def options_of(case):
    negative = case["negative_prompt_ids"]
    return dict(case["options"], **({} if negative is None else {"negative_prompt_ids": negative}))


@pytest.mark.parametrize("name", CASES)
def test_matches_transformers(name):
    case = CASES[name]
    out = minigpt.generate(load(case["model"]), case["prompts"], "greedy", **options_of(case))
    assert out.sequences == case["sequences"]
    eos = case["options"]["eos_token_id"]
    assert out.finish_reasons == ["eos" if seq[-1:] == [eos] else "length" for seq in case["sequences"]]


def test_fixtures_exercise_guidance():
    """Guided cases must differ from greedy, or the replay would prove little; scale 1 must not."""
    for case in CASES.values():
        assert (case["sequences"] == case["greedy"]) == (case["options"]["guidance_scale"] == 1), case["name"]


def definition_scores(model, prompt, negative, generated, scale):
    """The guided scores by the paper's formula, each context run alone through model(ids), in float64."""
    unconditional = (negative or [model.config.eos_token_id]) if negative is not None else prompt[-1:]
    cond = model(prompt + generated)[-1]  # [V]
    uncond = model(unconditional + generated)[-1]
    lc, lu = log_softmax64(cond), log_softmax64(uncond)
    return lu + scale * (lc - lu)


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if "scores" in case])
def test_scores_match_transformers_and_the_definition(name):
    """The scores the chain starts from (the Guided source over the shared batch), at the first steps,
    equal transformers' processed scores and the formula computed here."""
    case = CASES[name]
    model, reference = load(case["model"]), SCORES[case["scores"]]  # [steps, B, V]
    options = build_options("greedy", **options_of(case))
    ids, mask = left_pad(case["prompts"], 0)
    batch = Batch(model=model, ids=ids, mask=mask, max_new_tokens=options.max_new_tokens, pad_token_id=0)
    source = Guided(batch, options.guidance_scale, options.negative_prompt_ids)
    _, scores, _ = source.start()
    for step in range(reference.shape[0]):
        assert_close(scores, reference[step], rtol=1e-4, what=f"guided scores at step {step + 1}")
        tokens = np.array([seq[step] for seq in case["sequences"]])
        for row, prompt in enumerate(case["prompts"]):
            generated = [seq[:step] for seq in case["sequences"]][row]
            want = definition_scores(model, prompt, case["negative_prompt_ids"], generated, options.guidance_scale)
            np.testing.assert_allclose(scores[row], want, rtol=1e-4, atol=1e-3 * np.abs(want).max())
        _, scores, _ = source.advance(tokens)


def test_formula_and_its_limits():
    rng = np.random.default_rng(0)
    cond, uncond = (rng.normal(size=(3, 50)).astype(np.float32) * 4 for _ in range(2))
    lc, lu = log_softmax64(cond), log_softmax64(uncond)
    for g in (0.0, 0.5, 1.0, 1.5, 3.0):
        out = guided_log_probs(cond, uncond, g)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, lu + g * (lc - lu), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(guided_log_probs(cond, uncond, 1.0), lc, atol=1e-5)  # g = 1: the prompt alone
    np.testing.assert_allclose(guided_log_probs(cond, uncond, 0.0), lu, atol=1e-5)  # g = 0: the negative prompt alone


def test_batch_rows_continue_as_they_would_alone():
    """The unconditional rows share the batch with the prompts (left padding for their lengths): each prompt
    with its own negative prompt, of any length, gives what it gives alone."""
    model = load("fullvocab")
    tok = minigpt.Tokenizer()
    prompts = [tok.encode("The dog"), tok.encode("Hello, my dog is a little"), tok.encode("Today, I")]
    negatives = [tok.encode(SAD), tok.encode("Yes"), []]  # [] is the empty negative prompt: <|endoftext|>
    batch = minigpt.generate(model, prompts, guidance_scale=2.0, negative_prompt_ids=negatives, max_new_tokens=8)
    for prompt, negative, seq in zip(prompts, negatives, batch.sequences):
        alone = minigpt.generate(model, prompt, guidance_scale=2.0, negative_prompt_ids=negative, max_new_tokens=8)
        assert alone.sequences[0] == seq
    shared = minigpt.generate(model, prompts, guidance_scale=2.0, negative_prompt_ids=negatives[0], max_new_tokens=8)
    assert shared.sequences[0] == batch.sequences[0]


def test_sampling_with_guidance():
    """Sampling draws from the guided distribution: top_k=1 is guided greedy; each returned sequence uses its
    own prompt's negative prompt; the same seed gives the same text."""
    model = load("fullvocab")
    tok = minigpt.Tokenizer()
    prompts, negatives = [tok.encode("The dog"), tok.encode("Today, I")], [tok.encode(SAD), tok.encode("Yes")]
    common = dict(guidance_scale=3.0, negative_prompt_ids=negatives, max_new_tokens=6)
    greedy = minigpt.generate(model, prompts, **common).sequences
    top1 = minigpt.generate(model, prompts, "sample", top_k=1, num_return_sequences=2, seed=3, **common)
    assert top1.sequences == [greedy[0], greedy[0], greedy[1], greedy[1]]
    a = minigpt.generate(model, prompts, "sample", seed=5, **common)
    b = minigpt.generate(model, prompts, "sample", seed=5, **common)
    assert a.sequences == b.sequences


def test_trace_lists_guidance_first_and_keeps_the_model_distribution():
    model = load("fullvocab")
    tok = minigpt.Tokenizer()
    prompt = tok.encode("The dog")
    out = minigpt.generate(model, prompt, guidance_scale=3.0, negative_prompt_ids=tok.encode(SAD),
                           repetition_penalty=1.3, max_new_tokens=4, trace_top=3)
    assert out.chain[0].startswith("classifier_free_guidance(scale=3.0") and out.chain[1].startswith("repetition_penalty")
    logits = model(prompt + out.sequences[0])  # [T, V] the conditional model, without guidance
    logprobs = log_softmax64(logits)[len(prompt) - 1 : -1]
    for step, token, lp in zip(out.steps[0], out.sequences[0], logprobs):
        assert step.logprob == pytest.approx(lp[token], abs=1e-4)  # the trace keeps the model's own log p
        assert step.raw_candidates[0].id == int(lp.argmax())
    assert out.scores[0] == pytest.approx(sum(s.logprob for s in out.steps[0]), abs=1e-4)
    assert any(step.candidates[0].id != step.raw_candidates[0].id for step in out.steps[0])  # guidance changed a choice


def test_cli_matches_transformers(capsys):
    case = CASES["fullvocab/scale3-negative"]
    code, out, _ = run_cli(capsys, "generate", "The dog", "--model", str(FIXTURES / "fullvocab"), "--json",
                           "--max-new-tokens", "12", "--guidance-scale", "3", "--negative-prompt", SAD)
    assert code == 0
    result = json.loads(out)
    assert result["prompt_tokens"] == case["prompts"][0]
    assert result["sequences"][0]["tokens"] == case["sequences"][0]
    assert result["chain"][0].startswith("classifier_free_guidance(scale=3.0, unconditional='negative prompt')")


def test_cli_default_unconditional_context(capsys):
    case = CASES["fullvocab/scale1.5"]
    code, out, _ = run_cli(capsys, "generate", "The dog", "--model", str(FIXTURES / "fullvocab"), "--json",
                           "--max-new-tokens", "12", "--guidance-scale", "1.5")
    assert code == 0 and json.loads(out)["sequences"][0]["tokens"] == case["sequences"][0]


@pytest.mark.parametrize("options, needle", [
    (dict(guidance_scale=float("nan")), "guidance_scale must be a number in [0, 1000]"),
    (dict(guidance_scale=-0.5), "guidance_scale must be a number in [0, 1000]"),
    (dict(guidance_scale=1e4), "guidance_scale must be a number in [0, 1000]"),
    (dict(guidance_scale="2"), "guidance_scale must be a number"),
    (dict(guidance_scale=True), "guidance_scale must be a number"),
    (dict(negative_prompt_ids=[1, 2]), "negative_prompt_ids is used only with guidance_scale"),
    (dict(guidance_scale=2, negative_prompt_ids="sad"), "negative_prompt_ids must be a list of token ids"),
    (dict(guidance_scale=2, negative_prompt_ids=[1, -2]), "negative_prompt_ids must be a list of token ids"),
    (dict(guidance_scale=2, negative_prompt_ids=[[1], [2], [3]]), "negative_prompt_ids holds 3 negative prompts for 2 prompts"),
    (dict(guidance_scale=2, negative_prompt_ids=[60000]), "token id 60000 is outside the model's vocabulary"),
    (dict(guidance_scale=2, negative_prompt_ids=[1] * 1020), "the negative prompt (1020 tokens) plus max_new_tokens (5)"),
    (dict(guidance_scale=2, dola_layers="low"), "guidance_scale and dola_layers cannot be combined"),
])
def test_bad_values_are_refused(options, needle):
    with pytest.raises(ValueError) as error:
        minigpt.generate(load("fullvocab"), [[464, 3290], [464]], max_new_tokens=5, **options)
    assert needle in str(error.value)
    assert str(error.value).count(". ") == 0  # one sentence


@pytest.mark.parametrize("strategy", ["beam", "beam-sample", "diverse-beam", "contrastive", "speculative"])
def test_other_strategies_refuse_guidance(strategy):
    with pytest.raises(OptionError, match=f"strategy '{strategy}' does not use guidance_scale; it is an option of: greedy, sample"):
        build_options(strategy, guidance_scale=2.0)


def test_cli_refuses_bad_scale_in_one_line(capsys):
    code, out, err = run_cli(capsys, "generate", "The dog", "--model", str(FIXTURES / "fullvocab"), "--guidance-scale", "-1")
    assert code == 1 and out == ""
    assert err.startswith("minigpt: error: --guidance-scale must be") and err.count("\n") == 1
