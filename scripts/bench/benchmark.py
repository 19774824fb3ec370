"""Benchmark minigpt against transformers on the CPU, and against the machine's own limits, in one run.

minigpt and transformers' GPT2LMHeadModel run side by side on the same weights and threads, and the machine's
limits (the sgemm peak, the memory bandwidth) are measured in the same run, in turn with the figures they bound.

    python -m scripts.bench.benchmark                  # every figure, threads = the CPUs this process may use
    python -m scripts.bench.benchmark --threads 1 --out bench.json
    python -m scripts.bench.benchmark --native-blas    # the same, in a child without OPENBLAS_CORETYPE/_L2_SIZE
    python -m scripts.bench.benchmark --xl             # also load and generate with a random gpt2-xl (1.5B)
    python -m scripts.bench.benchmark --tl-python /work/venv-tl/bin/python   # and TransformerLens' patching

Where minigpt's time goes, function by function, is measured by scripts/bench/profile_minigpt.py. What the two
share (settings, threads, the checkpoint, timing) is scripts/bench/common.py; the machine's limits and the
FLOP count are limits.py, the measurements measures.py, the time to first token first_token.py, prompt lookup
decoding drafting.py, looking inside inside.py, the child processes children.py, the table report.py.

The machine's limits, printed first: the BLAS library, kernel and threads in effect (threadpoolctl, the `bench`
extra, or OpenBLAS's own calls), with a warning when OPENBLAS_CORETYPE forces a kernel; the sgemm peak (GFLOP/s
of a [512, 768] x [768, 3072] float32 product at the run's thread count, timed in turn with the prefill runs);
the memory bandwidth (a float32 matrix-vector product over a 256 MB matrix, the faster of x @ W and W @ x, timed
in turn with the greedy runs).

What is measured, each a few times (--repeats), the median reported, minigpt and transformers taking turns so
that the load of a shared machine falls on both alike; under each figure its share of its limit (the goals):
- greedy: a 32-token prompt, 64 new tokens, tokens/s of the whole generate() call (prefill included), and its
  share of the bandwidth bound: the weight bytes read per token (every block's weights, the final layer norm
  and the tied LM head) over the bandwidth (goal >= 80%);
- the default trace's cost (trace_top=10 against 0): --trace-pairs pairs of greedy runs, the order alternating,
  the median of the paired differences per step over the step (goal < 5%);
- prefill: the full logits [512, V] of a 512-token sequence, and its FLOP/s over the sgemm peak (goal >= 70%);
- beam: 4 beams, 32 new tokens (new tokens per second), its share of the bandwidth bound and of the peak;
- beam sampling against beam search, 100 beams x 5 new tokens each, no top-k (goal: at most 1.5x the time);
- the perplexity of a 20,000-token text (windows of 1024, stride 512; goal >= 70% of the peak), and 32 prompts
  from a file, 32 new tokens each (goal >= 60% of the peak), against transformers' guide loop and batched
  generate(), once each;
- minigpt explore (explore_speed.py, issue #26): a Next after 200 accepted tokens against one greedy step of
  generate() at that length (goal <= 2x + 50 ms), the answer's size after 0, 50, 200 (goal: no growth), and
  Run 50 streamed: its first token against its 50th (goal: the first before the 50th is computed);
- prompt lookup decoding against greedy (drafting.py, issue #24): a prompt that repeats itself (a Python function
  written out 3 times), 64 new tokens, tokens/s of both, the speed-up, the drafts kept and the tokens per forward
  pass; the texts must be the same (or the run stops). A random checkpoint's text loops on a token instead of
  following the prompt, so there the speed-up is drafting's on that loop; the real gpt2 gives the real figure;
- inside the model (inside.py, issue #23), on a 17-token prompt: run_with_cache's time in a forward pass's (goal
  <= 1.3x), and the four patching sweeps (resid_pre, attn_out, mlp_out, head; at most 2 runs each, as a sweep
  takes 10-30 s), against TransformerLens' with --tl-python (goal: at most half its time), run in a child of
  that Python; without it the goal is not measured;
- the time to first token, cold and warm, of `minigpt generate` and of a transformers script
  (scripts/bench/transformers_first_token.py) on a fresh copy of the checkpoint (first_token.py; --drop-caches);
- peak RSS: ru_maxrss (os.wait4) of a child process that only loads minigpt and generates (greedy, then
  beam), against the checkpoint's bytes; two such processes sharing the mapped weights;
- --xl: a child that loads a random checkpoint of gpt2-xl's shape and generates, its peak RSS against
  the machine's memory.
Both generate exactly the same number of tokens: minigpt is given an end-of-text id it can never pick
(vocab_size), transformers min_new_tokens = max_new_tokens.

The weights are the real gpt2 where minigpt.load("gpt2") finds it without the network ($MINIGPT_WEIGHTS,
weights/, the Hugging Face cache); otherwise a random GPT2LMHeadModel(GPT2Config()) (seed 0) that transformers'
save_pretrained writes once into --cache-dir. Without torch and transformers only minigpt's figures
are measured (and the random checkpoint must already be in the cache, or given with --model-dir). A checkpoint
with fewer than 1024 positions (minigpt/data/tiny has 256) is refused: the perplexity windows need 1024.

Threads: --threads N sets OPENBLAS_NUM_THREADS, OMP_NUM_THREADS and MKL_NUM_THREADS before NumPy starts its
thread pool (common.use_threads), threadpoolctl's limit when it is installed, and torch.set_num_threads(N).

--native-blas: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, where the environment sets them, make OpenBLAS
pick another kernel than the one for this CPU (and a wrong cache size). A default run leaves them as
they are; --native-blas runs this same benchmark in a child process with both unset (the parent's
environment is untouched), and the table says which OpenBLAS kernel ran. Run both to show both figures.

On a shared machine: each figure is the median of --repeats runs, and the table's `best` column gives
the ratio of each side's fastest run; the load average is recorded as each measurement starts.
When another process holds a CPU, OpenBLAS with 2 threads can slow down twenty-fold on small
matrix-vector products (its threads wait for each other), so --threads 1 gives steadier figures there.

Needs only NumPy and minigpt; torch and transformers are optional (the `reference` extra), threadpoolctl too
(the `bench` extra). docs/performance.md holds the measured tables, what holds each figure back, and the profile.
"""


