"""Every strategy's trace says, at each step, how many tokens survived the chain (Step.survivors: after-chain
probability above 0) and how much probability its shown candidates hold (shown_mass after the chain,
raw_shown_mass before it); the text and JSON views show both. Each is counted here afresh."""

import numpy as np
import pytest
from conftest import load_model

import minigpt
from minigpt.core.numerics import softmax
from minigpt.core.tokenizer import Tokenizer
from minigpt.links.chain import build_chain
from minigpt.strategies.run import Candidate, Step
from minigpt.views.text import candidate_lines, step_json, step_line

PROMPT = [5, 17, 400, 23]
RUNS = {  # name: (strategy, options): every strategy, with chains that cut the vocabulary in different ways
    "greedy": ("greedy", dict(no_repeat_ngram_size=1, suppress_tokens=[0, 1, 2])),
    "sample": ("sample", dict(seed=0, top_k=40, top_p=0.8, temperature=1.5)),
    "sample-top-n-sigma": ("sample", dict(seed=1, top_n_sigma=1.0, temperature=1.5)),
    "sample-mirostat": ("sample", dict(seed=2, mirostat=2, mirostat_tau=3.0)),
    "beam": ("beam", dict(num_beams=3, num_return_sequences=2, bad_words_ids=[[7]])),
    "beam-sample": ("beam-sample", dict(num_beams=3, seed=0, top_k=20)),
    "diverse-beam": ("diverse-beam", dict(num_beams=4, num_beam_groups=2, diversity_penalty=1.0)),
    "contrastive": ("contrastive", dict(penalty_alpha=0.6, top_k=4, min_new_tokens=3)),
    "speculative": ("speculative", dict(do_sample=True, seed=0, top_p=0.9, num_assistant_tokens=3)),
}


def run(name: str, trace_top: int):
    model = load_model("tiny-hub")
    strategy, options = RUNS[name]
    if strategy == "speculative":
        options = {**options, "draft_model": model}
    return minigpt.generate(model, PROMPT, strategy, max_new_tokens=6, eos_token_id=model.config.vocab_size - 1,
                            trace_top=trace_top, **options)


@pytest.mark.parametrize("name", list(RUNS))
def test_survivors_count_the_tokens_of_the_whole_distribution_after_the_chain(name):
    V = load_model("tiny-hub").config.vocab_size
    out = run(name, trace_top=V)  # every token shown: the candidates are the whole distribution
    steps = [step for sequence in out.steps for step in sequence]
    assert steps
    for step in steps:
        assert step.survivors == len(step.candidates) == sum(c.p > 0 for c in step.candidates) > 0
        assert step.token in [c.id for c in step.candidates]  # the chosen token survived
        assert step.shown_mass == pytest.approx(1.0, abs=1e-4) and step.raw_shown_mass == pytest.approx(1.0, abs=1e-4)
        assert len(step.raw_candidates) == V
    if name.startswith("sample") and name != "sample":
        assert any(step.survivors < V // 2 for step in steps)  # top-nσ and mirostat cut hard


@pytest.mark.parametrize("name", ["greedy", "sample", "sample-top-n-sigma"])
def test_survivors_equal_the_chain_applied_afresh_to_the_model_logits(name):
    model = load_model("tiny-hub")
    strategy, options = RUNS[name]
    out = run(name, trace_top=3)
    chain_options = {k: v for k, v in options.items() if k != "seed"}
    history = list(PROMPT)
    for step in out.steps[0]:
        chain = build_chain(sampling=strategy == "sample", prompt_length=len(PROMPT), vocab_size=model.config.vocab_size,
                            eos_token_id=model.config.vocab_size - 1, **chain_options)
        logits = model(np.array(history))[-1][None]  # [1, V], without the cache
        p = softmax(chain(logits, np.array([history])))[0]  # [V] after the chain
        assert step.survivors == int((p > 0).sum())
        shown = [c.id for c in step.candidates]
        assert shown == np.argsort(-p, kind="stable")[: len(shown)].tolist()
        assert step.shown_mass == pytest.approx(float(p[shown].sum()), rel=1e-4)
        history.append(step.token)
    if name == "sample":
        assert all(step.survivors <= 40 for step in out.steps[0])  # top-k 40 keeps at most 40


def test_views_show_survivors_and_the_shown_mass():
    tok = Tokenizer()
    step = Step(token=11, logprob=-1.5, candidates=[Candidate(11, 0.5), Candidate(13, 0.25)],
                raw_candidates=[Candidate(13, 0.5), Candidate(11, 0.125)],
                survivors=1234, shown_mass=0.75, raw_shown_mass=0.625)
    lines = candidate_lines(tok, 1, step)
    assert lines[0].endswith("; 1,234 tokens survive the chain")
    assert lines[-1].split() == ["sum", "0.6250", "0.7500"]
    assert "survivors 1234, shown p 0.750 | , 0.500" in step_line(tok, step)
    shown = step_json(step)
    assert (shown["survivors"], shown["shown_mass"], shown["raw_shown_mass"]) == (1234, 0.75, 0.625)
    one = Step(token=11, logprob=-1.5, candidates=[Candidate(11, 1.0)], survivors=1, shown_mass=1.0)
    assert candidate_lines(tok, 2, one)[0].endswith("; 1 token survives the chain")
