"""Benchmark minigpt against transformers' GPT2LMHeadModel on the CPU, side by side in one run.

    python -m scripts.bench.benchmark                  # every figure, threads = the CPUs this process may use
    python -m scripts.bench.benchmark --threads 1 --out bench.json
    python -m scripts.bench.benchmark --native-blas    # the same, in a child without OPENBLAS_CORETYPE/_L2_SIZE
    python -m scripts.bench.benchmark --xl             # also load and generate with a random gpt2-xl (1.5B)

Where minigpt's time goes, function by function, is measured by scripts/bench/profile_minigpt.py. What the two
share (settings, threads, the checkpoint, timing) is scripts/bench/common.py; the measurements are measures.py,
the child processes children.py, the table report.py.

What is measured, each a few times (--repeats), the median reported, minigpt and transformers taking
turns so that the load of a shared machine falls on both alike:
- load: safetensors -> a ready model (minigpt.load / GPT2LMHeadModel.from_pretrained);
- greedy: a 32-token prompt, 64 new tokens, tokens/s of the whole generate() call (prefill included);
  and that speed as a share of the memory-bandwidth bound: the weight bytes read per token (every block's
  weights, the final layer norm and the tied LM head) over the bandwidth a float32 matrix-vector product
  over a 256 MB matrix reaches in NumPy (the faster of x @ W and W @ x), timed in turn with the greedy
  runs, with the same threads;
- prefill: the full logits [512, V] of a 512-token sequence;
- beam: 4 beams, 32 new tokens (new tokens per second of the call);
- peak RSS: ru_maxrss (os.wait4) of a child process that only loads minigpt and generates (greedy, then
  beam), against the checkpoint's bytes;
- --xl: a child that loads a random checkpoint of gpt2-xl's shape and generates, its peak RSS against
  the machine's memory.
Both generate exactly the same number of tokens: minigpt is given an end-of-text id it can never pick
(vocab_size), transformers min_new_tokens = max_new_tokens.

The weights are the real gpt2 where minigpt.load("gpt2") finds it without the network ($MINIGPT_WEIGHTS,
weights/, the Hugging Face cache); otherwise a random GPT2LMHeadModel(GPT2Config()) (seed 0) that transformers'
save_pretrained writes once into --cache-dir. Without torch and transformers only minigpt's figures
are measured (and the random checkpoint must already be in the cache, or given with --model-dir).

Threads: --threads N sets OPENBLAS_NUM_THREADS, OMP_NUM_THREADS and MKL_NUM_THREADS before NumPy starts its
thread pool (common.use_threads), threadpoolctl's limit when it is installed, and torch.set_num_threads(N).

--native-blas: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, where the environment sets them, make OpenBLAS
pick another kernel than the one for this CPU (and a wrong cache size). A default run leaves them as
they are; --native-blas runs this same benchmark in a child process with both unset (the parent's
environment is untouched), and the table says which OpenBLAS kernel ran. Run both to show both figures.

On a shared machine: each figure is the median of --repeats runs, and the table's `best` column gives
the ratio of each side's fastest run; the 1-minute load average is recorded as each measurement starts.
When another process holds a CPU, OpenBLAS with 2 threads can slow down twenty-fold on small
matrix-vector products (its threads wait for each other), so --threads 1 gives steadier figures there.

Needs only NumPy and minigpt; torch and transformers are optional (the `reference` extra).

scripts/PROFILE.md holds the first measured tables, where the time goes per token and per prefill,
and the ranked list of changes that the performance goals call for.
"""


import argparse
import importlib.util
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import common
from .children import children, print_children, run_child
from .common import (NATIVE_BLAS_MARK, Settings, add_common_arguments, blas_info, import_transformers,
                     limit_numpy_threads, loadavg, machine_info, model_folder, rerun_with_native_blas, use_threads)
from .measures import compare
from .report import MEASURES, print_table, summarize

MODULE = common.BENCHMARK  # python -m scripts.bench.benchmark


@dataclass(frozen=True)
class BenchmarkSettings(Settings):
    """The benchmark's settings: the shared ones, and its own."""

    repeats: int = 5
    no_transformers: bool = False  # minigpt's figures only, even if transformers is installed
    xl: bool = False  # also load and generate with a random gpt2-xl-shaped checkpoint
    xl_new_tokens: int = 16  # tokens that the --xl run generates
    child: str | None = None  # what a child process does (children.run_child), None in the parent
    child_dir: Path | None = None  # the checkpoint a child works on


