"""Prompt lookup decoding against greedy (issue #24), on the benchmark's checkpoint and a prompt that repeats itself:
a short Python function written out three times (PROMPT, tokenized by minigpt's Tokenizer), then 64 new tokens.

- greedy and prompt lookup decoding (prompt_lookup_num_tokens 10, max_matching_ngram_size 2), taking turns,
  `repeats` each after one warm-up, each given an end-of-text id it can never pick (vocab_size), so that both
  make exactly 64 tokens; tokens/s of each whole generate() call (prefill included) and the speed-up;
- what the drafting bought (out.stats, speculative.draft_stats): the share of drafted tokens the model kept,
  and the tokens each forward pass gave (greedy's is 1);
- the two texts must be the same, token for token (prompt lookup decoding is greedy's text, in fewer passes):
  `same_tokens` raises if they differ, and no figure is reported.

On a random checkpoint the model's greedy text does not follow the prompt's n-grams: it loops on a token or two
(" breached breached ..."), and the drafts it keeps are copies of that loop, found in its own text. The speed-up
measured there is what drafting gains on such a loop, not on copied code, and stands in for the real one only
roughly; on the real gpt2 weights (found as the benchmark finds them), which copy the repeated code, it is the
real figure.

    python -m scripts.bench.drafting [--threads 1] [--repeats 3] [--model-dir minigpt/data/tiny] [--out F]

drafting() returns the raw seconds, summary() the figures, for the benchmark's report (report.py) to take.
"""

import argparse
import importlib.util
import json
import os
import sys

import minigpt
from minigpt.core.tokenizer import Tokenizer

from .common import (NATIVE_BLAS_MARK, Settings, add_common_arguments, limit_numpy_threads, median, model_folder,
                     rerun_with_native_blas, take_turns, use_threads)

MODULE = "scripts.bench.drafting"
SNIPPET = ("def mean(values):\n"
           "    total = 0\n"
           "    for value in values:\n"
           "        total += value\n"
           "    return total / len(values)\n\n\n")
PROMPT = SNIPPET * 3  # a text that repeats itself, as code being edited does
NEW_TOKENS = 64
LOOKUP = {"prompt_lookup_num_tokens": 10, "max_matching_ngram_size": 2}


def same_tokens(greedy: list[int], drafted: list[int]):
    """Refuse, in one sentence, a prompt lookup text that is not greedy's: its speed would mean nothing."""
    if list(greedy) != list(drafted):
        at = next((i for i, (a, b) in enumerate(zip(greedy, drafted)) if a != b), min(len(greedy), len(drafted)))
        raise RuntimeError(f"prompt lookup decoding made other tokens than greedy (from new token {at}: "
                           f"{list(drafted[at:at + 5])} against {list(greedy[at:at + 5])}): it must be greedy's "
                           "text in fewer passes, so minigpt/strategies/prompt_lookup.py has a bug to fix.")


def drafting(model, repeats: int) -> dict:
    """Greedy and prompt lookup decoding taking turns on PROMPT, `repeats` each; their tokens checked the same.
    -> seconds of each run, prompt lookup's stats, the prompt's and the new tokens' counts"""
    ids, V = Tokenizer().encode(PROMPT), model.config.vocab_size
    outputs = {}

    def run(name: str, **options):
        def generate():
            outputs[name] = minigpt.generate(model, ids, name, max_new_tokens=NEW_TOKENS, eos_token_id=V, **options)
        return generate

    samples = take_turns({"greedy": run("greedy"), "prompt-lookup": run("prompt-lookup", **LOOKUP)}, repeats)
    greedy, lookup = outputs["greedy"], outputs["prompt-lookup"]
    same_tokens(greedy.sequences[0], lookup.sequences[0])
    return {"greedy_s": samples["greedy"], "prompt_lookup_s": samples["prompt-lookup"], "stats": lookup.stats,
            "prompt_tokens": len(ids), "new_tokens": len(greedy.sequences[0])}


def summary(figures: dict) -> dict:
    """The figures: tokens/s of each (median runs), the speed-up (median and fastest runs), the drafts kept."""
    greedy, lookup, n = figures["greedy_s"], figures["prompt_lookup_s"], figures["new_tokens"]
    return {"greedy_tokens_per_s": n / median(greedy), "lookup_tokens_per_s": n / median(lookup),
            "speedup": median(greedy) / median(lookup), "speedup_best": min(greedy) / min(lookup),
            "acceptance_rate": figures["stats"]["acceptance_rate"],
            "tokens_per_pass": figures["stats"]["tokens_per_pass"]}


def describe(figures: dict, real: bool) -> str:
    """A sentence on what was measured, and whether the speed-up is a floor (random weights) or the real one."""
    s, stats = summary(figures), figures["stats"]
    return (f"prompt lookup on a prompt that repeats itself ({figures['prompt_tokens']} tokens, "
            f"{figures['new_tokens']} new): {s['lookup_tokens_per_s']:.1f} tokens/s against greedy's "
            f"{s['greedy_tokens_per_s']:.1f}, "
            f"{s['speedup']:.2f}x (fastest runs {s['speedup_best']:.2f}x); {stats['accepted']} of {stats['drafted']} "
            f"drafts kept ({s['acceptance_rate']:.0%}), {s['tokens_per_pass']:.2f} tokens per forward pass, the same "
            "tokens as greedy" + ("" if real else "; random weights do not follow the prompt's n-grams (their text "
                                  "loops on a token, and the drafts kept copy the loop), so this is drafting's gain "
                                  "on that loop, not on copied code: the real gpt2 weights give the real figure"))


def main(argv: list[str] | None = None):
    """Measure on the benchmark's checkpoint (or --model-dir) and print it, as the benchmark sets its threads."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each; the median is reported")
    settings = Settings.of(parser.parse_args(argv))
    use_threads(settings.threads, MODULE, argv)
    if settings.native_blas and NATIVE_BLAS_MARK not in os.environ:
        sys.exit(rerun_with_native_blas(MODULE, argv))
    limit = limit_numpy_threads(settings.threads)  # threadpoolctl's limit lasts while it is referenced
    folder, real = model_folder(settings, all(importlib.util.find_spec(m) for m in ("torch", "transformers")))
    figures = drafting(minigpt.load(folder), settings.repeats)
    print(f"{folder}, {settings.threads} thread(s) (set by {'threadpoolctl' if limit else 'OPENBLAS_NUM_THREADS'}), "
          f"median of {settings.repeats}: {describe(figures, real)}")
    if settings.out:
        settings.out.write_text(json.dumps(figures | {"summary": summary(figures)}, indent=1) + "\n")


if __name__ == "__main__":
    main()
