"""Where minigpt's time goes: its functions wrapped with timers, per decoded token, per prefill and per beam step.

    python -m scripts.bench.profile_minigpt                      # threads = the CPUs this process may use
    python -m scripts.bench.profile_minigpt --threads 1 --repeats 3 --out profile.json
    python -m scripts.bench.profile_minigpt --native-blas        # in a child without OPENBLAS_CORETYPE/_L2_SIZE

The side-by-side comparison with transformers is scripts/bench/benchmark.py; this script shares with it
scripts/bench/common.py: the options, the thread settings, the checkpoint and the timing helpers.

What is measured, on the same checkpoint and prompts as the benchmark (a 32-token prompt; greedy, 64 new
tokens; a 512-token prefill with full logits; 4 beams, 32 new tokens; and, for the whole-text figures, the
perplexity of 1,536 tokens in two windows of 1024, and 32 prompts of 40 tokens, 32 new each, as one batch): the
exclusive wall time of each wrapped function (a caller is not charged for the wrapped functions it calls), the
median over --repeats runs, split by phase: "prefill" (a forward of more than one token), "decode" (a forward of
one token) and "sampler" (everything between forwards; the perplexity's windows run the blocks without
GPT2.forward, so all of their time is there). Then cProfile's view of one greedy run, by own time. The
profiler also records any wrapped function that returns a floating-point array other than float32.

The machine's limits (limits.py) are timed in the same run, one sample of each before every profiled run: the
sgemm peak and the memory bandwidth. Each run's wall time is then set against them, with the goals of
limits.GOALS beside it, met or missed: greedy's tokens/s as a share of the bandwidth bound, the prefill's,
the perplexity window pair's and the batch's FLOP/s (limits.forward_flops, summed over their forward passes)
as a share of the sgemm peak, beam's of both. The wall time is taken under the wrappers (they add the cost
printed at the top of the profile per call), so these shares read a little below the benchmark's.

What is wrapped is the table WRAPPED below. When minigpt's functions move or are renamed, update it there:
a name that does not exist is an error, not a missing row, and a row that no run reached is reported
after the profile (a function wrapped where nobody looks it up times nothing).
"""

import argparse
import dataclasses
import gc
import importlib
import importlib.util
import io
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

import minigpt
from minigpt.inspection import score_text

from .common import (NATIVE_BLAS_MARK, Settings, add_common_arguments, blas_info, limit_numpy_threads, loadavg,
                     machine_info, median, model_folder, prompt_ids, rerun_with_native_blas, timed, use_threads)
from .limits import (GOALS, bandwidth_bound, bandwidth_of, forward_flops, generation_flops, matvec_functions,
                     perplexity_flops, sgemm_functions, sgemm_peak_of, share_of_bound, share_of_peak, verdict,
                     weight_bytes_per_token)
from .measures import (BEAM_BEAMS, BEAM_NEW, FILE_NEW_TOKENS, FILE_PROMPTS, GREEDY_NEW, PERPLEXITY_STRIDE,
                       PERPLEXITY_WINDOW, PREFILL_TOKENS, PROMPT_TOKENS)

MODULE = "scripts.bench.profile_minigpt"
PAIR_TOKENS = PERPLEXITY_WINDOW + PERPLEXITY_STRIDE  # a text that the windows read as exactly two (a pair)
BATCH_PROMPT_TOKENS = 40  # each of the batch's FILE_PROMPTS prompts, all of one length (no padding)
RUNS = {  # name: (what it is, its measure in limits.GOALS, or None)
    f"greedy_{PROMPT_TOKENS}+{GREEDY_NEW}": ("greedy decoding", "decode"),
    f"prefill_{PREFILL_TOKENS}": ("prefill, full logits", "prefill"),
    f"beam_{BEAM_BEAMS}x{BEAM_NEW}": ("beam search", None),
    f"perplexity_2x{PERPLEXITY_WINDOW}": (f"perplexity, two windows of {PERPLEXITY_WINDOW}", "perplexity"),
    f"batch_{FILE_PROMPTS}x{BATCH_PROMPT_TOKENS}+{FILE_NEW_TOKENS}": (f"{FILE_PROMPTS} batched prompts", "batch"),
}

