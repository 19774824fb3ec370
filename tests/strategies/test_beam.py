"""Beam search, beam sampling and diverse beam search (minigpt/sampling/beam.py) against transformers.

The fixtures in tests/fixtures/strategies/ come from scripts/reference/beam.py:
- beam.json: transformers 5.x generate(num_beams=..., do_sample=False) over num_beams, length_penalty,
  early_stopping, num_return_sequences, the shared logit processors, end-of-text early and late, and
  left-padded batches; ours must return the same tokens and the same sequences_scores.
- diverse_beam.json: the same for transformers 4.46's group beam search (num_beam_groups, diversity_penalty).
Beam sampling cannot follow torch's random numbers token for token, so it is checked by its invariants:
the same seed gives the same result, its tokens come from the warped distribution, its draw without
replacement has the probabilities of torch.multinomial's, and as the temperature goes to 0 it becomes
beam search.
"""

import hashlib
import itertools
import json

import numpy as np
import pytest
from conftest import load_model
from helpers import FIXTURES, options_of

import minigpt
from minigpt.core.numerics import log_softmax
from minigpt.strategies.beam import sampled_candidates

STRATEGIES = FIXTURES / "strategies"
RECORDED = {strategy: json.loads((STRATEGIES / name).read_text())
            for strategy, name in (("beam", "beam.json"), ("diverse-beam", "diverse_beam.json"))}
SCORE_RTOL = 1e-4


def replay(strategy):
    """Every recorded case of a strategy through minigpt: the ones whose tokens or scores differ."""
    wrong = []
    for case in RECORDED[strategy]["cases"]:
        out = minigpt.generate(load_model(case["checkpoint"]), case["prompts"], strategy, trace_top=0,
                               **options_of(case))
        if out.sequences != case["expected"] or not np.allclose(out.scores, case["scores"], rtol=SCORE_RTOL, atol=0):
            wrong.append(f"{case['name']}: transformers {case['expected']} {case['scores']}, "
                         f"minigpt {out.sequences} {out.scores}")
    return wrong


@pytest.mark.parametrize("strategy", list(RECORDED))
def test_recorded_on_these_checkpoints(strategy):
    for name, digest in RECORDED[strategy]["checkpoints"].items():
        path = FIXTURES / name / "model.safetensors"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, (
            f"{path} changed since {strategy} was recorded; run python -m scripts.reference.beam again "
            f"(with --diverse under transformers 4.46 for diverse_beam.json).")


@pytest.mark.parametrize("strategy", list(RECORDED))
def test_matches_transformers(strategy):
    wrong = replay(strategy)
    assert not wrong, f"{len(wrong)} of {len(RECORDED[strategy]['cases'])} cases differ:\n" + "\n".join(wrong[:5])


@pytest.mark.parametrize("strategy", list(RECORDED))
def test_fixtures_cover_the_options(strategy):
    """The recorded cases exercise what they are meant to: every early_stopping and length_penalty
    value, several returned sequences, beams ending in end-of-text, batches, processors."""
    cases = RECORDED[strategy]["cases"]
    options = [c["options"] for c in cases]
    assert {str(o.get("early_stopping")) for o in options} >= {"True", "False", "never"}
    assert {-1.0, 0.0, 1.0, 2.0} <= {o.get("length_penalty") for o in options}
    assert any(o.get("num_return_sequences", 1) > 1 for o in options)
    assert sum(s[-1] == c["options"]["eos_token_id"] for c in cases for s in c["expected"] if s) >= 50
    assert any(len(c["prompts"]) == 2 and len(set(map(len, c["prompts"]))) == 2 for c in cases)
    for name in ("no_repeat_ngram_size", "repetition_penalty", "min_new_tokens", "bad_words_ids", "logit_bias"):
        assert any(name in o for o in options), name
    if strategy == "diverse-beam":
        assert {o["num_beam_groups"] for o in options} >= {2, 3}
        assert RECORDED[strategy]["transformers"].startswith("4.")


# ----------------------------------------------------------------------------- invariants


@pytest.fixture(scope="module")
def model():
    return load_model("tiny-hub")


PROMPTS = [[17, 250, 3, 999, 42], [5, 600, 71], [800, 801, 802, 803, 804, 805, 806]]


def ending_token(model, prompt, position=2):
    """A token that greedy decoding produces at `position`: as end-of-text, it ends some beams."""
    out = minigpt.generate(model, prompt, max_new_tokens=position + 1, eos_token_id=model.config.vocab_size - 1)
    return out.sequences[0][position]


