"""Record transformers' prompt lookup decoding (generate(prompt_lookup_num_tokens=...)), so that
tests/strategies/test_prompt_lookup.py can check minigpt's without torch.

    pip install -e '.[reference]'                   # torch + transformers 5.x
    python -m scripts.reference.prompt_lookup       # writes tests/fixtures/strategies/prompt_lookup.json

For tiny-hub (a sharpened random GPT-2 of 1000 tokens) and prompts that repeat themselves, with several numbers of
drafted tokens and n-gram sizes (and once with a repetition penalty and an end-of-text the text reaches): the new
tokens of transformers' greedy generate() with prompt lookup, of its plain greedy generate(), and how many forward
passes of the model each took (counted by a forward hook; the prompt's pass included).

`reference_prompt_lookup` runs a case as the fixture was made; the live test uses it too.
"""

import torch

from .common import FIXTURES, STRATEGIES, command_line, cut_after, reference_model, start_torch, versions, write_json

OUT = STRATEGIES / "prompt_lookup.json"
CHECKPOINT = "tiny-hub"
EOS = 999
CASES = [  # prompt, prompt_lookup_num_tokens, max_matching_ngram_size, max_new_tokens, other options
    ([5, 17, 99, 3, 250, 17, 99, 3, 250, 17], 10, 2, 30, {}),
    ([5, 17, 99, 3, 250, 17, 99, 3, 250, 17], 3, 1, 30, {}),
    ([1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2], 10, 3, 40, {}),
    ([40, 41, 42, 43, 44, 45], 10, 2, 30, {}),  # nothing repeats at first: the model's own loops do
    ([7, 8, 9, 7, 8, 9, 7, 8], 5, 2, 25, {"repetition_penalty": 1.3}),
    ([12, 300, 12, 301, 12, 302, 12], 4, 2, 20, {"no_repeat_ngram_size": 3}),
]


def generate(model, prompt, max_new_tokens, options, **lookup):
    """transformers' greedy new tokens (cut after end-of-text) and the model's forward passes."""
    passes = []
    hook = model.register_forward_hook(lambda *_: passes.append(1))
    ids = torch.tensor([prompt])
    try:
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=max_new_tokens, eos_token_id=EOS, pad_token_id=EOS, top_k=None,
                                 top_p=None, temperature=None, **options, **lookup)
    finally:
        hook.remove()
    return cut_after(out[0, len(prompt) :].tolist(), EOS), len(passes)


def reference_prompt_lookup(model, prompt, num_tokens, ngram, max_new_tokens, options) -> dict:
    tokens, passes = generate(model, prompt, max_new_tokens, options, prompt_lookup_num_tokens=num_tokens,
                              max_matching_ngram_size=ngram)
    greedy, greedy_passes = generate(model, prompt, max_new_tokens, options)
    return {"tokens": tokens, "passes": passes, "greedy": greedy, "greedy_passes": greedy_passes}


def main():
    command_line(__doc__)
    start_torch(threads=1)
    model = reference_model(FIXTURES / CHECKPOINT)
    cases = []
    for prompt, num_tokens, ngram, max_new_tokens, options in CASES:
        cases.append({"prompt": prompt, "prompt_lookup_num_tokens": num_tokens, "max_matching_ngram_size": ngram,
                      "max_new_tokens": max_new_tokens, "options": options,
                      **reference_prompt_lookup(model, prompt, num_tokens, ngram, max_new_tokens, options)})
    path = write_json(OUT, {**versions(), "checkpoint": CHECKPOINT, "eos_token_id": EOS, "cases": cases},
                      flat_lists=True)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