MATMUL = "<matmul: labelled by its weight's shape>"  # see matmul_label()
FORWARD = "<forward glue: its own time; sets the phase>"  # see Profiler.wrap_forward()

# What is wrapped: (owner, attribute, label). owner is "module" or "module:Class"; after the colon, a dotted
# path of attributes or dict keys ("minigpt.call.strategies:STRATEGIES.greedy"). Entries that share a label add up.
# A function is wrapped where it is looked up: a module that did `from ..core.numerics import log_softmax` calls
# its own name, so the wrapper goes there. A strategy's loop is a generator, which runs while LiveRun.advance()
# draws it: advance's own time is the loop's own Python.
WRAPPED = [
    ("minigpt.core.model", "layer_norm", "layer norm"),
    ("minigpt.core.model", "gelu", "gelu"),
    ("minigpt.core.model", "softmax", "attention softmax"),
    ("minigpt.core.model", "linear", MATMUL),
    ("minigpt.core.model", "attention", "attention: q k^T, scale, mask, @ v"),
    ("minigpt.core.model", "self_attention", "head split/merge, KV cache write"),
    ("minigpt.core.model", "mlp", "glue (Python, residual adds)"),
    ("minigpt.core.model", "block", "glue (Python, residual adds)"),
    ("minigpt.core.model", "unembed", "LM head (unembed)"),
    ("minigpt.core.model", "position_ids", "forward glue: embeddings, mask, positions"),
    ("minigpt.core.model:KVCache", "reorder", "KV cache reorder (copies the cache)"),
    ("minigpt.core.model:GPT2", "forward", FORWARD),
    ("minigpt.strategies.tokenwise", "log_softmax", "log_softmax over V"),
    ("minigpt.strategies.run", "trace_step", "trace_step (softmax + top-k over V)"),  # append_token's
    ("minigpt.strategies.beam", "log_softmax", "log_softmax over V"),
    ("minigpt.strategies.beam", "trace_step", "trace_step (softmax + top-k over V)"),  # extend's
    ("minigpt.core.chain:Chain", "__call__", "processor chain (copies logits)"),
    ("minigpt.core.chain:Greedy", "choose", "argmax / draw"),  # Draw.choose: sampling, not profiled
    ("minigpt.call.generate:LiveRun", "advance", "strategy loop (history, Python)"),  # drives the strategies' loops
    ("minigpt.strategies.tokenwise", "append_token", "emit (per row)"),  # run.append_token
    ("minigpt.strategies.beam:BeamSearch", "step", "beam step (candidates, history)"),
    ("minigpt.strategies.beam", "advance_group", "beam step (candidates, history)"),
    ("minigpt.strategies.beam", "extend", "beam step (candidates, history)"),
]


# ----------------------------------------------------------------------------- the profiler


def qualified_name(owner) -> str:
    """A module's or a class's dotted name, for error messages."""
    if hasattr(owner, "__qualname__"):
        return f"{owner.__module__}.{owner.__qualname__}"
    return getattr(owner, "__name__", repr(owner))


