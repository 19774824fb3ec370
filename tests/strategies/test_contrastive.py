"""Contrastive search: token-for-token equal to transformers 4.46's generate(penalty_alpha=..., top_k=...)
(fixtures recorded by scripts/reference/contrastive.py), and its invariants."""

import json

import numpy as np
import pytest
from helpers import FIXTURES
from helpers import fixture_model as load

import minigpt
from minigpt.call.strategies import build_options
from minigpt.core.model import left_pad
from minigpt.core.numerics import log_softmax, softmax
from minigpt.links.chain import build_chain
from minigpt.strategies.contrastive import contrastive_search
from minigpt.strategies.run import Run

REFERENCE = json.loads((FIXTURES / "strategies" / "contrastive.json").read_text())
CASES = {case["name"]: case for case in REFERENCE["cases"]}
MODELS = sorted({case["model"] for case in CASES.values()})
SMALL = min(MODELS, key=lambda name: json.loads((FIXTURES / name / "config.json").read_text())["vocab_size"])


def pads_penalised(case):
    """transformers 4.46's repetition penalty also counts the left padding (pad id = end-of-text);
    minigpt's chain skips it, as transformers 5 does, so such a case can differ in its padded rows."""
    lengths = {len(p) for p in case["prompts"]}
    return case["options"].get("repetition_penalty", 1.0) != 1.0 and len(lengths) > 1


def contrastive_with_446_chain(model, case):
    """contrastive_search itself, given the processor chain transformers 4.46 builds (padding penalised)."""
    options = build_options("contrastive", **case["options"])
    eos = options.eos_token_id
    ids, mask = left_pad(case["prompts"], eos)
    chain = build_chain(sampling=False, prompt_length=ids.shape[1], eos_token_id=eos, vocab_size=model.config.vocab_size,
                        repetition_penalty=options.repetition_penalty, min_new_tokens=options.min_new_tokens,
                        no_repeat_ngram_size=options.no_repeat_ngram_size)  # no pad_lengths: pads count
    run = Run(model=model, ids=ids, mask=mask, max_new_tokens=options.max_new_tokens, pad_token_id=eos,
              options=options, chain=chain, eos_token_id=eos, rng=np.random.default_rng(0), trace_top=0)
    loop = contrastive_search(run)
    while True:
        try:
            next(loop)
        except StopIteration as end:
            return [hyps[0].tokens for hyps in end.value.hypotheses]


@pytest.mark.parametrize("name", CASES)
def test_matches_transformers(name):
    case = CASES[name]
    model, eos = load(case["model"]), case["options"]["eos_token_id"]
    out = minigpt.generate(model, case["prompts"], "contrastive", **case["options"])
    if pads_penalised(case):
        assert contrastive_with_446_chain(model, case) == case["sequences"]
        longest = max(len(p) for p in case["prompts"])
        unpadded = [row for row, p in enumerate(case["prompts"]) if len(p) == longest]
        assert [out.sequences[row] for row in unpadded] == [case["sequences"][row] for row in unpadded]
        return
    assert out.sequences == case["sequences"]
    assert out.finish_reasons == ["eos" if seq and seq[-1] == eos else "length" for seq in case["sequences"]]


def test_fixtures_exercise_the_penalty():
    """Most recorded cases must differ from greedy, or the replay would prove little."""
    alpha_cases = [c for c in CASES.values() if c["options"]["penalty_alpha"] > 0]
    assert sum(c["sequences"] != c["greedy"] for c in alpha_cases) >= len(alpha_cases) // 2
    assert all(c["sequences"] == c["greedy"] for c in CASES.values() if c["options"]["penalty_alpha"] == 0)
    assert any(seq[-1:] == [c["options"]["eos_token_id"]] for c in CASES.values() for seq in c["sequences"])


def prompts(model, seed=0):
    rng = np.random.default_rng(seed)
    return [[int(t) for t in rng.integers(0, min(model.config.vocab_size, 50256), size=n)] for n in (7, 1, 4)]