import argparse
import importlib.util
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import minigpt
from minigpt.core.config import GPTConfig

from . import common, drafting, inside
from .children import children, print_children, run_child
from .common import (NATIVE_BLAS_MARK, Settings, add_common_arguments, blas_info, blas_warning, import_transformers,
                     limit_numpy_threads, loadavg, machine_info, model_folder, rerun_with_native_blas, use_threads)
from .explore_speed import explore_speed
from .first_token import first_token_times
from .measures import CONTEXT_NEEDED, compare
from .report import MEASURES, print_notes, print_table, summarize

MODULE = common.BENCHMARK  # python -m scripts.bench.benchmark


@dataclass(frozen=True)
class BenchmarkSettings(Settings):
    """The benchmark's settings: the shared ones, and its own."""

    repeats: int = 5
    no_transformers: bool = False  # minigpt's figures only, even if transformers is installed
    xl: bool = False  # also load and generate with a random gpt2-xl-shaped checkpoint
    xl_new_tokens: int = 16  # tokens that the --xl run generates
    tl_python: str | None = None  # a Python with transformer_lens, to time TransformerLens' patching beside minigpt
    trace_pairs: int = 10  # paired greedy runs, trace on and off, that measure the trace's cost
    first_token_runs: int = 5  # warm runs of each first-token command (after the cold one)
    drop_caches: bool = False  # drop the page cache before each cold first-token run (root)
    child: str | None = None  # what a child process does (children.run_child), None in the parent
    child_dir: Path | None = None  # the checkpoint a child works on


def parse_args(argv=None) -> BenchmarkSettings:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed runs of each measurement (of each patching sweep at most 2); the median is "
                             "reported")
    parser.add_argument("--no-transformers", action="store_true",
                        help="measure minigpt only, even if transformers is installed")
    parser.add_argument("--xl", action="store_true",
                        help="also load + generate with a random gpt2-xl-shaped checkpoint (1.5B, 6.2 GB; slow)")
    parser.add_argument("--xl-new-tokens", type=int, default=16,
                        help="tokens that the --xl run generates (default: %(default)s)")
    parser.add_argument("--tl-python", metavar="PY",
                        help="a Python with transformer_lens, e.g. a separate venv, to time TransformerLens' patching "
                             "beside minigpt (a child process; its sweeps take minutes)")
    parser.add_argument("--trace-pairs", type=int, default=10,
                        help="paired greedy runs, the default trace on and off, for its cost (default: %(default)s)")
    parser.add_argument("--first-token-runs", type=int, default=5,
                        help="warm runs of each first-token command, after the cold one (default: %(default)s)")
    parser.add_argument("--drop-caches", action="store_true",
                        help="drop the kernel's page cache before each cold first-token run (root only; it slows "
                             "the whole machine for a while)")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: what a child process does
    parser.add_argument("--child-dir", type=Path, help=argparse.SUPPRESS)
    return BenchmarkSettings.of(parser.parse_args(argv))


def has_transformers(wanted: bool) -> bool:
    """Whether torch and transformers take part: wanted, and both installed."""
    has = wanted and all(importlib.util.find_spec(m) for m in ("torch", "transformers"))
    if wanted and not has:
        print("torch/transformers not installed: minigpt's figures only", flush=True)
    return has


