"""Record what transformers' generate() does for greedy decoding and sampling, so that
tests/strategies/test_sampling.py can check minigpt's without torch.

    pip install -e '.[reference]'                   # torch + transformers 5.x
    python -m scripts.reference.sampling
        # writes tests/fixtures/strategies/greedy.json, sampling.json and sampling.safetensors

greedy.json: for one small checkpoint, cases of `generate(do_sample=False)` with each logit processor
alone and a few together (minigpt's option names; logit_bias is transformers' sequence_bias with
one-token keys), single prompts and a left-padded batch of two, and the new tokens transformers chose
(cut after the end-of-text token, as minigpt returns them).

sampling.json + sampling.safetensors: for each warper setting, a prompt and a token path (the tokens
minigpt's sampler drew with the recorded seed), and, for every step along that path, transformers'
processed next-token distribution: softmax of the `scores` generate(do_sample=True, output_scores=True)
returns, i.e. after its whole logits processor list, in float32. Array "<case>.probs" is [steps, V].

`reference_greedy` / `reference_scores` run transformers the way the fixtures were made (on a checkpoint
that common.reference_model loads); the live tests of tests/strategies/test_sampling.py use them too.
"""

import numpy as np
import torch
import transformers
from safetensors.numpy import save_file
from transformers import LogitsProcessorList
from transformers.generation import logits_process as hf

import minigpt
from minigpt.core.numerics import softmax

from .common import (FIXTURES, STRATEGIES, command_line, cut_after, generate_options, left_pad, reference_model,
                     start_torch, write_json)

# Checkpoints written by scripts/reference/logits.py: sharpened random GPT-2s with a 1000-token vocabulary.
GREEDY_CHECKPOINT = "tiny-hub"  # the hub's key layout, loaded into transformers by hand
SAMPLING_CHECKPOINT = "tiny-pretrained"  # save_pretrained's layout
MAX_NEW_TOKENS = 12
SAMPLING_STEPS = 4


# ----------------------------------------------------------------------------- transformers' runs


def reference_greedy(model, prompts, eos, options, max_new_tokens=MAX_NEW_TOKENS, logits_processor=None):
    """transformers' greedy new tokens for each prompt (a left-padded batch, pad = eos), cut after eos."""
    ids, mask = left_pad(prompts, eos)
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=max_new_tokens,
                             eos_token_id=eos, pad_token_id=eos, top_k=None, top_p=None, temperature=None,
                             logits_processor=logits_processor, **generate_options(options))
    return [cut_after(row, eos) for row in out[:, ids.shape[1]:].tolist()]


def reference_scores(model, prefix, eos, options):
    """transformers' processed next-token scores [V] (float32) for one prefix, sampling with `options`:
    the `scores` of generate(do_sample=True), i.e. after its whole logits processor list. top_k is 0
    (off) unless given, as in minigpt (transformers' own default is 50)."""
    kwargs = {"top_k": 0, **generate_options(options)}
    ids = torch.tensor([prefix])
    torch.manual_seed(0)
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True, max_new_tokens=1,
                             eos_token_id=eos, pad_token_id=eos, output_scores=True, return_dict_in_generate=True,
                             **kwargs)
    return out.scores[0][0].float().numpy()


def reference_probs(model, prefix, eos, options):
    """softmax of reference_scores, in float32 (minigpt's softmax, so both sides round alike)."""
    return softmax(reference_scores(model, prefix, eos, options)[None])[0].astype(np.float32)


# ----------------------------------------------------------------------------- the cases


def first_new(tokens, avoid):
    """The first token of `tokens` not in `avoid`."""
    return next(t for t in tokens if t not in avoid)