class Profiler:
    """Exclusive wall time per label: wrapped functions nest, and a caller is not charged for the time
    of the wrapped functions it calls. Each label is kept per phase: "prefill" (a forward of T > 1
    tokens), "decode" (a forward of one token) and "sampler" (everything between forwards)."""

    def __init__(self):
        self.stack = []  # time spent in wrapped callees, one entry per open wrapped call
        self.totals = defaultdict(float)
        self.calls = defaultdict(int)
        self.phase = "sampler"
        self.forwards = defaultdict(int)
        self.not_float32 = set()
        self.patched = []
        self.reached = set()  # the `entry` of every wrapper that was called

    def wrap(self, owner, name, label, entry=None):
        """Replace owner.name (a module's function, a class's method or an object's attribute) with a timed
        wrapper. label: a string, or a function of the call's arguments that gives one. entry: what to add to
        self.reached when the wrapper is called (default: the label).
        A missing owner.name is an error: a silently skipped name would be a silently missing row."""
        if not hasattr(owner, name):
            raise AttributeError(f"cannot profile {qualified_name(owner)}.{name}: {qualified_name(owner)} has no "
                                 f"attribute {name!r} (update WRAPPED at the top of scripts/bench/profile_minigpt.py)")
        fn = getattr(owner, name)
        profiler, entry = self, entry or label

        def wrapper(*args, **kwargs):
            key = label(*args, **kwargs) if callable(label) else label
            profiler.reached.add(entry)
            profiler.stack.append(0.0)
            t = time.perf_counter()
            try:
                result = fn(*args, **kwargs)
            finally:
                dt = time.perf_counter() - t
                inner = profiler.stack.pop()
                profiler.totals[profiler.phase, key] += dt - inner
                profiler.calls[profiler.phase, key] += 1
                if profiler.stack:
                    profiler.stack[-1] += dt
            if isinstance(result, np.ndarray) and result.dtype.kind == "f" and result.dtype != np.float32:
                profiler.not_float32.add(f"{key}: {result.dtype}")
            return result

        set_attribute(owner, name, wrapper)
        self.patched.append((owner, name, fn))

    def wrap_forward(self, cls, name="forward", entry=None):
        """GPT2.forward: timed (its own time is glue), and it sets the phase by the number of new tokens."""
        self.wrap(cls, name, "forward glue: embeddings, mask, positions", entry)
        timed_forward, profiler = getattr(cls, name), self

        def forward(model, ids, *args, **kwargs):
            profiler.phase = "prefill" if np.asarray(ids).shape[-1] > 1 else "decode"
            profiler.forwards[profiler.phase] += 1
            try:
                return timed_forward(model, ids, *args, **kwargs)
            finally:
                profiler.phase = "sampler"

        setattr(cls, name, forward)  # restore() puts the original back

    def restore(self):
        for owner, name, fn in reversed(self.patched):
            set_attribute(owner, name, fn)
        self.patched.clear()


def set_attribute(owner, name, value):
    """setattr, also on a frozen dataclass (call.strategies.Strategy): the wrapper replaces the function it holds."""
    if dataclasses.is_dataclass(owner) and not isinstance(owner, type):
        object.__setattr__(owner, name, value)
    else:
        setattr(owner, name, value)


def resolve(owner: str):
    """"module" or "module:path" (a WRAPPED entry's owner) -> the module, or what the dotted path after the
    colon names in it: a class, or a dict's entry (STRATEGIES.greedy)."""
    module_name, _, class_name = owner.partition(":")
    try:
        found = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(f"cannot profile {owner}: {e} "
                                  f"(update WRAPPED at the top of scripts/bench/profile_minigpt.py)") from e
    for part in filter(None, class_name.split(".")):
        if isinstance(found, dict) and part in found:
            found = found[part]
            continue
        if not hasattr(found, part):
            raise AttributeError(f"cannot profile {owner}: {qualified_name(found)} has no attribute {part!r} "
                                 f"(update WRAPPED at the top of scripts/bench/profile_minigpt.py)")
        found = getattr(found, part)
    return found


def matmul_label(config):
    """The label of a linear(x, weight, bias) call: which of a block's four matrices, by the weight's shape."""
    C, M_ = config.n_embd, getattr(config, "d_mlp", 4 * config.n_embd)
    names = {(C, 3 * C): "matmul qkv (c_attn)", (C, C): "matmul attn out (c_proj)", (C, M_): "matmul mlp up (c_fc)",
             (M_, C): "matmul mlp down (c_proj)"}

    def label(x, weight=None, bias=None):
        return names.get(tuple(weight.shape), f"matmul {tuple(weight.shape)}")

    return label


def instrument(profiler: Profiler, config):
    """Wrap minigpt's functions, as WRAPPED lists them: each label names what the time is spent on."""
    for owner, name, label in WRAPPED:
        entry = f"{owner}.{name}"
        if label == FORWARD:
            profiler.wrap_forward(resolve(owner), name, entry)
        else:
            profiler.wrap(resolve(owner), name, matmul_label(config) if label == MATMUL else label, entry)


# ----------------------------------------------------------------------------- the runs


