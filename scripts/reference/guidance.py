"""Record what transformers' classifier-free guidance generates, so that tests/sources/test_guidance.py can replay
it against minigpt without torch.

    python -m scripts.reference.guidance
        # -> tests/fixtures/strategies/guidance.json (+ guidance.safetensors: processed scores)

generate(guidance_scale=g, negative_prompt_ids=...) runs UnbatchedClassifierFreeGuidanceLogitsProcessor
first in the chain: the model is run a second time, with its own cache, on the negative prompt (or, without
one, on each prompt's last token), and the scores become g * (log p_cond - log p_uncond) + log p_uncond.
Each case gives its prompts (left-padded here, as minigpt.generate pads them), its negative prompt (one
list of ids for every prompt, or none), the options under minigpt's names, and transformers' greedy
tokens (cut after the first end-of-text). The cases on tiny-hub (1000 tokens) also keep the processed
scores [B, V] of their first STEPS steps (generate's output_scores), in guidance.safetensors.

The checkpoints are tests/fixtures/fullvocab (GPT-2's vocabulary, prompts from real text) and
tests/fixtures/tiny-hub. Runs under transformers 5.x or 4.46 (the processor is the same in both).
"""

import sys

import numpy as np
import torch
from safetensors.numpy import save_file

from .common import (EOT, FIXTURES, STRATEGIES, command_line, cut_after, gpt2_encoding, left_pad, reference_model,
                     start_torch, versions, write_json)

OUT = STRATEGIES / "guidance.json"
STEPS = 3  # processed scores kept per tiny-hub case


def run(model, prompts, negative, options):
    """transformers' greedy generate() with guidance; the processed scores of every step [steps, B, V]."""
    eos = options["eos_token_id"]
    pad = eos if eos < model.config.vocab_size else 0
    ids, mask = left_pad(prompts, pad)
    extra = {}
    if negative is not None:  # the same negative prompt for every row: no padding in the unconditional pass
        extra["negative_prompt_ids"] = torch.tensor([negative] * len(prompts))
        extra["negative_prompt_attention_mask"] = torch.ones_like(extra["negative_prompt_ids"])
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, pad_token_id=pad, use_cache=True,
                             output_scores=True, return_dict_in_generate=True, **options, **extra)
    sequences = [cut_after(row[ids.shape[1]:], eos) for row in out.sequences.tolist()]
    return sequences, torch.stack(out.scores).numpy()


def cases(encoding):
    text = lambda s: encoding.encode(s)  # noqa: E731
    dog, today, little = text("The dog"), text("Today, I"), text("Hello, my dog is a little")
    sad = text("A very sad and gloomy story:")
    full = dict(max_new_tokens=12, eos_token_id=EOT)
    rng = np.random.default_rng(7)
    tiny = lambda n: [int(t) for t in rng.integers(0, 1000, size=n)]  # noqa: E731
    never = dict(max_new_tokens=10, eos_token_id=1000)  # an end-of-text outside tiny-hub's vocabulary
    tiny_prompt, tiny_negative = tiny(6), tiny(4)
    return [
        ("fullvocab", "scale1.5", [dog], None, dict(guidance_scale=1.5, **full)),
        ("fullvocab", "scale3", [dog], None, dict(guidance_scale=3.0, **full)),
        ("fullvocab", "scale1.5-negative", [dog], sad, dict(guidance_scale=1.5, **full)),
        ("fullvocab", "scale3-negative", [dog], sad, dict(guidance_scale=3.0, **full)),
        ("fullvocab", "scale0-negative", [little], sad, dict(guidance_scale=0.0, **full)),
        ("fullvocab", "scale1-is-greedy", [dog], None, dict(guidance_scale=1.0, **full)),
        ("fullvocab", "scale3-repetition-penalty", [little], None,
         dict(guidance_scale=3.0, repetition_penalty=1.3, **full)),
        ("fullvocab", "batch-scale1.5", [dog, today, little], None, dict(guidance_scale=1.5, **full)),
        ("fullvocab", "batch-scale3-negative", [dog, little], sad, dict(guidance_scale=3.0, **full)),
        ("tiny-hub", "scale1.5", [tiny_prompt], None, dict(guidance_scale=1.5, **never)),
        ("tiny-hub", "scale3", [tiny_prompt], None, dict(guidance_scale=3.0, **never)),
        ("tiny-hub", "scale1.5-negative", [tiny_prompt], tiny_negative, dict(guidance_scale=1.5, **never)),
        ("tiny-hub", "scale3-negative", [tiny_prompt, tiny(3)], tiny_negative, dict(guidance_scale=3.0, **never)),
    ]


def main():
    command_line(__doc__)
    start_torch(threads=None)
    encoding = gpt2_encoding()
    models, records, arrays = {}, [], {}
    for model_name, case, prompts, negative, options in cases(encoding):
        if model_name not in models:
            models[model_name] = reference_model(FIXTURES / model_name)
        model = models[model_name]
        sequences, scores = run(model, prompts, negative, options)
        plain = {k: v for k, v in options.items() if k != "guidance_scale"}
        greedy, _ = run(model, prompts, None, plain)
        name = f"{model_name}/{case}"
        record = dict(name=name, model=model_name, prompts=prompts, negative_prompt_ids=negative, options=options,
                      sequences=sequences, greedy=greedy)
        if model_name == "tiny-hub":
            record["scores"] = name
            arrays[name] = np.ascontiguousarray(scores[:STEPS], dtype=np.float32)  # [steps, B, V]
        records.append(record)
        print(f"{name}: {'differs from' if sequences != greedy else 'equals'} greedy", file=sys.stderr)
    path = write_json(OUT, {**versions(), "cases": records})
    save_file(arrays, str(OUT.with_suffix(".safetensors")))
    print(f"wrote {len(records)} cases to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
