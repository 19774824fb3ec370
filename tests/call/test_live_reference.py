"""Live parity with transformers: fresh random GPT-2 models, built here, saved with save_pretrained, loaded by minigpt.

Where tests/test_parity.py checks recorded outputs, these build new models of several shapes (GPT-2's own
width and vocabulary with two layers, and odd shapes) and compare minigpt with transformers directly:
logits, a left-padded batch, greedy generation. Skipped when torch or transformers is missing, unless
MINIGPT_REQUIRE_REFERENCE=1 (as in CI).
"""

import numpy as np
import pytest
from conftest import assert_close, require_reference

import minigpt

torch, transformers = require_reference()

SHAPES = {  # name: (seed, GPT2Config arguments)
    "gpt2-width-2-layers": (0, dict(vocab_size=50257, n_embd=768, n_head=12, n_layer=2, n_positions=1024)),
    "odd-inner": (1, dict(vocab_size=211, n_embd=40, n_head=5, n_layer=3, n_positions=64, n_inner=72)),
    "many-heads-eps": (2, dict(vocab_size=1000, n_embd=64, n_head=16, n_layer=1, n_positions=32, layer_norm_epsilon=1e-3)),
    "one-head-deep": (3, dict(vocab_size=97, n_embd=24, n_head=1, n_layer=4, n_positions=50)),
}


@pytest.fixture(scope="module", params=list(SHAPES))
def models(request, tmp_path_factory):
    """(transformers' model, minigpt's model of the same checkpoint, token generator) for one shape."""
    seed, config = SHAPES[request.param]
    torch.manual_seed(seed)
    eos = config["vocab_size"] - 1
    ref = transformers.GPT2LMHeadModel(transformers.GPT2Config(**config, bos_token_id=eos, eos_token_id=eos)).eval()
    with torch.no_grad():  # move every parameter off its trivial init (zero biases, unit layer norms)
        for p in ref.parameters():
            p.add_(0.05 * torch.randn_like(p))
    folder = tmp_path_factory.mktemp(request.param)
    ref.save_pretrained(folder)  # safetensors, "transformer." keys, lm_head tied to wte
    return ref, minigpt.load(str(folder)), np.random.default_rng(seed)


def positions(mask):
    return (mask.cumsum(-1) - 1).clamp(min=0)


def test_logits(models):
    ref, model, rng = models
    n = model.config.n_positions
    for length in (1, 7, min(n, 80)):
        ids = rng.integers(0, model.config.vocab_size, length)
        with torch.no_grad():
            expected = ref(torch.from_numpy(ids)[None]).logits[0].numpy()
        assert_close(model(ids), expected, what=f"logits of a prompt of {length} tokens")


def test_left_padded_batch(models):
    ref, model, rng = models
    lengths = [3, 11, 6]
    ids = rng.integers(0, model.config.vocab_size, (len(lengths), max(lengths)))
    mask = np.array([[0] * (ids.shape[1] - n) + [1] * n for n in lengths])
    ids[mask == 0] = 0  # padding ids are arbitrary; attention_mask hides them
    with torch.no_grad():
        m = torch.from_numpy(mask)
        expected = ref(torch.from_numpy(ids), attention_mask=m, position_ids=positions(m)).logits.numpy()
    logits = model(ids, attention_mask=mask)
    real = mask == 1
    assert_close(logits[real], expected[real], what="logits of the left-padded batch at real tokens")


def test_greedy_generation(models):
    ref, model, rng = models
    eos = model.config.vocab_size - 1
    prompts = [rng.integers(0, eos, n).tolist() for n in (5, 2)]
    width = max(map(len, prompts))
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    with torch.no_grad():
        out = ref.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=10, eos_token_id=eos, pad_token_id=eos)
    expected = [row[:row.index(eos) + 1] if eos in row else row for row in out[:, width:].tolist()]
    assert minigpt.generate(model, prompts, max_new_tokens=10, eos_token_id=eos).sequences == expected