def profile_run(fn, config, repeats: int, alongside: dict | None = None) -> dict:
    """Run fn under the profiler `repeats` times; per phase and label, the median seconds per run. alongside:
    {name: function}, each timed once (unprofiled) before every profiled run; their seconds under "alongside"."""
    runs, walls, beside = [], [], {name: [] for name in alongside or {}}
    fn()  # warm-up
    for _ in range(repeats):
        for name, other in (alongside or {}).items():
            gc.collect()
            beside[name].append(timed(other)[0])
        profiler = Profiler()
        instrument(profiler, config)
        try:
            gc.collect()
            wall, _ = timed(fn)
        finally:
            profiler.restore()
        runs.append(profiler)
        walls.append(wall)
    keys = set().union(*(p.totals for p in runs))
    totals = {key: median([p.totals.get(key, 0.0) for p in runs]) for key in keys}
    accounted = sum(totals.values())
    by_label = sorted(totals.items(), key=lambda kv: -kv[1])
    return {"wall_s": median(walls), "unaccounted_s": max(median(walls) - accounted, 0.0),
            "by_label": {f"{phase}|{label}": s for (phase, label), s in by_label},
            "calls": {f"{phase}|{label}": n for (phase, label), n in runs[-1].calls.items()},
            "forwards": dict(runs[-1].forwards), "not_float32": sorted(set().union(*(p.not_float32 for p in runs))),
            "reached": sorted(set().union(*(p.reached for p in runs))), "alongside": beside}


def wrapper_cost() -> float:
    """Seconds the profiler's wrapper adds to one call (subtract calls x this from a label to correct)."""
    class Holder:
        @staticmethod
        def f(x):
            return x
    profiler = Profiler()
    profiler.wrap(Holder, "f", "f")
    n = 20000
    wall, _ = timed(lambda: [Holder.f(i) for i in range(n)])
    bare, _ = timed(lambda: [(lambda x: x)(i) for i in range(n)])
    return max(wall - bare, 0.0) / n


def cprofile_greedy(model, ids, V) -> str:
    """cProfile's view of one greedy run (32 + 64 tokens): the 18 functions with the most own time."""
    import cProfile
    import pstats
    prof = cProfile.Profile()
    prof.runcall(lambda: minigpt.generate(model, ids, max_new_tokens=64, eos_token_id=V))
    stream = io.StringIO()
    pstats.Stats(prof, stream=stream).sort_stats("tottime").print_stats(18)
    return stream.getvalue()


def run_flops(config) -> dict:
    """The FLOPs of each run's forward passes, by run (limits.forward_flops, summed as the benchmark sums them)."""
    greedy, prefill, beam, perplexity, batch = RUNS
    return {greedy: generation_flops(config, PROMPT_TOKENS, GREEDY_NEW),
            prefill: forward_flops(config, PREFILL_TOKENS),
            beam: generation_flops(config, PROMPT_TOKENS, BEAM_NEW, rows=BEAM_BEAMS, prompt_rows=1),
            perplexity: perplexity_flops(config, PAIR_TOKENS, PERPLEXITY_WINDOW, PERPLEXITY_STRIDE),
            batch: generation_flops(config, BATCH_PROMPT_TOKENS, FILE_NEW_TOKENS, rows=FILE_PROMPTS)}