@pytest.mark.parametrize("early_stopping", [True, False])
def test_one_beam_is_greedy(model, early_stopping):
    for prompt, position in itertools.product(PROMPTS, (2, 5)):
        eos = ending_token(model, prompt, position)
        greedy = minigpt.generate(model, prompt, max_new_tokens=10, eos_token_id=eos)
        beam = minigpt.generate(model, prompt, "beam", num_beams=1, length_penalty=0.0,
                                early_stopping=early_stopping, max_new_tokens=10, eos_token_id=eos)
        assert beam.sequences == greedy.sequences
        assert beam.finish_reasons == greedy.finish_reasons
        np.testing.assert_allclose(beam.scores, greedy.scores, rtol=1e-5)  # both sum log p when nothing is processed


def test_sorted_best_first_and_each_prompt_alone(model):
    options = dict(num_beams=4, num_return_sequences=4, max_new_tokens=9, eos_token_id=ending_token(model, PROMPTS[0]))
    batch = minigpt.generate(model, PROMPTS, "beam", **options)
    for row, prompt in enumerate(PROMPTS):
        alone = minigpt.generate(model, prompt, "beam", **options)
        rows = [i for i, p in enumerate(batch.prompt_index) if p == row]
        assert [batch.sequences[i] for i in rows] == alone.sequences
        np.testing.assert_allclose([batch.scores[i] for i in rows], alone.scores, rtol=1e-4)
        assert alone.scores == sorted(alone.scores, reverse=True)


@pytest.mark.parametrize("strategy,extra", [("beam", {}),
                                            ("diverse-beam", dict(num_beam_groups=2, diversity_penalty=1.5))])
def test_trace_follows_each_beam(model, strategy, extra):
    """Each step's logprob is log p(token) given that beam's own tokens (recomputed without a cache), its
    candidates are a distribution's top that holds the chosen token, and with nothing processed and
    length_penalty 0 the score is the sum of the logprobs."""
    prompt = PROMPTS[1]
    eos = ending_token(model, prompt, 3)
    out = minigpt.generate(model, prompt, strategy, num_beams=4, num_return_sequences=4, length_penalty=0.0,
                           max_new_tokens=8, eos_token_id=eos, trace_top=10, **extra)
    assert any(s[-1] == eos for s in out.sequences) and any(s[-1] != eos for s in out.sequences)
    for tokens, steps, score in zip(out.sequences, out.steps, out.scores):
        assert [s.token for s in steps] == tokens
        logp = log_softmax(model(prompt + tokens)[len(prompt) - 1 : -1])  # [n, V]
        expected = logp[np.arange(len(tokens)), tokens]
        np.testing.assert_allclose([s.logprob for s in steps], expected, rtol=1e-4, atol=1e-5)
        for step in steps:
            probs = [c.p for c in step.candidates]
            assert sum(probs) <= 1 + 1e-6 and probs == sorted(probs, reverse=True)
            assert step.token in [c.id for c in step.candidates]
        if strategy == "beam":
            assert score == pytest.approx(sum(s.logprob for s in steps), rel=1e-5)


def test_finish_reasons_and_lengths(model):
    eos = ending_token(model, PROMPTS[1], 2)
    out = minigpt.generate(model, PROMPTS[1], "beam", num_beams=3, num_return_sequences=3, max_new_tokens=7,
                           eos_token_id=eos)
    for tokens, reason in zip(out.sequences, out.finish_reasons):
        assert (reason == "eos") == (tokens[-1] == eos) and eos not in tokens[:-1]
        assert reason == "eos" or len(tokens) == 7


def test_diverse_groups_differ_from_beam_search(model):
    """With a large diversity penalty, the groups' best sequences start differently; with none, the groups
    are independent beam searches of num_beams / num_beam_groups beams (their first group is beam search)."""
    prompt = PROMPTS[0]
    options = dict(max_new_tokens=6, eos_token_id=model.config.vocab_size - 1)
    diverse = minigpt.generate(model, prompt, "diverse-beam", num_beams=4, num_beam_groups=4, diversity_penalty=100.0,
                               num_return_sequences=4, **options)
    assert len({s[0] for s in diverse.sequences}) == 4
    plain = minigpt.generate(model, prompt, "diverse-beam", num_beams=4, num_beam_groups=2, diversity_penalty=0.0,
                             num_return_sequences=4, **options)
    two = minigpt.generate(model, prompt, "beam", num_beams=2, num_return_sequences=2, **options)
    assert plain.sequences[::2] == two.sequences and plain.sequences[1::2] == two.sequences


# ----------------------------------------------------------------------------- beam sampling


