"""Record transformers' watermark (WatermarkLogitsProcessor, WatermarkDetector), so that
tests/links/test_watermark.py can check minigpt's green lists, marks and scores without torch.

    pip install -e '.[reference]'                   # torch + transformers 5.x
    python -m scripts.reference.watermark           # writes tests/fixtures/processors/watermark.json

Recorded, for settings of both seeding schemes (keys, green shares, context widths):
- green lists: the ids `_get_greenlist_ids` gives after a context, for vocabularies of 20 (transformers' own test),
  1000 (the fixture checkpoints) and 50257 (GPT-2's; its first 64 ids, how many, and their sum);
- marks: the tokens whose score the processor raised (by exactly the bias) on random logits [2, V] after random
  ids (V = 64 and 120: selfhash looks at the 40 most probable tokens);
- scores: the detector's tokens scored, green tokens, z-score and p-value for texts: GPT-2's tokens of a sentence
  (with and without a leading <|endoftext|>), random ids, and what greedy generate() on tiny-hub writes with and
  without the watermark.

Each run is seeded: a rerun on the same versions writes the same file.
"""

import numpy as np
import torch
from transformers import GPT2Config, WatermarkDetector, WatermarkingConfig
from transformers.generation.logits_process import WatermarkLogitsProcessor

from .common import FIXTURES, command_line, gpt2_encoding, reference_model, start_torch, versions, write_json

OUT = FIXTURES / "processors" / "watermark.json"
SETTINGS = [  # WatermarkingConfig's keywords, the bias aside
    {},
    {"seeding_scheme": "selfhash"},
    {"hashing_key": 42, "greenlist_ratio": 0.5},
    {"seeding_scheme": "selfhash", "context_width": 3, "hashing_key": 7},
    {"seeding_scheme": "lefthash", "context_width": 2, "greenlist_ratio": 0.1},
]
SENTENCE = "The watermark is a pattern in the choice of words that a reader does not see but a detector can count."


def processor(vocab_size, setting, bias=2.0):
    return WatermarkLogitsProcessor(vocab_size=vocab_size, device="cpu", bias=bias, **setting)


def green_lists(rng) -> list:
    records = []
    for vocab in (20, 1000, 50257):
        for setting in SETTINGS:
            mark = processor(vocab, setting)
            for _ in range(3):
                context = [int(t) for t in rng.integers(0, vocab, size=int(rng.integers(1, 5)))]
                green = mark._get_greenlist_ids(torch.tensor(context)).tolist()
                record = {"vocab_size": vocab, "setting": setting, "context": context, "size": len(green)}
                records.append(record | ({"green": green} if vocab <= 1000 else {"first": green[:64],
                                                                                    "sum": int(sum(green))}))
    return records


def marks(rng) -> list:
    records = []
    for vocab in (64, 120):
        for setting in SETTINGS:  # multiples of 1/1024: exact in float32, and short in JSON
            logits = (np.round(rng.normal(0, 3, size=(2, vocab)) * 1024) / 1024).astype(np.float32)
            ids = rng.integers(0, vocab, size=(2, 4))
            out = processor(vocab, setting, bias=1.5)(torch.from_numpy(ids), torch.from_numpy(logits.copy())).numpy()
            assert np.array_equal(out[out != logits], logits[out != logits] + np.float32(1.5))  # the bias, exactly
            records.append({"vocab_size": vocab, "setting": setting, "bias": 1.5, "ids": ids.tolist(),
                            "logits": logits.tolist(),
                            "marked": [np.flatnonzero(row).tolist() for row in out != logits]})
    return records


def generated(watermark: bool) -> list[int]:
    """Greedy new tokens of tiny-hub (a 1000-token vocabulary) after a fixed prompt, watermarked or not."""
    model = reference_model(FIXTURES / "tiny-hub")
    prompt = torch.tensor([[5, 17, 99, 3, 250, 17]])
    config = WatermarkingConfig(bias=4.0) if watermark else None
    with torch.no_grad():
        out = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                             max_new_tokens=40, min_new_tokens=40, eos_token_id=999, pad_token_id=999,
                             watermarking_config=config)
    return out[0, prompt.shape[1] :].tolist()


def scores(rng) -> tuple[list, dict]:
    sentence = gpt2_encoding().encode(SENTENCE)
    texts = {"sentence": (sentence, 50257, 50256), "sentence_with_bos": ([50256] + sentence, 50257, 50256),
             "random": ([int(t) for t in rng.integers(0, 50257, size=50)], 50257, 50256),
             "tiny_hub_watermarked": (generated(True), 1000, 999), "tiny_hub_plain": (generated(False), 1000, 999)}
    records = []
    for name, (ids, vocab, bos) in texts.items():
        for setting in SETTINGS:
            for once in (False, True):
                detector = WatermarkDetector(GPT2Config(vocab_size=vocab, bos_token_id=bos), "cpu",
                                             WatermarkingConfig(**setting), ignore_repeated_ngrams=once)
                out = detector(torch.tensor([ids]), return_dict=True)
                records.append({"text": name, "vocab_size": vocab, "bos_token_id": bos, "setting": setting,
                                "ignore_repeated_ngrams": once, "num_tokens_scored": int(out.num_tokens_scored[0]),
                                "num_green_tokens": int(out.num_green_tokens[0]), "z_score": float(out.z_score[0]),
                                "p_value": float(out.p_value[0])})
    return records, {name: ids for name, (ids, _, _) in texts.items()}


def main():
    command_line(__doc__)
    start_torch(threads=1)
    rng = np.random.default_rng(20250901)
    detected, texts = scores(rng)
    record = {**versions(), "green_lists": green_lists(rng), "marks": marks(rng), "texts": texts,
              "scores": detected, "generate": {"checkpoint": "tiny-hub", "prompt": [5, 17, 99, 3, 250, 17],
                                               "bias": 4.0, "max_new_tokens": 40, "eos_token_id": 999}}
    path = write_json(OUT, record, flat_lists=True)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