def profile(folder: Path, repeats: int) -> dict:
    """The runs under the profiler (greedy, prefill, beam, a perplexity window pair, a batch of prompts), the
    machine's limits timed in turn with them, the wrapper's cost, and cProfile's view."""
    model = minigpt.load(folder)
    V = model.config.vocab_size
    ids = prompt_ids(V, PROMPT_TOKENS)
    rng = lambda seed: np.random.default_rng(seed)  # noqa: E731
    long_ids = rng(1).integers(0, min(V, 50256), PREFILL_TOKENS)
    text = rng(2).integers(0, min(V, 50256), PAIR_TOKENS)
    batch = rng(3).integers(0, min(V, 50256), (FILE_PROMPTS, BATCH_PROMPT_TOKENS)).tolist()
    greedy, prefill, beam, perplexity, batched = RUNS
    fns = {greedy: lambda: minigpt.generate(model, ids, max_new_tokens=GREEDY_NEW, eos_token_id=V),
           prefill: lambda: model(long_ids),
           beam: lambda: minigpt.generate(model, ids, "beam", num_beams=BEAM_BEAMS, max_new_tokens=BEAM_NEW,
                                          eos_token_id=V),
           perplexity: lambda: score_text(model, text, PERPLEXITY_STRIDE, PERPLEXITY_WINDOW),
           batched: lambda: minigpt.generate(model, batch, max_new_tokens=FILE_NEW_TOKENS, eos_token_id=V)}
    (matvec, matvec_bytes), (sgemm, sgemm_flops) = matvec_functions(), sgemm_functions()
    runs = {name: profile_run(fn, model.config, repeats, matvec | sgemm) for name, fn in fns.items()}
    reached = set().union(*(r.pop("reached") for r in runs.values()))
    alongside = [r.pop("alongside") for r in runs.values()]
    samples = {name: [s for beside in alongside for s in beside[name]] for name in matvec | sgemm}
    return runs | {
        "bandwidth": bandwidth_of(samples, matvec_bytes),
        "sgemm_peak": sgemm_peak_of(samples, sgemm_flops),
        "limit_samples_s": samples,
        "weight_bytes_per_token": weight_bytes_per_token(model),
        "flops": run_flops(model.config),
        "wrapper_cost_s": wrapper_cost(),
        "cprofile_greedy": cprofile_greedy(model, ids, V),
        "not_reached": [f"{owner}.{name}" for owner, name, _ in WRAPPED if f"{owner}.{name}" not in reached],
    }


def shares(prof: dict) -> list[dict]:
    """Each run's wall time against the machine's limits, with its goal (limits.GOALS) and whether it is met: the
    tokens/s of greedy (and beam) over the bandwidth bound, the FLOP/s of every run over the sgemm peak."""
    bound = bandwidth_bound(prof["bandwidth"], prof["weight_bytes_per_token"])
    peak = prof["sgemm_peak"]["flops_per_s"]
    greedy, _, beam, _, _ = RUNS
    found = []
    for run, (what, measure) in RUNS.items():
        wall = prof[run]["wall_s"]
        if run in (greedy, beam):
            new = GREEDY_NEW if run == greedy else BEAM_NEW
            share = share_of_bound(new, wall, bound)
            goal = GOALS[measure] if measure else None
            found.append({"run": run, "what": what, "limit": "bandwidth bound", "share": share, "goal": goal,
                          "verdict": verdict(share, goal), "figure": f"{new / wall:.1f} tok/s of {bound:.1f}"})
        if run != greedy:  # one-token decoding reads weights; its FLOP/s says little
            share = share_of_peak(prof["flops"][run], wall, peak)
            goal = None if run == beam else GOALS[measure]
            found.append({"run": run, "what": what, "limit": "sgemm peak", "share": share, "goal": goal,
                          "verdict": verdict(share, goal),
                          "figure": f"{prof['flops'][run] / wall / 1e9:.0f} GFLOP/s of {peak / 1e9:.0f}"})
    return found


# ----------------------------------------------------------------------------- the report


def print_phase(p: dict, phase: str):
    """One phase of one run: per label, ms per prefill (or per token) and its share of the phase."""
    rows = {k.split("|", 1)[1]: v for k, v in p["by_label"].items() if k.startswith(phase + "|")}
    if not rows:
        return
    f = p["forwards"]
    n = {"prefill": f.get("prefill", 1), "decode": max(f.get("decode", 0), 1), "sampler": f.get("decode", 0) + 1}[phase]
    total = sum(rows.values())
    unit = "per prefill" if phase == "prefill" else "per token" if f else "per run"
    print(f"  {phase} ({unit}: {total / n * 1e3:.2f} ms)")
    for label, s in sorted(rows.items(), key=lambda kv: -kv[1]):
        print(f"    {label:<44} {s / n * 1e3:8.3f} ms  {100 * s / total:5.1f}%")