def test_beam_sample_is_reproducible_and_valid(model):
    options = dict(num_beams=3, num_return_sequences=3, max_new_tokens=8, top_k=5, temperature=1.5,
                   eos_token_id=ending_token(model, PROMPTS[0]), trace_top=10)
    a = minigpt.generate(model, PROMPTS[:2], "beam-sample", seed=7, **options)
    b = minigpt.generate(model, PROMPTS[:2], "beam-sample", seed=7, **options)
    assert a.sequences == b.sequences and a.scores == b.scores
    others = [minigpt.generate(model, PROMPTS[:2], "beam-sample", seed=s, **options).sequences for s in range(8, 12)]
    assert any(o != a.sequences for o in others)  # the seed matters
    for tokens, steps in zip(a.sequences, a.steps):
        assert all(0 <= t < model.config.vocab_size for t in tokens)
        for step in steps:  # the token was drawn from the warped distribution: among its top 5
            kept = [c.id for c in step.candidates if c.p > 0]
            assert len(kept) <= 5 and step.token in kept
    assert all(a.scores[i] >= a.scores[i + 1] for i in (0, 1, 3, 4))


def test_beam_sample_with_top_k_1_is_beam_search(model):
    """top_k=1 leaves each beam one continuation: with one beam, nothing is left to chance."""
    for prompt in PROMPTS:
        eos = ending_token(model, prompt, 3)
        options = dict(num_beams=1, max_new_tokens=8, eos_token_id=eos)
        sampled = minigpt.generate(model, prompt, "beam-sample", top_k=1, min_tokens_to_keep=1, seed=3, **options)
        searched = minigpt.generate(model, prompt, "beam", **options)
        assert sampled.sequences == searched.sequences
        np.testing.assert_allclose(sampled.scores, searched.scores, rtol=1e-5)


def test_beam_sample_at_low_temperature_is_beam_search(model):
    """Temperature T divides every processed log-prob, so the beam scores scale by 1/T and their order is
    unchanged; as T -> 0 the draw without replacement returns the candidates in order of score."""
    t = 1e-4
    for prompt in PROMPTS:
        options = dict(num_beams=3, num_return_sequences=3, length_penalty=1.0, max_new_tokens=8,
                       eos_token_id=ending_token(model, prompt, 2))
        sampled = minigpt.generate(model, prompt, "beam-sample", temperature=t, seed=0, **options)
        searched = minigpt.generate(model, prompt, "beam", **options)
        assert sampled.sequences == searched.sequences
        np.testing.assert_allclose(np.array(sampled.scores) * t, searched.scores, rtol=1e-4)


def test_draw_without_replacement_has_multinomials_probabilities():
    """Two of six candidates drawn without replacement: each pair {i, j} comes with probability
    p_i p_j / (1 - p_i) + p_j p_i / (1 - p_j), as torch.multinomial(replacement=False) gives; the pair is
    returned best score first. Candidates of probability 0 are used only once the others are drawn."""
    scores = np.log(np.array([0.4, 0.25, 0.15, 0.1, 0.06, 0.04], dtype=np.float32))
    p = np.exp(scores.astype(np.float64))
    rng, n = np.random.default_rng(0), 20000
    counts = {}
    for _ in range(n):
        pair = sampled_candidates(scores, 2, rng)
        assert scores[pair[0]] >= scores[pair[1]]
        counts[tuple(sorted(pair))] = counts.get(tuple(sorted(pair)), 0) + 1
    for (i, j), count in counts.items():
        expected = p[i] * p[j] / (1 - p[i]) + p[j] * p[i] / (1 - p[j])
        assert abs(count / n - expected) < 4 * np.sqrt(expected * (1 - expected) / n) + 1e-3, (i, j)
    masked = np.array([0.0, -np.inf, -1.0, -np.inf, -2.0], dtype=np.float32)
    assert sampled_candidates(masked, 5, rng)[:3].tolist() == [0, 2, 4]


# ----------------------------------------------------------------------------- options


@pytest.mark.parametrize("strategy,options,parameter", [
    ("beam", dict(num_beams=2, num_return_sequences=3), "num_return_sequences"),
    ("beam-sample", dict(num_beams=1, num_return_sequences=2), "num_return_sequences"),
    ("diverse-beam", dict(num_beams=4, num_beam_groups=3), "num_beam_groups"),
    ("diverse-beam", dict(num_beams=4, num_beam_groups=1), "num_beam_groups"),
    ("beam", dict(num_beams=0), "num_beams"),
    ("beam", dict(num_beams=2, early_stopping="sometimes"), "early_stopping"),
    ("beam", dict(num_beams=2, length_penalty=float("nan")), "length_penalty"),
    ("diverse-beam", dict(num_beams=4, num_beam_groups=2, diversity_penalty=-1.0), "diversity_penalty"),
    ("beam", dict(num_beams=2, stop=["."]), "stop"),
    ("beam", dict(num_beams=2, temperature=0.5), "temperature"),
    ("beam", dict(num_beams=2, num_beam_groups=2), "num_beam_groups"),
])
def test_invalid_options_name_the_parameter(model, strategy, options, parameter):
    with pytest.raises(ValueError, match=parameter):
        minigpt.generate(model, PROMPTS[0], strategy, max_new_tokens=3, **options)
