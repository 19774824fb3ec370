"""Prompt lookup decoding (strategies/prompt_lookup.py): greedy's text token for token, with fewer passes of the
model where the text repeats itself, and transformers' generate(prompt_lookup_num_tokens=...) on recorded and live
cases: the same tokens and the same number of forward passes (so the same drafts: the same n-gram rules)."""

import json

import numpy as np
import pytest
from helpers import FIXTURES, run_cli

import minigpt
from minigpt.core.checks import OptionError
from minigpt.strategies.prompt_lookup import lookup

RECORD = json.loads((FIXTURES / "strategies" / "prompt_lookup.json").read_text())
REPEATING = "for i in range(10): print(i)\nfor j in range(10): print(j)\nfor k in range(10): print"


def lookup_options(case) -> dict:
    return {k: case[k] for k in ("prompt_lookup_num_tokens", "max_matching_ngram_size") if k in case}


@pytest.mark.parametrize("sequence, most, ngram, eos, drafts", [
    ([5, 6, 7, 8, 5, 6], 10, 2, None, [7, 8, 5, 6]),  # the docstring's examples
    ([5, 6, 7, 8, 9, 6], 10, 2, None, [7, 8, 9, 6]),
    ([5, 6, 7], 10, 2, None, []),
    ([1, 2, 3, 1, 2, 4, 1, 2], 10, 2, None, [3, 1, 2, 4, 1, 2]),  # the first (leftmost) occurrence
    ([1, 2, 3, 1, 2, 4, 1, 2], 2, 2, None, [3, 1]),  # at most `most`
    ([9, 1, 2, 3, 4, 2, 3], 10, 2, 4, []),  # cut before end-of-text, not looked up elsewhere
    ([4, 1, 2, 3, 9, 5, 2, 3], 10, 1, None, [9, 5, 2, 3]),  # n-grams of one token only: 3 seen at 3
    ([2], 10, 2, None, []),  # nothing before the last token
])
def test_lookup(sequence, most, ngram, eos, drafts):
    assert lookup(sequence, most, ngram, eos) == drafts


@pytest.mark.parametrize("case", RECORD["cases"], ids=lambda c: f"{c['prompt'][:3]}-{lookup_options(c)}")
def test_recorded_transformers_prompt_lookup(case):
    model = minigpt.load(FIXTURES / RECORD["checkpoint"])
    out = minigpt.generate(model, case["prompt"], "prompt-lookup", max_new_tokens=case["max_new_tokens"],
                           eos_token_id=RECORD["eos_token_id"], **lookup_options(case), **case["options"])
    assert out.sequences[0] == case["tokens"] == case["greedy"]
    assert out.stats["forward_passes"] == case["passes"]  # transformers' passes: its first includes the prompt


def test_prompt_lookup_matches_transformers_live():
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from scripts.reference.common import reference_model
    from scripts.reference.prompt_lookup import EOS, reference_prompt_lookup
    theirs, ours = reference_model(FIXTURES / RECORD["checkpoint"]), minigpt.load(FIXTURES / RECORD["checkpoint"])
    rng = np.random.default_rng(24)
    for _ in range(4):
        motif = rng.integers(0, 998, size=int(rng.integers(2, 6))).tolist()
        prompt = (motif * 4)[: int(rng.integers(5, 4 * len(motif) + 1))]
        num_tokens, ngram = int(rng.integers(1, 12)), int(rng.integers(1, 4))
        expected = reference_prompt_lookup(theirs, prompt, num_tokens, ngram, 24, {})
        out = minigpt.generate(ours, prompt, "prompt-lookup", max_new_tokens=24, eos_token_id=EOS,
                               prompt_lookup_num_tokens=num_tokens, max_matching_ngram_size=ngram)
        assert out.sequences[0] == expected["tokens"] == expected["greedy"]
        assert out.stats["forward_passes"] == expected["passes"]


@pytest.mark.parametrize("options", [{}, {"prompt_lookup_num_tokens": 1, "max_matching_ngram_size": 1},
                                     {"prompt_lookup_num_tokens": 10, "max_matching_ngram_size": 4},
                                     {"repetition_penalty": 1.2, "no_repeat_ngram_size": 4},
                                     {"stop": [")\n"]}, {"min_new_tokens": 5, "eos_token_id": 198}])