def print_shares(prof: dict):
    """The shares of the machine's limits, each beside its goal."""
    bw, peak = prof["bandwidth"], prof["sgemm_peak"]
    m, k, n = peak["shape"]
    print(f"\nThe machine's limits, timed in turn with the runs: sgemm peak {peak['flops_per_s'] / 1e9:.0f} GFLOP/s "
          f"([{m}, {k}] x [{k}, {n}] float32), bandwidth {bw['bytes_per_s'] / 1e9:.1f} GB/s (bound "
          f"{bandwidth_bound(bw, prof['weight_bytes_per_token']):.1f} tokens/s at "
          f"{prof['weight_bytes_per_token'] / 1e6:.0f} MB a token)")
    for s in shares(prof):
        goal = f">= {s['goal']:.0%}" if s["goal"] is not None else ""
        print(f"  {s['run']:<22} {s['limit']:<16} {s['share']:6.1%}  {goal:<6} {s['verdict']:<7} ({s['figure']})")


def print_profile(prof: dict):
    cost = prof["wrapper_cost_s"]
    print(f"\nProfile of minigpt (exclusive wall time per function; the wrappers add ~{cost * 1e6:.1f} us per call)")
    greedy, prefill, _, perplexity, _ = RUNS
    for run in RUNS:
        p = prof[run]
        print(f"\n{run}: {p['wall_s'] * 1e3:.1f} ms in all, forwards {p['forwards']}, "
              f"unaccounted {p['unaccounted_s'] * 1e3:.2f} ms")
        phases = {prefill: ("prefill",), perplexity: ("sampler",)}.get(run, ("prefill", "decode", "sampler"))
        for phase in phases:
            print_phase(p, phase)
        if p["not_float32"]:
            print(f"  not float32: {', '.join(p['not_float32'])}")
    if prof["not_reached"]:
        print(f"\nWRAPPED entries no run called (wrapped where nobody looks them up? update WRAPPED): "
              f"{', '.join(prof['not_reached'])}")
    print("\ncProfile, greedy 32+64, by own time:")
    print("\n".join(prof["cprofile_greedy"].splitlines()[:32]))


# ----------------------------------------------------------------------------- main


def parse_args(argv=None) -> Settings:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--repeats", type=int, default=3,
                        help="profiled runs of each of greedy, prefill, beam, the perplexity pair and the batch; the "
                             "median is reported "
                             "(default: %(default)s)")
    return Settings.of(parser.parse_args(argv))


def main(argv: list[str] | None = None):
    """Parse the arguments, then (in this order) make sure the thread counts are in the environment
    (use_threads), rerun for --native-blas, and profile."""
    argv = sys.argv[1:] if argv is None else argv
    settings = parse_args(argv)
    use_threads(settings.threads, MODULE, argv)
    if settings.native_blas and NATIVE_BLAS_MARK not in os.environ:
        sys.exit(rerun_with_native_blas(MODULE, argv))
    start = loadavg()
    limit = limit_numpy_threads(settings.threads)  # threadpoolctl's limit lasts while it is referenced
    can_build = all(importlib.util.find_spec(m) for m in ("torch", "transformers"))  # the random checkpoint
    folder, _ = model_folder(settings, can_build)
    blas = blas_info()
    print(f"checkpoint {folder}; {settings.threads} thread(s); OpenBLAS kernel {blas.get('kernel', '?')}; "
          f"load average {start}", flush=True)
    report = {"meta": {"command": " ".join(["python -m", MODULE, *argv]), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                       "machine": machine_info(), "threads": settings.threads, "repeats": settings.repeats,
                       "blas": blas, "checkpoint": str(folder), "loadavg_start": start,
                       "numpy_threads_set_by": "threadpoolctl" if limit else "openblas_set_num_threads"},
              "profile": profile(folder, settings.repeats)}
    report["meta"]["loadavg_end"] = loadavg()
    print_profile(report["profile"])
    print_shares(report["profile"])
    print(f"\nload average (1, 5, 15 min): start {start}, end {report['meta']['loadavg_end']}")
    if settings.out:
        settings.out.write_text(json.dumps(report, indent=1, default=str))
        print(f"\nwrote {settings.out}")


if __name__ == "__main__":
    main()
