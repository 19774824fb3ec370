"""Record what transformers' beam searches return, so that tests/strategies/test_beam.py can check minigpt's
without torch.

    pip install -e '.[reference]'                        # transformers 5.x
    python -m scripts.reference.beam                     # -> tests/fixtures/strategies/beam.json

    # diverse (group) beam search left transformers' core in version 5: record it with 4.46, in an environment
    # of its own (scripts/reference/__init__.py says how to make one)
    <env>/bin/python -m scripts.reference.beam --diverse   # -> tests/fixtures/strategies/diverse_beam.json

The checkpoints are the sharpened random GPT-2s that scripts/reference/logits.py writes to tests/fixtures/<name>/.
Each case: the checkpoint, the prompts (a left-padded batch when there are two), minigpt's options, and for
every returned sequence (num_return_sequences per prompt, prompt-major, best first) its new tokens, cut after
the end-of-text token as minigpt returns them, and transformers' sequences_scores. The end-of-text token of
a case is picked among the tokens an earlier search produced, so that beams do end; a few cases end at once.

This script imports nothing of minigpt, so that it runs in an environment of transformers 4.46.
"""

import argparse
import hashlib
import itertools

import numpy as np
import torch
import transformers

from .common import (FIXTURES, STRATEGIES, cut_after, generate_options, left_pad, reference_model, start_torch,
                     versions, write_json)

MAX_NEW_TOKENS = 12
LENGTH_PENALTIES = (-1.0, 0.0, 0.5, 1.0, 2.0)
EARLY_STOPPING = (True, False, "never")


def checkpoint_digest(name: str) -> str:
    """sha256 of tests/fixtures/<name>/model.safetensors: the test notices when the checkpoint changed."""
    return hashlib.sha256((FIXTURES / name / "model.safetensors").read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- transformers' runs


@torch.no_grad()
def run(model, prompts: list[list[int]], eos: int, options: dict):
    """transformers' beam search on the prompts (left-padded with eos): new tokens and sequences_scores."""
    ids, mask = left_pad(prompts, eos)
    out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, eos_token_id=eos, pad_token_id=eos,
                         return_dict_in_generate=True, output_scores=True, **generate_options(options))
    return [cut_after(row, eos) for row in out.sequences[:, ids.shape[1]:].tolist()], out.sequences_scores.tolist()


def probe_tokens(model, prompts, num_beams, steps) -> list[int]:
    """Tokens that beam search produces early (positions 1 to steps - 1 of its beams), to serve as end-of-text."""
    sequences, _ = run(model, prompts, eos=model.config.vocab_size - 1,
                       options=dict(num_beams=num_beams, num_return_sequences=num_beams, max_new_tokens=steps))
    return sorted({t for s in sequences for t in s[1:]} - {model.config.vocab_size - 1})


# ----------------------------------------------------------------------------- the cases