def parse_args(argv=None) -> BenchmarkSettings:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed runs of each measurement; the median is reported")
    parser.add_argument("--no-transformers", action="store_true",
                        help="measure minigpt only, even if transformers is installed")
    parser.add_argument("--xl", action="store_true",
                        help="also load + generate with a random gpt2-xl-shaped checkpoint (1.5B, 6.2 GB; slow)")
    parser.add_argument("--xl-new-tokens", type=int, default=16,
                        help="tokens that the --xl run generates (default: %(default)s)")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: what a child process does
    parser.add_argument("--child-dir", type=Path, help=argparse.SUPPRESS)
    return BenchmarkSettings.of(parser.parse_args(argv))


def has_transformers(wanted: bool) -> bool:
    """Whether torch and transformers take part: wanted, and both installed."""
    has = wanted and all(importlib.util.find_spec(m) for m in ("torch", "transformers"))
    if wanted and not has:
        print("torch/transformers not installed: minigpt's figures only", flush=True)
    return has


def run(settings: BenchmarkSettings, argv: list[str]) -> dict:
    """Every figure: the child processes first, then the comparisons; prints the table. -> the report"""
    start = loadavg()
    limit = limit_numpy_threads(settings.threads)  # threadpoolctl's limit lasts while it is referenced
    has_hf = has_transformers(not settings.no_transformers)
    folder, real = model_folder(settings, has_hf)
    checkpoint_bytes = (folder / "model.safetensors").stat().st_size
    meta = {"command": " ".join(["python -m", MODULE, *argv]), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "machine": machine_info(), "threads": settings.threads, "repeats": settings.repeats, "blas": blas_info(),
            "checkpoint": str(folder) if real else f"random gpt2 124M ({folder})", "checkpoint_bytes": checkpoint_bytes,
            "loadavg_start": start,
            "numpy_threads_set_by": "threadpoolctl" if limit else "OPENBLAS_NUM_THREADS, openblas_set_num_threads"}
    print(f"checkpoint {folder}; {settings.threads} thread(s); load average {start}", flush=True)
    rss, rss_hf, xl = children(folder, has_hf, settings, settings.xl_new_tokens if settings.xl else None)

    hf = import_transformers(settings.threads) if has_hf else None
    if hf:
        torch, transformers = hf
        meta |= {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                 "transformers": transformers.__version__}
    print("comparing ...", flush=True)
    cmp = compare(folder, hf, settings.repeats)
    meta |= {"loadavg_end": loadavg(), "bandwidth": cmp["bandwidth"],
             "weight_bytes_per_token": cmp["weight_bytes_per_token"],
             "attn_implementation": cmp.get("attn_implementation"),
             "loadavg_per_measure": {k: v and v[0] for k, v in cmp["loadavg"].items()}}
    rows = summarize(cmp, cmp["bandwidth"], rss, rss_hf, xl, checkpoint_bytes, meta["machine"]["memory_bytes"])
    print_table(rows, meta)
    counts = cmp["new_token_counts"]
    print(f"new tokens generated: {counts}; "
          f"prefill logits max |minigpt - transformers| = {cmp.get('prefill_max_abs_diff', '-')}")
    print_children(rss, rss_hf, xl)
    return {"meta": meta, "rows": rows, "samples": {k: cmp[k] for k in MEASURES}, "loadavg_per_measure": cmp["loadavg"],
            "bandwidth_samples_s": cmp["bandwidth_samples_s"], "rss_minigpt": rss, "rss_transformers": rss_hf, "xl": xl,
            "new_token_counts": counts, "prefill_max_abs_diff": cmp.get("prefill_max_abs_diff")}


def main(argv: list[str] | None = None):
    """Parse the arguments, then (in this order) make sure the thread counts are in the environment
    (use_threads), rerun for --native-blas, and run: the comparison, or what a --child process does."""
    argv = sys.argv[1:] if argv is None else argv
    settings = parse_args(argv)
    use_threads(settings.threads, MODULE, argv)
    if settings.native_blas and NATIVE_BLAS_MARK not in os.environ:
        sys.exit(rerun_with_native_blas(MODULE, argv))
    if settings.child:
        return run_child(settings.child, settings.child_dir, settings.threads, settings.xl_new_tokens)
    report = run(settings, argv)
    if settings.out:
        settings.out.write_text(json.dumps(report, indent=1, default=str))
        print(f"\nwrote {settings.out}")


if __name__ == "__main__":
    main()