def test_token_equal_to_greedy(options):
    model, tok = minigpt.load("tiny"), minigpt.Tokenizer()
    ids = tok.encode(REPEATING)
    greedy = minigpt.generate(model, ids, max_new_tokens=40, **{k: v for k, v in options.items()
                                                                if k not in lookup_options(options)})
    lookup_run = minigpt.generate(model, ids, "prompt-lookup", max_new_tokens=40, **options)
    assert lookup_run.sequences == greedy.sequences and lookup_run.texts == greedy.texts
    assert [s.token for s in lookup_run.steps[0]] == greedy.sequences[0]
    np.testing.assert_allclose([s.logprob for s in lookup_run.steps[0]], [s.logprob for s in greedy.steps[0]],
                               atol=2e-5)


def test_its_stats_are_speculative_decodings():
    """The same figures as speculative decoding, from the same function: on a text that repeats, drafts are kept
    and each pass of the model gives more than one token."""
    model, tok = minigpt.load("tiny"), minigpt.Tokenizer()
    out = minigpt.generate(model, tok.encode(REPEATING), "prompt-lookup", max_new_tokens=40)
    s = out.stats
    assert set(s) == {"drafted", "accepted", "acceptance_rate", "forward_passes", "tokens_per_pass"}
    assert 0 < s["accepted"] <= s["drafted"] and s["acceptance_rate"] == pytest.approx(s["accepted"] / s["drafted"])
    assert s["tokens_per_pass"] == pytest.approx(len(out.sequences[0]) / s["forward_passes"]) and s["tokens_per_pass"] > 1
    assert s["forward_passes"] + s["accepted"] == len(out.sequences[0])  # each pass: its accepted drafts and one more
    speculative = minigpt.generate(model, tok.encode(REPEATING), "speculative", draft_model=model, max_new_tokens=40)
    assert set(speculative.stats) == set(s)


def test_the_command_line_prints_the_stats_as_speculative_decodings(capsys):
    code, out, err = run_cli(capsys, "generate", REPEATING, "--model", "tiny", "--strategy", "prompt-lookup",
                             "--prompt-lookup-num-tokens", "10", "--max-matching-ngram-size", "2",
                             "--max-new-tokens", "20")
    assert code == 0 and err.startswith("drafted: ") and "acceptance_rate: " in err and "tokens_per_pass: " in err
    code, greedy, _ = run_cli(capsys, "generate", REPEATING, "--model", "tiny", "--max-new-tokens", "20")
    assert out == greedy


@pytest.mark.parametrize("call, refusal", [
    ({"strategy": "greedy", "prompt_lookup_num_tokens": 4},
     "strategy 'greedy' does not use prompt_lookup_num_tokens; it is an option of: prompt-lookup"),
    ({"strategy": "speculative", "max_matching_ngram_size": 3},
     "strategy 'speculative' does not use max_matching_ngram_size; it is an option of: prompt-lookup"),
    ({"strategy": "prompt-lookup", "temperature": 0.7}, "strategy 'prompt-lookup' does not use temperature"),
    ({"strategy": "prompt-lookup", "prompt_lookup_num_tokens": 0}, "prompt_lookup_num_tokens must be an integer >= 1"),
    ({"strategy": "prompt-lookup", "max_matching_ngram_size": 0}, "max_matching_ngram_size must be an integer >= 1"),
])
def test_refusals_name_the_option_and_its_strategy(call, refusal):
    call = dict(call)
    with pytest.raises(OptionError, match="^" + refusal.replace("(", r"\(")):
        minigpt.generate(minigpt.load("tiny"), [464, 318], call.pop("strategy"), max_new_tokens=2, **call)


def test_one_prompt_at_a_time():
    with pytest.raises(ValueError, match=r"^prompt lookup decoding takes one prompt at a time \(got 2\)"):
        minigpt.generate(minigpt.load("tiny"), [[464, 318], [464]], "prompt-lookup", max_new_tokens=2)
