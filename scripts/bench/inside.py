"""What looking inside costs, on a random checkpoint of gpt2's shape (124M: 12 layers, 12 heads, 768 wide, GPT-2's
vocabulary) and a prompt of 17 tokens:

    cache ratio   run_with_cache (every intermediate kept) / a forward pass with the logits of every position
    sweep         patch() at resid_pre, attn_out, mlp_out and head: the four sweeps of issue 23, one after another

and, with --tl-python, TransformerLens 4.x's time for the same four sweeps (transformer_lens.patching
get_act_patch_*) and for its run_with_cache, on a random GPT2LMHeadModel of the same shape wrapped by its bridge,
measured in a child process of that Python (an environment with transformer_lens, e.g. /work/venv-tl):

    python -m scripts.bench.inside [--threads 1] [--repeats 3] [--tl-python /work/venv-tl/bin/python] [--out F]

measure() returns the figures as a dict, for the benchmark's report to take (its goals, issue 23: run_with_cache at
most 1.3x a forward pass, the four sweeps at most half TransformerLens' time). The weights are random: the time of
a pass does not depend on their values. Both libraries run on --threads threads (default 1). A sweep takes 10 to
30 s on gpt2's shape, so the sweeps run at most SWEEP_REPEATS (2) times whatever --repeats says.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from minigpt import patch, run_with_cache
from minigpt.core.config import GPTConfig
from minigpt.core.model import GPT2, nest
from minigpt.weights.layout import expected_shapes

from .common import limit_numpy_threads, median, take_turns, timed

PLACES = ("resid_pre", "attn_out", "mlp_out", "head")
PROMPT_LENGTH, CORRUPTED_AT = 17, 8
SWEEP_REPEATS = 2  # a sweep takes 10-30 s on gpt2's shape: at most this many runs of each
CACHE_GOAL = 1.3  # run_with_cache's time, in a forward pass's, at most
SWEEP_GOAL = 0.5  # the four sweeps' time, in TransformerLens', at most


def random_gpt2(config: GPTConfig = GPTConfig(), seed: int = 0) -> GPT2:
    """A random model of gpt2's shape, made in memory: weights N(0, 0.02), layer norms at 1 and 0."""
    rng = np.random.default_rng(seed)
    params = {name: (0.02 * rng.standard_normal(shape, dtype=np.float32)) for name, shape in
              expected_shapes(config).items()}
    for name in params:
        if ".ln_" in name or name.startswith("ln_f"):
            params[name][...] = 1.0 if name.endswith("weight") else 0.0
    return GPT2(config, nest(params))


def prompts(vocab_size: int) -> tuple[list[int], list[int]]:
    """The clean prompt (17 seeded random tokens) and the corrupted one, which differs at position 8."""
    clean = np.random.default_rng(0).integers(0, min(vocab_size, 50256), PROMPT_LENGTH)
    corrupted = clean.copy()
    corrupted[CORRUPTED_AT] = (clean[CORRUPTED_AT] + 1) % vocab_size
    return clean.tolist(), corrupted.tolist()


def measure(model: GPT2 | None = None, repeats: int = 3, tl_python: str | None = None, threads: int = 1) -> dict:
    """The figures (seconds, medians of `repeats`): forward, run_with_cache and their ratio; each sweep (at most
    SWEEP_REPEATS runs) and their sum; TransformerLens' with tl_python."""
    limit_numpy_threads(threads)
    model = model or random_gpt2()
    clean, corrupted = prompts(model.config.vocab_size)
    ids = np.array(clean)
    samples = take_turns({"forward": lambda: model(ids), "run_with_cache": lambda: run_with_cache(model, ids)},
                         repeats)
    figures = {name: median(values) for name, values in samples.items()}
    figures["cache_ratio"] = figures["run_with_cache"] / figures["forward"]
    for where in PLACES:
        figures[f"sweep_{where}"] = median([timed(lambda: patch(model, clean, corrupted, where))[0]
                                            for _ in range(min(repeats, SWEEP_REPEATS))])
    figures["sweep"] = sum(figures[f"sweep_{where}"] for where in PLACES)
    if tl_python:
        figures["transformer_lens"] = transformer_lens_figures(tl_python, threads)
        figures["sweep_vs_transformer_lens"] = figures["sweep"] / figures["transformer_lens"]["sweep"]
    return figures


