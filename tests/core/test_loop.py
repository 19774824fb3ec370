"""core/loop.py, the plain loop: it gives generate()'s tokens, greedy and seeded sampling alike, and it pauses and
resumes: the tokens of one run taken a few at a time are the tokens of the run taken at once."""

from itertools import islice

import pytest

import minigpt
from minigpt.core.chain import classic_chain
from minigpt.core.loop import decode

PROMPT = "If the file is not found,"
SAMPLING = [dict(seed=0), dict(seed=1, temperature=0.7), dict(seed=2, top_k=40), dict(seed=3, top_p=0.9),
            dict(seed=4, min_p=0.05, temperature=1.3), dict(seed=5, top_k=20, top_p=0.8, repetition_penalty=1.2)]


@pytest.fixture(scope="module")
def tiny():
    return minigpt.load("tiny"), minigpt.Tokenizer()


def test_greedy_is_generates_greedy(tiny):
    model, tok = tiny
    ids = tok.encode(PROMPT)
    for options in ({}, dict(repetition_penalty=1.3)):
        ours = list(decode(model, ids, classic_chain(**options), max_new_tokens=40))
        assert ours == minigpt.generate(model, ids, max_new_tokens=40, **options).sequences[0], options


@pytest.mark.parametrize("options", SAMPLING, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_seeded_sampling_is_generates_sampling(tiny, options):
    model, tok = tiny
    ids = tok.encode(PROMPT)
    ours = list(decode(model, ids, classic_chain(sampling=True, **options), max_new_tokens=40))
    assert ours == minigpt.generate(model, ids, "sample", max_new_tokens=40, **options).sequences[0]


def test_it_pauses_and_resumes_where_it_stopped(tiny):
    model, tok = tiny
    ids = tok.encode(PROMPT)
    whole = list(decode(model, ids, classic_chain(sampling=True, seed=7), max_new_tokens=30))
    steps = decode(model, ids, classic_chain(sampling=True, seed=7), max_new_tokens=30)
    parts = [list(islice(steps, n)) for n in (1, 4, 10, 100)]  # paused between takes, its cache kept
    assert [t for part in parts for t in part] == whole and len(whole) == 30


def test_it_stops_after_end_of_text(tiny):
    model, _ = tiny
    tokens = list(decode(model, [model.config.eos_token_id], classic_chain(sampling=True, seed=3), 250))
    assert model.config.eos_token_id not in tokens[:-1]
    assert len(tokens) == 250 or tokens[-1] == model.config.eos_token_id


def test_the_classic_chain_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="temperature reshapes the distribution .* pass sampling=True"):
        classic_chain(temperature=0.7)
    with pytest.raises(ValueError, match="the classic chain has no option typical_p"):
        classic_chain(sampling=True, typical_p=0.9)
