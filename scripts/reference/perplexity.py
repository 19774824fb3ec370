"""Record transformers' sliding-window perplexity on fixture checkpoints, for tests/inspection/test_perplexity.py.

    pip install -e '.[reference]'                   # torch + transformers 5.x
    python -m scripts.reference.perplexity          # writes tests/fixtures/perplexity/reference.json

The loop is the one of transformers' guide "Perplexity of fixed-length models": windows of max_length tokens
whose starts advance by stride, every label before the last trg_len = end - prev_end of a window set to -100,
and `model(input_ids, labels=target_ids).loss` (the mean over the labels that remain after the shift by one).
Each window's NLL is that mean times the count of those labels, so the sum over windows is the exact total.
Seeded and on one thread: re-running it rewrites the same bytes (up to the versions the record names).
"""

import numpy as np
import torch
import transformers

from .common import FIXTURES, command_line, start_torch, write_json

OUT = FIXTURES / "perplexity" / "reference.json"
CASES = [  # fixture, tokens, max_length, stride
    ("fullvocab", 300, 64, 24),
    ("fullvocab", 300, 64, 64),  # no overlap: each window's first token is not scored
    ("fullvocab", 40, 64, 32),  # the whole text in one window
    ("tiny-hub", 500, 128, 100),
]


def text_ids(vocab_size: int, n: int, seed: int = 0) -> list[int]:
    return np.random.default_rng(seed).integers(0, vocab_size, n).tolist()


def window_nlls(model, ids: list[int], max_length: int, stride: int) -> list[dict]:
    """The guide's loop; each window as {begin, end, scored, nll}."""
    ids_t, records, prev_end = torch.tensor([ids]), [], 0
    for begin in range(0, len(ids), stride):
        end = min(begin + max_length, len(ids))
        trg_len = end - prev_end
        input_ids = ids_t[:, begin:end]
        target_ids = input_ids.clone()
        target_ids[:, :-trg_len] = -100
        with torch.inference_mode():
            loss = model(input_ids, labels=target_ids).loss
        scored = int((target_ids[:, 1:] != -100).sum())  # the labels left after the shift by one
        records.append({"begin": begin, "end": end, "scored": scored, "nll": float(loss) * scored})
        prev_end = end
        if end == len(ids):
            break
    return records


def main():
    command_line(__doc__)
    start_torch(threads=1)
    cases = []
    for fixture, n, max_length, stride in CASES:
        folder = FIXTURES / fixture
        model = transformers.GPT2LMHeadModel.from_pretrained(folder, dtype=torch.float32).eval()
        ids = text_ids(model.config.vocab_size, n)
        cases.append({"fixture": fixture, "ids": ids, "max_length": max_length, "stride": stride,
                      "windows": window_nlls(model, ids, max_length, stride)})
    record = {"torch": torch.__version__, "transformers": transformers.__version__, "cases": cases}
    print(f"wrote {write_json(OUT, record, indent=None)}: {len(cases)} cases")


if __name__ == "__main__":
    main()