@pytest.mark.parametrize("model_name, top_k", [(name, (2, 4, 7)[i % 3]) for i, name in enumerate(MODELS)])
def test_alpha_zero_is_greedy(model_name, top_k):
    model = load(model_name)
    batch = prompts(model)
    never = model.config.vocab_size
    greedy = minigpt.generate(model, batch, max_new_tokens=15, eos_token_id=never, repetition_penalty=1.3)
    contrastive = minigpt.generate(model, batch, "contrastive", max_new_tokens=15, eos_token_id=never,
                                   repetition_penalty=1.3, penalty_alpha=0.0, top_k=top_k)
    assert contrastive.sequences == greedy.sequences
    assert contrastive.scores == pytest.approx(greedy.scores, abs=1e-4)


@pytest.mark.parametrize("model_name", MODELS)
def test_batch_equals_each_prompt_alone(model_name):
    """Left padding takes no part in the degeneration penalty."""
    model = load(model_name)
    batch = prompts(model, seed=1)
    options = dict(max_new_tokens=12, eos_token_id=model.config.vocab_size, penalty_alpha=0.6, top_k=4)
    together = minigpt.generate(model, batch, "contrastive", **options).sequences
    assert together == [minigpt.generate(model, p, "contrastive", **options).sequences[0] for p in batch]


def test_trace_score_and_streaming():
    """Each step: the raw log-probability of its token and the top of softmax(processed logits)."""
    model = load(SMALL)
    prompt = prompts(model, seed=2)[0]
    streamed = []
    out = minigpt.generate(model, prompt, "contrastive", max_new_tokens=8, eos_token_id=model.config.vocab_size,
                           penalty_alpha=0.6, top_k=4, trace_top=3, on_token=lambda row, t: streamed.append(t))
    tokens = out.sequences[0]
    assert streamed == tokens == [s.token for s in out.steps[0]]
    for i, step in enumerate(out.steps[0]):
        logits = model(prompt + tokens[:i])[-1:]  # [1, V] a full pass, no cache: raw = processed here
        assert step.logprob == pytest.approx(float(log_softmax(logits)[0, step.token]), abs=1e-4)
        probs = softmax(logits)[0]
        assert [c.id for c in step.candidates] == list(np.argsort(-probs, kind="stable")[:3])
        assert [c.p for c in step.candidates] == pytest.approx(np.sort(probs)[::-1][:3], abs=1e-5)
    assert out.scores[0] == pytest.approx(sum(s.logprob for s in out.steps[0]), abs=1e-4)


def test_stop_string_ends_the_text():
    model = load(SMALL)
    prompt = prompts(model, seed=3)[0]
    options = dict(max_new_tokens=12, eos_token_id=model.config.vocab_size, penalty_alpha=0.6, top_k=4)
    tok = minigpt.Tokenizer()
    free = minigpt.generate(model, prompt, "contrastive", **options).sequences[0]
    stop = next(text for text in (tok.decode([t]) for t in free[3:]) if text.strip() and "\ufffd" not in text)
    out = minigpt.generate(model, prompt, "contrastive", stop=stop, **options)
    first = next(i for i in range(len(free)) if stop in tok.decode(free[: i + 1]))
    assert out.sequences[0] == free[: first + 1] and out.finish_reasons == ["stop"]
    assert stop not in out.texts[0]


def test_banned_candidates_are_never_chosen():
    """With only two tokens allowed and top_k = 4, two candidates have probability 0: never emit them."""
    model = load(SMALL)
    V = model.config.vocab_size
    allowed = [3, 5]
    out = minigpt.generate(model, [1, 2], "contrastive", max_new_tokens=10, eos_token_id=V, penalty_alpha=1.0,
                           top_k=4, suppress_tokens=[t for t in range(V) if t not in allowed])
    assert set(out.sequences[0]) <= set(allowed)


def test_top_k_larger_than_the_vocabulary_is_refused():
    model = load(SMALL)
    with pytest.raises(ValueError, match="top_k"):
        minigpt.generate(model, [1], "contrastive", max_new_tokens=2, top_k=model.config.vocab_size + 1)