def greedy_cases(model, prompts):
    """(name, prompts, eos, options[, extra fields to record]) for each greedy case; the tokens named
    come from plain greedy runs, so that every processor changes something."""
    p0, p1 = prompts
    V = model.config.vocab_size
    # the default end-of-text: a token plain greedy reaches late (or never), so that most cases run long
    plain = reference_greedy(model, [p0], V - 1, {}, max_new_tokens=2 * MAX_NEW_TOKENS)[0]
    late = plain[MAX_NEW_TOKENS - 3]
    eos = late if late not in plain[: MAX_NEW_TOKENS - 3] and late not in p0 + p1 else V - 1
    plain = reference_greedy(model, [p0], eos, {})[0]
    early = plain[0]  # an end-of-text greedy picks at once: min_new_tokens must hold it back
    bigram = [plain[3], plain[4]]
    cases = [
        ("plain", [p0], eos, {}),
        ("repetition_penalty_1.3", [p0], eos, {"repetition_penalty": 1.3}),
        ("repetition_penalty_0.8", [p0], eos, {"repetition_penalty": 0.8}),
        ("no_repeat_ngram_2", [p0], eos, {"no_repeat_ngram_size": 2}),
        ("no_repeat_ngram_3", [p0], eos, {"no_repeat_ngram_size": 3}),
        ("bad_words", [p0], eos, {"bad_words_ids": [[plain[0]], bigram]}),
        ("early_eos", [p0], early, {}),
        ("min_new_tokens", [p0], early, {"min_new_tokens": 6}),
        ("suppress_tokens", [p0], eos, {"suppress_tokens": [plain[0], plain[2]]}),
        ("logit_bias", [p0], eos, {"logit_bias": {plain[0]: -3.0, first_new(plain, plain[:1]): 2.5,
                                                    first_new(range(V), plain): 4.0}}),
        ("combined_penalties", [p0], eos, {"repetition_penalty": 1.2, "no_repeat_ngram_size": 2,
                                           "suppress_tokens": [plain[1]], "logit_bias": {plain[3]: -1.5}}),
        ("combined_bans", [p0], early, {"bad_words_ids": [bigram], "min_new_tokens": 4, "repetition_penalty": 1.3}),
        ("batch_plain", [p0, p1], eos, {}),
        ("batch_ngram_min_new", [p0, p1], early, {"no_repeat_ngram_size": 2, "min_new_tokens": 3}),
    ]
    cases.append(batch_repetition_case(model, p0, p1))
    return cases


def batch_repetition_case(model, p0, p1):
    """A left-padded batch with repetition_penalty 0.8 and a pad (= eos) token for which it matters
    whether the penalty counts the padding: transformers 5.x's generate skips it (prompt_ignore_length
    from the attention mask); penalising the pads as well would change the padded row's tokens."""
    short, long_ = sorted([p0, p1], key=len)
    long_ = long_ + [long_[0]] * (len(short) + 3 - len(long_)) if len(long_) < len(short) + 3 else long_
    for pad in range(model.config.vocab_size):
        if pad in short:
            continue
        options = {"repetition_penalty": 0.8}
        skipped = reference_greedy(model, [long_, short], pad, options)
        alone = reference_greedy(model, [short], pad, options)[0]
        everything = reference_greedy(model, [long_, short], pad, {}, logits_processor=LogitsProcessorList(
            [hf.RepetitionPenaltyLogitsProcessor(0.8)]))  # the same penalty, pads included
        if skipped[1] != everything[1] and skipped[1] == alone:
            return ("batch_repetition_padding", [long_, short], pad, options, {"if_pads_were_penalised": everything})
    raise RuntimeError("no pad token makes the padding matter for the repetition penalty")


SAMPLING_SETTINGS = [
    ("temperature_0.7", {"temperature": 0.7}),
    ("temperature_1.5", {"temperature": 1.5}),
    ("top_k_5", {"top_k": 5}),
    ("top_p_0.8", {"top_p": 0.8}),
    ("min_p_0.1", {"min_p": 0.1}),
    ("typical_p_0.9", {"typical_p": 0.9}),
    ("epsilon_3e-4", {"epsilon_cutoff": 3e-4}),
    ("eta_1e-3", {"eta_cutoff": 1e-3}),
    ("penalty_top_k_top_p", {"repetition_penalty": 1.3, "temperature": 0.8, "top_k": 20, "top_p": 0.9}),
    ("ngram_bias_min_p", {"no_repeat_ngram_size": 2, "logit_bias": {3: 1.5, 7: -2.0}, "min_p": 0.05}),
]


