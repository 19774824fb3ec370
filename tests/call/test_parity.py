"""minigpt against transformers, on the recorded fixtures: logits, padding, the KV cache, greedy generation.

Every expected value here was computed by transformers' GPT2LMHeadModel (scripts/reference/logits.py) and
read from tests/fixtures/<name>/; these tests need only NumPy and minigpt. Logits match when
max |ours - transformers'| <= 1e-5 x max |transformers'| (conftest.assert_close).
"""

import numpy as np
from conftest import assert_close, load_model, reference

import minigpt
from minigpt.core.model import left_pad


def test_config_matches_the_checkpoint(fixture_name):
    config, expected = load_model(fixture_name).config, reference(fixture_name).meta["settings"]["config"]
    for key, value in expected.items():
        assert getattr(config, key) == value, key
    assert config.d_mlp == (expected.get("n_inner") or 4 * expected["n_embd"])


def test_logits(fixture_name):
    ref, model = reference(fixture_name), load_model(fixture_name)
    for i, prompt in enumerate(ref.meta["prompts"]):
        expected = ref.arrays[f"logits.{i}"]  # [K, V]: the last K positions (all of them for small vocabularies)
        logits = model(prompt)  # [T, V]
        assert logits.shape == (len(prompt), model.config.vocab_size)
        assert_close(logits[-len(expected):], expected, what=f"logits of prompt {i} (length {len(prompt)})")


def test_last_only_and_hidden_state(fixture_name):
    ref, model = reference(fixture_name), load_model(fixture_name)
    prompt = ref.meta["prompts"][ref.meta["hidden_prompt"]]
    res = model.forward(np.array([prompt]), cache=model.new_cache(1, len(prompt)))
    assert_close(res.hidden[0], ref.arrays["hidden"], what="hidden state after ln_f")
    last = model.forward(np.array([prompt]), cache=model.new_cache(1, len(prompt)), last_only=True)
    assert last.logits.shape == (1, 1, model.config.vocab_size)
    assert_close(last.logits[0, -1], ref.arrays[f"logits.{ref.meta['hidden_prompt']}"][-1], what="last_only logits")


def test_left_padded_batch(fixture_name):
    ref, model = reference(fixture_name), load_model(fixture_name)
    batch = ref.meta["batch"]
    ids, mask = np.array(batch["input_ids"]), np.array(batch["attention_mask"])
    logits = model(ids, attention_mask=mask)  # [B, T, V]
    assert logits.shape == (*ids.shape, model.config.vocab_size)
    expected = ref.arrays["batch.logits"]  # [B, K, V], the last K positions
    for row in range(len(ids)):
        real = mask[row] == 1
        tail = real[-expected.shape[1]:]
        assert_close(logits[row, -expected.shape[1]:][tail], expected[row][tail], what=f"batch row {row}")
        alone = model(ids[row, real])  # the same prompt, unpadded
        assert_close(logits[row, real], alone, what=f"batch row {row} against the row alone")


def run_steps(model, prompts, pad_id, steps):
    """Prefill the left-padded prompts into a cache, then one token per row per step: [1 + steps, B, V]."""
    ids, mask = left_pad(prompts, pad_id)
    cache = model.new_cache(len(prompts), ids.shape[1] + len(steps))
    out = [model.forward(ids, cache=cache, attention_mask=mask).logits[:, -1]]
    for step in steps:
        out.append(model.forward(np.array(step)[:, None], cache=cache, attention_mask=np.ones((len(step), 1))).logits[:, -1])
    assert cache.length == ids.shape[1] + len(steps)
    return np.stack(out)


def test_step_by_step_decoding_with_the_cache(fixture_name):
    ref, model = reference(fixture_name), load_model(fixture_name)
    s = ref.meta["steps"]
    logits = run_steps(model, s["prompts"], s["pad_id"], s["tokens"])
    assert_close(logits, ref.arrays["steps.logits"], what="step logits of the padded batch")
    for row, prompt in enumerate(s["prompts"]):
        tokens = [step[row] for step in s["tokens"]]
        alone = run_steps(model, [prompt], s["pad_id"], [[t] for t in tokens])[:, 0]  # one row, no padding
        assert_close(alone, ref.arrays["steps.logits"][:, row], what=f"step logits of row {row} alone")
        full = model(prompt + tokens)[len(prompt) - 1:]  # the whole sequence at once, no cache
        assert_close(logits[:, row], full, what=f"step logits of row {row} against the full sequence")


def generate_like(case, model, prompt_ids, **extra):
    return minigpt.generate(model, prompt_ids, max_new_tokens=case["max_new_tokens"],
                            min_new_tokens=case["min_new_tokens"], eos_token_id=case["eos_token_id"], **extra)


def test_greedy_generation(fixture_name):
    ref, model = reference(fixture_name), load_model(fixture_name)
    for i, case in enumerate(ref.meta["generations"]):
        prompts = case["prompts"]
        out = generate_like(case, model, prompts[0] if len(prompts) == 1 else prompts)
        assert out.sequences == case["sequences"], f"case {i}: {case}"
        assert out.finish_reasons == case["finish_reasons"], f"case {i}"
        assert out.prompt_tokens == prompts


def test_greedy_generation_from_a_padded_array(fixture_name):
    ref, model = reference(fixture_name), load_model(fixture_name)
    for i, case in enumerate(c for c in ref.meta["generations"] if len(c["prompts"]) > 1):
        ids, mask = left_pad(case["prompts"], case["pad_id"])
        out = generate_like(case, model, ids, attention_mask=mask)
        assert out.sequences == case["sequences"], f"batch case {i}: {case}"


def test_the_fixtures_exercise_what_they_should(fixture_name):
    """Guards against a regenerated fixture that would make the tests above weak."""
    meta = reference(fixture_name).meta
    reasons = [r for case in meta["generations"] for r in case["finish_reasons"]]
    assert "eos" in reasons and "length" in reasons
    assert any(case["min_new_tokens"] for case in meta["generations"]) or fixture_name == "fullvocab"
    assert 0 in np.array(meta["batch"]["attention_mask"])
    assert meta["next_token_stats"]["top1_prob_quartiles"][1] > 0.3  # sharpened: no near-ties for argmax


def test_text_end_to_end():
    ref, model = reference("fullvocab"), load_model("fullvocab")
    tok = minigpt.Tokenizer()
    assert [tok.encode(text) for text in ref.meta["texts"]] == ref.meta["prompts"]
    for case in ref.meta["generations"]:
        prompts = [tok.encode(text) for text in case["texts"]]
        out = generate_like(case, model, prompts[0] if len(prompts) == 1 else prompts)
        assert out.sequences == case["sequences"]
        assert [tok.decode(seq) for seq in out.sequences] == case["decoded"]
