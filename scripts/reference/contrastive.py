"""Record what transformers 4.46's contrastive search generates, so that tests/strategies/test_contrastive.py can
replay it against minigpt without torch.

    <env>/bin/python -m scripts.reference.contrastive [checkpoint names]
        # -> tests/fixtures/strategies/contrastive.json (default names: MODELS, those that exist)

<env> is an environment of transformers 4.46 (scripts/reference/__init__.py says how to make one): it cannot
run under transformers 5, and so not in the `reference` extra's environment.

transformers 5 moved contrastive search out of its core; 4.46 still runs it inside generate() when
penalty_alpha > 0 and top_k > 1 (GenerationMixin._contrastive_search). With penalty_alpha = 0 it runs
greedy search, which contrastive search must then equal.

The models are the sharpened random checkpoints in tests/fixtures/<name>/ (config.json +
model.safetensors, written by scripts/reference/logits.py): sharpened so that the top token has a
probability near 0.5, which leaves room for the degeneration penalty to change the choice. Each case
gives its prompts (left-padded here, as minigpt.generate pads them), the generate() options under
minigpt's names, transformers' new tokens per prompt (cut after the first end-of-text, whose repeats
are only padding), and the greedy tokens for comparison.
"""

import sys

import numpy as np
import torch
from transformers import GPT2LMHeadModel

from .common import FIXTURES, STRATEGIES, command_line, cut_after, left_pad, start_torch, versions, write_json

OUT = STRATEGIES / "contrastive.json"
MODELS = ("tiny-hub", "tiny-pretrained", "odd-f16", "fullvocab", "contrastive-model")


def run(model, prompts, options):
    """transformers' generate() on left-padded prompts; options use minigpt's names (the same as transformers')."""
    eos = options["eos_token_id"]
    ids, mask = left_pad(prompts, eos)
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, pad_token_id=eos, use_cache=True,
                             **options)
    return [cut_after([int(t) for t in row[ids.shape[1]:]], eos) for row in out.tolist()]


def greedy_options(options):
    return {k: v for k, v in options.items() if k not in ("penalty_alpha", "top_k")}


def cases_for(name, model, rng):
    """(case name, prompts, options) for one model: alphas, candidate counts, processors, end-of-text, batches."""
    V = model.config.vocab_size
    never = V  # an end-of-text id outside the vocabulary: generation runs to max_new_tokens

    def prompt(n):
        return [int(t) for t in rng.integers(0, min(V, 50256), size=n)]

    cases = [
        ("alpha0.6-k4", [prompt(5)], dict(penalty_alpha=0.6, top_k=4, max_new_tokens=16, eos_token_id=never)),
        ("alpha0-equals-greedy", [prompt(4)], dict(penalty_alpha=0.0, top_k=4, max_new_tokens=12, eos_token_id=never)),
        ("alpha0.9-k2", [prompt(3)], dict(penalty_alpha=0.9, top_k=2, max_new_tokens=16, eos_token_id=never)),
        ("alpha0.4-k6", [prompt(7)], dict(penalty_alpha=0.4, top_k=6, max_new_tokens=16, eos_token_id=never)),
        ("alpha1-k3", [prompt(2)], dict(penalty_alpha=1.0, top_k=3, max_new_tokens=10, eos_token_id=never)),
        ("one-token-prompt", [prompt(1)], dict(penalty_alpha=0.6, top_k=4, max_new_tokens=14, eos_token_id=never)),
        ("repetition-penalty", [prompt(6)],
         dict(penalty_alpha=0.6, top_k=4, max_new_tokens=16, eos_token_id=never, repetition_penalty=1.5)),
        ("no-repeat-ngram", [prompt(6)],
         dict(penalty_alpha=0.5, top_k=5, max_new_tokens=16, eos_token_id=never, no_repeat_ngram_size=2)),
    ]
    # End of text: make the 4th token of a free run the end-of-text token, so that generation reaches it.
    eos_prompt = prompt(4)
    free = run(model, [eos_prompt], dict(penalty_alpha=0.6, top_k=4, max_new_tokens=8, eos_token_id=never))[0]
    eos = free[3]
    cases += [
        ("reaches-eos", [eos_prompt], dict(penalty_alpha=0.6, top_k=4, max_new_tokens=12, eos_token_id=eos)),
        ("min-new-tokens-holds-eos", [eos_prompt],
         dict(penalty_alpha=0.6, top_k=4, max_new_tokens=12, eos_token_id=eos, min_new_tokens=8)),
        # Batches: left padding (pad id = end-of-text) must not count in the degeneration penalty.
        ("batch-left-padding", [prompt(6), prompt(2), prompt(4)],
         dict(penalty_alpha=0.6, top_k=3, max_new_tokens=12, eos_token_id=eos)),
        ("batch-one-row-ends", [eos_prompt, prompt(3)],
         dict(penalty_alpha=0.6, top_k=4, max_new_tokens=12, eos_token_id=eos)),
        # 4.46's repetition penalty also penalises the left padding (the pad id is end-of-text); minigpt, like
        # transformers 5, skips it. tests/test_contrastive.py replays this case with 4.46's rule.
        ("batch-repetition-penalty", [prompt(6), prompt(2), prompt(4)],
         dict(penalty_alpha=0.6, top_k=4, max_new_tokens=12, eos_token_id=eos, repetition_penalty=1.6)),
    ]
    return cases


def main():
    args = command_line(__doc__, names=MODELS)
    start_torch(threads=None)
    records, found = [], []
    for name in args.names or MODELS:
        folder = FIXTURES / name
        if not (folder / "config.json").is_file():
            continue
        found.append(name)
        model = GPT2LMHeadModel.from_pretrained(folder, torch_dtype=torch.float32, attn_implementation="eager").eval()
        rng = np.random.default_rng(sum(map(ord, name)))
        for case, prompts, options in cases_for(name, model, rng):
            sequences = run(model, prompts, options)
            greedy = run(model, prompts, greedy_options(options))
            records.append(dict(name=f"{name}/{case}", model=name, prompts=prompts, options=options,
                                sequences=sequences, greedy=greedy))
            print(f"{name}/{case}: {'differs from' if sequences != greedy else 'equals'} greedy", file=sys.stderr)
    if not found:
        sys.exit(f"no checkpoint in {FIXTURES}/{{{','.join(MODELS)}}}; run python -m scripts.reference.logits first.")
    path = write_json(OUT, {**versions(), "cases": records})
    print(f"wrote {len(records)} cases for {', '.join(found)} to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
