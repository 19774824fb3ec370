"""Greedy generation through the KV cache: stopping rules, batches, the context limit, empty prompts.
Token-for-token parity with transformers' generate() is in test_parity.py."""


import pytest
from helpers import FIXTURES, write_checkpoint

import minigpt
from minigpt.core.config import GPTConfig

CONFIG = GPTConfig(vocab_size=64, n_positions=24, n_embd=16, n_layer=2, n_head=2)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return minigpt.load(write_checkpoint(tmp_path_factory.mktemp("gen"), CONFIG))


def greedy_without_cache(model, prompt, n):
    ids = list(prompt)
    for _ in range(n):
        ids.append(int(model(ids)[-1].argmax()))
    return ids[len(prompt):]


def test_greedy_equals_argmax_of_full_passes(model):
    out = minigpt.generate(model, [5, 9, 2], max_new_tokens=10, eos_token_id=CONFIG.vocab_size)
    assert out.sequences == [greedy_without_cache(model, [5, 9, 2], 10)]
    assert out.prompt_tokens == [[5, 9, 2]] and out.finish_reasons == ["length"]


def test_stops_at_eos_and_min_new_tokens_holds_it_back(model):
    free = minigpt.generate(model, [5, 9, 2], max_new_tokens=6, eos_token_id=CONFIG.vocab_size).sequences[0]
    eos = free[2]  # make the third greedy token the end of text
    out = minigpt.generate(model, [5, 9, 2], max_new_tokens=6, eos_token_id=eos)
    assert out.sequences[0] == free[: free.index(eos) + 1] and out.finish_reasons == ["eos"]
    held = minigpt.generate(model, [5, 9, 2], max_new_tokens=6, min_new_tokens=6, eos_token_id=eos).sequences[0]
    assert eos not in held and len(held) == 6


def test_batch_equals_each_prompt_alone(model):
    prompts = [[1, 2, 3, 4, 5, 6], [7], [8, 9, 10]]
    batch = minigpt.generate(model, prompts, max_new_tokens=8, eos_token_id=CONFIG.vocab_size)
    for prompt, seq in zip(prompts, batch.sequences):
        assert seq == minigpt.generate(model, prompt, max_new_tokens=8, eos_token_id=CONFIG.vocab_size).sequences[0]


def test_empty_prompt_starts_from_endoftext(model):
    eot = model.config.eos_token_id
    model_eot = 63  # this small vocabulary has no 50256, so name one
    out = minigpt.generate(model, [], max_new_tokens=5, eos_token_id=model_eot)
    assert out.prompt_tokens == [[model_eot]]
    assert out.sequences == minigpt.generate(model, [model_eot], max_new_tokens=5, eos_token_id=model_eot).sequences
    assert eot == 50256


def test_context_limit_is_named(model):
    with pytest.raises(ValueError, match="n_positions=24"):
        minigpt.generate(model, list(range(20)), max_new_tokens=5)
    assert len(minigpt.generate(model, list(range(20)), max_new_tokens=4, eos_token_id=CONFIG.vocab_size).sequences[0]) == 4


def test_on_token_streams_every_token(model):
    seen = []
    out = minigpt.generate(model, [[3, 4], [5]], max_new_tokens=4, eos_token_id=CONFIG.vocab_size, on_token=lambda r, t: seen.append((r, t)))
    assert [t for r, t in seen if r == 0] == out.sequences[0]
    assert [t for r, t in seen if r == 1] == out.sequences[1]


@pytest.mark.parametrize("bad", [{"max_new_tokens": -1}, {"min_new_tokens": 1.5}, {"max_new_tokens": True}])
def test_bad_lengths_are_refused(model, bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        minigpt.generate(model, [1, 2], **bad)


def test_zero_new_tokens(model):
    assert minigpt.generate(model, [1, 2], max_new_tokens=0).sequences == [[]]


@pytest.fixture(scope="module")
def text_model():
    return minigpt.load(FIXTURES / "fullvocab")


def test_stop_string_across_token_boundaries(text_model):
    tok = minigpt.Tokenizer()
    prompt = tok.encode("I have a dream")
    free = minigpt.generate(text_model, prompt, max_new_tokens=12)
    full = free.texts[0]
    # a stop string made of the end of one token and the start of the next
    pieces = [tok.decode([t]) for t in free.sequences[0]]
    stop = pieces[2][-2:] + pieces[3][:2]
    assert len(stop) == 4 and all(stop not in piece for piece in pieces)  # no single token holds it
    start = full.find(stop)
    out = minigpt.generate(text_model, prompt, max_new_tokens=12, stop=[stop])
    assert out.finish_reasons == ["stop"]
    assert out.texts == [full[:start]]
    assert tok.decode(out.sequences[0]).find(stop) == start  # the tokens run up to the one completing it
    assert out.sequences[0] == free.sequences[0][: len(out.sequences[0])]
    assert stop not in tok.decode(out.sequences[0][:-1])