def transformer_lens_figures(python: str, threads: int) -> dict:
    """TransformerLens' times, from a child of `python` running this module with --child-tl."""
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[2]), "TQDM_DISABLE": "1",
                        "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}
    done = subprocess.run([python, "-m", "scripts.bench.inside", "--child-tl", "--threads", str(threads)],
                          env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode:
        raise RuntimeError(f"TransformerLens' child failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def child_transformer_lens(threads: int) -> dict:
    """In the child: TransformerLens' bridge on a random GPT2LMHeadModel of gpt2's shape, its run_with_cache and
    forward once (after a warm-up), then the four sweeps with the metric logit[answer] - logit[wrong]."""
    import torch  # only the child, in TransformerLens' environment, imports these
    from transformer_lens import patching
    from transformer_lens.model_bridge.sources import build_bridge_from_module
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    config = GPT2Config()
    bridge = build_bridge_from_module(GPT2LMHeadModel(config).eval(), "GPT2LMHeadModel", hf_config=config)
    bridge.enable_compatibility_mode(disable_warnings=True, fold_ln=False, center_writing_weights=False,
                                     center_unembed=False, fold_value_biases=False)
    bridge.set_use_attn_result(True)
    clean, corrupted = (torch.tensor([p]) for p in prompts(config.vocab_size))
    figures = {}
    with torch.no_grad():
        bridge(clean), bridge.run_with_cache(clean)  # warm-up
        figures["forward"] = timed(lambda: bridge(clean))[0]
        figures["run_with_cache"], (logits, cache) = timed(lambda: bridge.run_with_cache(clean))
        answer, wrong = logits[0, -1].topk(2).indices.tolist()
        metric = lambda out: out[0, -1, answer] - out[0, -1, wrong]  # noqa: E731
        sweeps = {"resid_pre": patching.get_act_patch_resid_pre, "attn_out": patching.get_act_patch_attn_out,
                  "mlp_out": patching.get_act_patch_mlp_out, "head": patching.get_act_patch_attn_head_out_all_pos}
        for where, sweep in sweeps.items():
            figures[f"sweep_{where}"] = timed(lambda: sweep(bridge, corrupted, cache, metric))[0]
    figures["sweep"] = sum(figures[f"sweep_{where}"] for where in PLACES)
    return figures


def report(figures: dict) -> list[str]:
    lines = [f"forward {figures['forward'] * 1e3:.1f} ms, run_with_cache {figures['run_with_cache'] * 1e3:.1f} ms: "
             f"{figures['cache_ratio']:.2f}x",
             "patching sweep: " + ", ".join(f"{w} {figures[f'sweep_{w}']:.2f} s" for w in PLACES)
             + f"; all four {figures['sweep']:.2f} s"]
    tl = figures.get("transformer_lens")
    if tl:
        lines.append(f"TransformerLens: run_with_cache {tl['run_with_cache'] * 1e3:.1f} ms; sweep "
                     + ", ".join(f"{w} {tl[f'sweep_{w}']:.2f} s" for w in PLACES) + f"; all four {tl['sweep']:.2f} s"
                     + f" (minigpt takes {figures['sweep_vs_transformer_lens']:.2f} of its time)")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="threads for NumPy's BLAS and torch (default 1)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs of each measurement (of each sweep at most 2); the median is reported")
    parser.add_argument("--tl-python", help="a Python with transformer_lens, to time TransformerLens beside minigpt")
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    parser.add_argument("--child-tl", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_tl:
        print(json.dumps(child_transformer_lens(args.threads)))
        return
    started = time.perf_counter()
    figures = measure(repeats=args.repeats, tl_python=args.tl_python, threads=args.threads)
    print("\n".join(report(figures)) + f"\n({time.perf_counter() - started:.0f} s in all)")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