class Recorder:
    """Runs cases on one checkpoint and collects them."""

    def __init__(self, name: str, seed: int, diverse: bool):
        self.name, self.model, self.diverse = name, reference_model(FIXTURES / name), diverse
        self.vocab = self.model.config.vocab_size
        self.rng = np.random.default_rng(seed)
        self.cases = []

    def prompt(self, n: int) -> list[int]:
        return [int(t) for t in self.rng.integers(0, self.vocab, n)]

    def end_token(self, prompts, num_beams, steps, first=False) -> int:
        """An end-of-text token that beams will meet: one they produce early (first: the first token)."""
        if first:
            return run(self.model, prompts, self.vocab - 1, dict(num_beams=num_beams, max_new_tokens=1))[0][0][0]
        return int(self.rng.choice(probe_tokens(self.model, prompts, num_beams, min(steps, 7))))

    def add(self, label: str, prompts, options: dict, eos: int | None = None, first_eos=False):
        options = {"max_new_tokens": MAX_NEW_TOKENS, **options}
        if eos is None:
            eos = self.end_token(prompts, options["num_beams"], options["max_new_tokens"], first_eos)
        sequences, scores = run(self.model, prompts, eos, options)
        self.cases.append({"name": f"{self.name}/{label}", "checkpoint": self.name, "prompts": prompts,
                           "options": {**options, "eos_token_id": eos}, "expected": sequences, "scores": scores})

    def beams(self, k, alpha, stop, n, **extra) -> dict:
        """Beam options; for diverse beam search, an even num_beams in two groups."""
        options = dict(num_beams=k, length_penalty=alpha, early_stopping=stop, num_return_sequences=n, **extra)
        if self.diverse:
            options["num_beams"] = k = max(2, k - k % 2)
            options.update(num_beam_groups=2, diversity_penalty=1.0, num_return_sequences=min(n, k))
        return options

    def beam_grid(self, prompt_length=7):
        """num_beams x length_penalty x early_stopping, one prompt each, num_return_sequences drawn."""
        for k, alpha, stop in itertools.product((2, 3, 4, 5), LENGTH_PENALTIES, EARLY_STOPPING):
            n = int(self.rng.integers(1, k + 1))
            self.add(f"k{k}_lp{alpha}_es{stop}_n{n}", [self.prompt(prompt_length)], self.beams(k, alpha, stop, n))

    def processor_cases(self, prompt_length=6):
        """Each processor that beam search shares with greedy decoding, on a few beam settings."""
        p = self.prompt(prompt_length)
        for label, extra in [
            ("no_repeat_2", dict(no_repeat_ngram_size=2)), ("no_repeat_3", dict(no_repeat_ngram_size=3)),
            ("repetition_1.5", dict(repetition_penalty=1.5)), ("repetition_0.7", dict(repetition_penalty=0.7)),
            ("min_new_5", dict(min_new_tokens=5)), ("bad_words", dict(bad_words_ids=[[p[-1]], p[:2]])),
            ("suppress", dict(suppress_tokens=[p[0], p[1]])),
            ("logit_bias", dict(logit_bias=[[p[2], 3.0], [p[3], -2.5]])),
            ("together", dict(no_repeat_ngram_size=2, repetition_penalty=1.2, min_new_tokens=2)),
        ]:
            for k, alpha, stop in [(3, 1.0, False), (4, 2.0, "never"), (2, 0.0, True)]:
                self.add(f"{label}_k{k}_lp{alpha}_es{stop}", [p], self.beams(k, alpha, stop, 2, **extra))

    def batch_cases(self, lengths=(8, 3)):
        """A left-padded batch of two prompts."""
        prompts = [self.prompt(n) for n in lengths]
        for k, alpha, stop, extra in [(3, 1.0, False, {}), (4, 0.5, True, {}), (2, -1.0, "never", {}),
                                      (5, 2.0, "never", {}), (3, 1.0, False, dict(no_repeat_ngram_size=2)),
                                      (4, 1.0, False, dict(repetition_penalty=1.4)),
                                      (3, 0.0, True, dict(min_new_tokens=4))]:
            if self.diverse and "repetition_penalty" in extra:
                continue  # 4.46 penalised the padding tokens too; minigpt skips them, as 5.x does
            self.add(f"batch_k{k}_lp{alpha}_es{stop}_{'_'.join(extra) or 'plain'}", prompts,
                     self.beams(k, alpha, stop, 2, **extra))

    def short_cases(self, count=40, prompt_length=6):
        """early_stopping=True and a few new tokens: the last step often fills a beam's finished list.
        (transformers 4.46 then drops the running beams it would add at max_new_tokens; 5.x keeps the best.)"""
        for i in range(count):
            alpha, steps = float(self.rng.choice((0.0, 1.0, 2.0, 2.0))), int(self.rng.integers(3, 8))
            self.add(f"short{i}_lp{alpha}_max{steps}", [self.prompt(prompt_length)],
                     {**self.beams(4, alpha, True, 4), "max_new_tokens": steps})

    def diverse_grid(self, prompt_length=6):
        """A sample of num_beams / num_beam_groups x diversity_penalty x length_penalty x early_stopping."""
        for (k, g), dp, alpha, stop in itertools.product(((2, 2), (4, 2), (6, 3), (6, 2), (4, 4)), (0.5, 2.0),
                                                         (-1.0, 0.0, 1.0, 2.0), EARLY_STOPPING):
            if self.rng.random() < 0.6:
                continue  # 40% of the grid keeps the test fast
            n = int(self.rng.integers(1, k + 1))
            self.add(f"k{k}_g{g}_dp{dp}_lp{alpha}_es{stop}_n{n}", [self.prompt(prompt_length)],
                     dict(num_beams=k, num_beam_groups=g, diversity_penalty=dp, length_penalty=alpha,
                          early_stopping=stop, num_return_sequences=n))


