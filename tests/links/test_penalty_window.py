"""penalty_last_n: the repetition, frequency and presence penalties over llama.cpp's window of the last N tokens,
the prompt's included.

- llama.cpp's own test cases (tests/fixtures/llama/test_sampling.json, transcribed from its tests/test-sampling.cpp
  by scripts/reference/llama_test_sampling.py) replayed: the tokens its sampler accepted are the prompt;
- without penalty_last_n the frequency and presence penalties count only generated tokens, so the cases that
  count the prompt are not reproduced: the default keeps minigpt's rule;
- the window against its definition, in plain Python, with left padding; end to end through generate() and the CLI.
"""

import json
from collections import Counter

import numpy as np
import pytest
from helpers import CHECKOUT, fixture_model, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

import minigpt
from minigpt.core.links import RepetitionPenalty
from minigpt.core.numerics import softmax
from minigpt.links.chain import build_chain
from minigpt.links.penalties import FrequencyPresencePenalty
from minigpt.strategies.options import OptionError

CASES = json.loads((CHECKOUT / "tests" / "fixtures" / "llama" / "test_sampling.json").read_text())
BOUNDED = settings(max_examples=60, deadline=None)


def llama_case(case, window: bool):
    """The probabilities after minigpt's chain for one of llama.cpp's test_penalties cases: its accepted tokens as
    the prompt, llama.cpp's window over all of them when `window`."""
    logits = np.log(np.asarray([case["probs"]], dtype=np.float32))  # [1, V] llama.cpp's logf(p)
    ids = np.asarray([case["last_tokens"]], dtype=np.int64)  # [1, t]
    chain = build_chain(sampling=False, prompt_length=ids.shape[1], eos_token_id=0, vocab_size=logits.shape[1],
                        repetition_penalty=case["repeat_penalty"], frequency_penalty=case["frequency_penalty"],
                        presence_penalty=case["presence_penalty"], penalty_last_n=ids.shape[1] if window else None)
    return softmax(chain(logits, ids))[0]


@pytest.mark.parametrize("case", CASES["penalties"], ids=lambda c: f"{c['last_tokens']}-{c['repeat_penalty']}-"
                         f"{c['frequency_penalty']}")
def test_llama_cpp_test_sampling_penalties_are_reproduced_with_the_window(case):
    np.testing.assert_allclose(llama_case(case, window=True), case["expected"], atol=CASES["source"]["tolerance"])


def test_without_the_window_the_cases_that_count_the_prompt_are_not_reproduced():
    """The repetition penalty counts the prompt either way (as transformers); the frequency and presence penalties
    count only generated tokens unless penalty_last_n is given, and then these cases differ."""
    tolerance = CASES["source"]["tolerance"]
    for case in CASES["penalties"]:
        reproduced = np.allclose(llama_case(case, window=False), case["expected"], atol=tolerance)
        assert reproduced == (case["frequency_penalty"] == 0 and case["presence_penalty"] == 0), case


def window_counts(row, last_n, pad, prompt_length):
    """How often each token counts for the frequency and presence penalties, from the definition."""
    if last_n is None:
        return Counter(row[prompt_length:])
    start = max(pad, 0 if last_n == -1 else len(row) - last_n)
    return Counter(row[start:])


@BOUNDED
@given(st.integers(1, 3), st.integers(0, 12), st.one_of(st.none(), st.integers(-1, 14)), st.data())
def test_the_window_counts_what_llama_cpp_counts(batch, t, last_n, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    vocab = 7
    ids = rng.integers(0, 4, size=(batch, t))
    pads = [data.draw(st.integers(0, t)) for _ in range(batch)]
    prompt_length = data.draw(st.integers(0, t))
    logits = rng.normal(size=(batch, vocab)).astype(np.float32)
    out = FrequencyPresencePenalty(0.5, 0.25, last_n, prompt_length=prompt_length, prompt_ignore_length=pads)(logits,
                                                                                                             ids)
    rep = RepetitionPenalty(2.0, last_n=last_n, prompt_ignore_length=pads)(logits, ids)
    for b in range(batch):
        counts = window_counts(ids[b].tolist(), last_n, pads[b], prompt_length)
        expected = [logits[b, j] - 0.5 * counts[j] - 0.25 * (counts[j] > 0) for j in range(vocab)]
        np.testing.assert_allclose(out[b], expected, rtol=1e-6, atol=1e-6)
        seen = window_counts(ids[b].tolist(), -1 if last_n is None else last_n, pads[b], 0)
        for j in range(vocab):
            x = logits[b, j]
            assert rep[b, j] == (np.float32(x * 2) if x < 0 else np.float32(x / 2)) if seen[j] else rep[b, j] == x


def test_zero_counts_nothing_as_llama_cpp():
    ids, logits = np.array([[1, 1, 2]]), np.zeros((1, 4), np.float32)
    assert (FrequencyPresencePenalty(1.0, 1.0, 0)(logits, ids) == 0).all()
    assert (RepetitionPenalty(2.0, last_n=0)(logits - 1, ids) == -1).all()


def test_generate_and_the_cli_take_the_window(capsys):
    model = fixture_model("tiny-hub")
    prompt = [5, 6, 5, 6, 5, 6, 5]
    plain = minigpt.generate(model, prompt, presence_penalty=2.0, max_new_tokens=8)
    same = minigpt.generate(model, prompt, presence_penalty=2.0, max_new_tokens=8, penalty_last_n=None)
    windowed = minigpt.generate(model, prompt, presence_penalty=2.0, max_new_tokens=8, penalty_last_n=64)
    assert plain.sequences == same.sequences and plain.chain == same.chain
    assert windowed.chain[0] == "frequency_presence_penalty(frequency=0.0, presence=2.0, last_n=64)"
    assert 5 not in windowed.sequences[0][:1] and 6 not in windowed.sequences[0][:1]  # the prompt's tokens count
    code, out, err = run_cli(capsys, "generate", "The file", "--model", "tiny", "--presence-penalty", "1",
                             "--penalty-last-n", "3", "--max-new-tokens", "3", "--show-candidates", "1")
    assert code == 0 and "last_n=3" in out
    with pytest.raises(OptionError, match=r"^penalty_last_n must be an integer >= -1, got -2"):
        minigpt.generate(model, prompt, penalty_last_n=-2)