def as_json(options):
    """Options as JSON stores them: logit_bias {token: bias} as [[token, bias], ...]."""
    return {k: ([[t, b] for t, b in v.items()] if k == "logit_bias" else v) for k, v in options.items()}


def record_greedy(prompts):
    model, ours = reference_model(FIXTURES / GREEDY_CHECKPOINT), minigpt.load(FIXTURES / GREEDY_CHECKPOINT)
    greedy = {"checkpoint": GREEDY_CHECKPOINT, "transformers": transformers.__version__,
              "max_new_tokens": MAX_NEW_TOKENS, "cases": []}
    for case, prompts, eos, options, *extra in greedy_cases(model, prompts):
        expected = reference_greedy(model, prompts, eos, options)
        got = minigpt.generate(ours, prompts, "greedy", max_new_tokens=MAX_NEW_TOKENS, eos_token_id=eos, **options)
        status = "ok" if got.sequences == expected else f"MINIGPT DIFFERS: {got.sequences}"
        print(f"greedy {case:26s} eos={eos:3d} {expected} {status}")
        greedy["cases"].append({"name": case, "prompts": prompts, "eos_token_id": eos, "options": as_json(options),
                                "expected": expected, **(extra[0] if extra else {})})
    write_json(STRATEGIES / "greedy.json", greedy)


def record_sampling(prompt):
    model, ours = reference_model(FIXTURES / SAMPLING_CHECKPOINT), minigpt.load(FIXTURES / SAMPLING_CHECKPOINT)
    V = ours.config.vocab_size
    eos = ours.config.eos_token_id  # minigpt's default end-of-text (50256: outside this vocabulary, never drawn)
    sampling = {"checkpoint": SAMPLING_CHECKPOINT, "transformers": transformers.__version__, "cases": []}
    arrays = {}
    for i, (case, options) in enumerate(SAMPLING_SETTINGS):
        seed = 100 + i
        got = minigpt.generate(ours, prompt, "sample", max_new_tokens=SAMPLING_STEPS, seed=seed, trace_top=V,
                               **options)
        path = got.sequences[0]
        probs = np.stack([reference_probs(model, prompt + path[:step], eos, options) for step in range(len(path))])
        arrays[f"{case}.probs"] = probs
        ours_probs = np.zeros_like(probs)
        for step, traced in enumerate(got.steps[0]):
            for token, p in ((c.id, c.p) for c in traced.candidates):
                ours_probs[step, token] = p
        print(f"sample {case:20s} path={path} support={(probs > 0).sum(axis=1).tolist()} "
              f"max |minigpt - transformers| = {np.abs(ours_probs - probs).max():.2e}")
        sampling["cases"].append({"name": case, "options": as_json(options), "prompt": prompt, "seed": seed,
                                  "path": path, "eos_token_id": eos})
    write_json(STRATEGIES / "sampling.json", sampling)
    save_file(arrays, str(STRATEGIES / "sampling.safetensors"))


def main():
    command_line(__doc__)
    start_torch(threads=1)  # a tiny model: threads cost more than they save
    rng = np.random.default_rng(7)
    p0 = [int(t) for t in rng.integers(0, 1000, size=7)]  # both checkpoints have 1000 tokens
    p0[5] = p0[1]  # a repeat in the prompt, for the penalties and the n-gram ban
    p1 = [int(t) for t in rng.integers(0, 1000, size=3)]
    record_greedy([p0, p1])
    record_sampling(p0)


if __name__ == "__main__":
    main()