# ----------------------------------------------------------------------------- main


def record_beam() -> list[dict]:
    hub = Recorder("tiny-hub", seed=10, diverse=False)
    hub.beam_grid()
    hub.short_cases()
    hub.add("eos_first_k3", [hub.prompt(5)], dict(num_beams=3, num_return_sequences=3), first_eos=True)
    hub.add("eos_first_k2_never", [hub.prompt(5)], dict(num_beams=2, early_stopping="never", num_return_sequences=2),
            first_eos=True)
    pretrained = Recorder("tiny-pretrained", seed=11, diverse=False)
    pretrained.processor_cases()
    pretrained.batch_cases()
    odd = Recorder("odd-f16", seed=12, diverse=False)
    odd.batch_cases(lengths=(3, 9))
    full = Recorder("fullvocab", seed=13, diverse=False)
    for k, alpha, stop in [(3, 1.0, False), (4, 2.0, "never"), (2, 0.5, True)]:
        full.add(f"k{k}_lp{alpha}_es{stop}", [full.prompt(5)],
                 dict(num_beams=k, length_penalty=alpha, early_stopping=stop, num_return_sequences=2))
    return hub.cases + pretrained.cases + odd.cases + full.cases


def record_diverse() -> list[dict]:
    hub = Recorder("tiny-hub", seed=20, diverse=True)
    hub.diverse_grid()
    hub.short_cases()
    hub.add("eos_first_k4_g2", [hub.prompt(5)], dict(num_beams=4, num_beam_groups=2, diversity_penalty=1.0,
                                                      num_return_sequences=4), first_eos=True)
    pretrained = Recorder("tiny-pretrained", seed=21, diverse=True)
    pretrained.processor_cases()
    pretrained.batch_cases()
    odd = Recorder("odd-f16", seed=22, diverse=True)
    odd.batch_cases(lengths=(3, 9))
    return hub.cases + pretrained.cases + odd.cases


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--diverse", action="store_true", help="record diverse beam search (needs transformers 4.x)")
    args = parser.parse_args()
    major = int(transformers.__version__.split(".")[0])
    if args.diverse and major >= 5:
        raise SystemExit(f"transformers {transformers.__version__} has no group beam search; run --diverse with 4.46.")
    if not args.diverse and major < 5:
        raise SystemExit(f"minigpt's beam search matches transformers 5.x; this is {transformers.__version__}.")
    start_torch(threads=1)
    cases = record_diverse() if args.diverse else record_beam()
    checkpoints = {name: checkpoint_digest(name) for name in sorted({c["checkpoint"] for c in cases})}
    record = {**versions(), "checkpoints": checkpoints, "cases": cases}
    path = write_json(STRATEGIES / ("diverse_beam.json" if args.diverse else "beam.json"), record,
                      flat_lists=True)  # a token list per line
    ended = sum(s[-1] == c["options"]["eos_token_id"] for c in cases for s in c["expected"] if s)
    print(f"{path}: {len(cases)} cases, {ended} sequences end in end-of-text")


if __name__ == "__main__":
    main()