def check_context(folder: Path):
    """Refuse, in one sentence, a checkpoint too short for the measurements (the perplexity windows)."""
    n_positions = GPTConfig.from_json(folder / "config.json").n_positions
    if n_positions < CONTEXT_NEEDED:
        sys.exit(f"{folder} holds {n_positions} positions, and the benchmark needs {CONTEXT_NEEDED} (its perplexity "
                 f"windows): give a checkpoint of gpt2's context with --model-dir, or leave it out to measure gpt2.")


def run(settings: BenchmarkSettings, argv: list[str]) -> dict:
    """Every figure: the child processes first, then the time to first token and the comparisons; prints the
    table. -> the report"""
    start = loadavg()
    limit = limit_numpy_threads(settings.threads)  # threadpoolctl's limit lasts while it is referenced
    has_hf = has_transformers(not settings.no_transformers)
    folder, real = model_folder(settings, has_hf)
    check_context(folder)
    checkpoint_bytes = (folder / "model.safetensors").stat().st_size
    blas = blas_info()
    meta = {"command": " ".join(["python -m", MODULE, *argv]), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "machine": machine_info(), "threads": settings.threads, "repeats": settings.repeats, "blas": blas,
            "blas_warning": blas_warning(blas), "loadavg_start": start, "checkpoint_bytes": checkpoint_bytes,
            "checkpoint": str(folder) if real else f"random gpt2 124M ({folder})",
            "numpy_threads_set_by": "threadpoolctl" if limit else "OPENBLAS_NUM_THREADS, openblas_set_num_threads"}
    print(f"checkpoint {folder}; {settings.threads} thread(s); BLAS {blas.get('library')}, kernel "
          f"{blas.get('kernel', '?')}; load average {start}", flush=True)
    if meta["blas_warning"]:
        print(meta["blas_warning"], flush=True)
    rss, rss_hf, xl = children(folder, has_hf, settings, settings.xl_new_tokens if settings.xl else None)
    print("time to first token, in child processes ...", flush=True)
    first = first_token_times(folder, settings.cache_dir, settings.threads, has_hf, settings.first_token_runs,
                              settings.drop_caches)
    hf = import_transformers(settings.threads) if has_hf else None
    if hf:
        torch, transformers = hf
        meta |= {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                 "transformers": transformers.__version__}
    print("comparing ...", flush=True)
    cmp = compare(folder, hf, settings.repeats, settings.trace_pairs)
    explore, drafted, looked = minigpt_only(minigpt.load(folder), settings)
    meta |= {"loadavg_end": loadavg(), "bandwidth": cmp["bandwidth"], "sgemm_peak": cmp["sgemm_peak"],
             "weight_bytes_per_token": cmp["weight_bytes_per_token"], "flops": cmp["flops"],
             "attn_implementation": cmp.get("attn_implementation"),
             "loadavg_per_measure": {k: v and v[0] for k, v in cmp["loadavg"].items()}}
    rows = summarize(cmp, first, rss, rss_hf, xl, checkpoint_bytes, meta["machine"]["memory_bytes"], explore,
                     drafted, looked)
    print_table(rows, meta)
    print_notes(cmp, first)
    print(drafting.describe(drafted, real))
    print("\n".join(["inside:", *inside.report(looked)]))
    counts = cmp["new_token_counts"]
    print(f"new tokens generated: {counts}; "
          f"prefill logits max |minigpt - transformers| = {cmp.get('prefill_max_abs_diff', '-')}")
    print_children(rss, rss_hf, xl)
    return {"meta": meta, "rows": rows, "samples": {k: cmp[k] for k in MEASURES}, "loadavg_per_measure": cmp["loadavg"],
            "bandwidth_samples_s": cmp["bandwidth_samples_s"], "sgemm_samples_s": cmp["sgemm_samples_s"],
            "trace": cmp["trace"], "explore": explore, "drafting": drafted, "inside": looked, "first_token": first,
            "rss_minigpt": rss, "rss_transformers": rss_hf, "xl": xl,
            "new_token_counts": counts, "prefill_max_abs_diff": cmp.get("prefill_max_abs_diff")}


def minigpt_only(model, settings: BenchmarkSettings) -> tuple[dict, dict, dict]:
    """minigpt's own figures: explore's clicks, prompt lookup against greedy, and looking inside (with
    TransformerLens' in a child of --tl-python). -> (explore, drafting, inside)"""
    print("minigpt explore: Next after 200 tokens, the answer's size, Run 50 streamed ...", flush=True)
    explore = explore_speed(model, settings.repeats)
    print("prompt lookup decoding against greedy, on a prompt that repeats itself ...", flush=True)
    drafted = drafting.drafting(model, settings.repeats)
    print("inside: run_with_cache, the four patching sweeps" + (", and TransformerLens' in a child ..."
                                                                 if settings.tl_python else " ..."), flush=True)
    return explore, drafted, inside.measure(model, settings.repeats, settings.tl_python, settings.threads)


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
