"""Where minigpt's time goes: its functions wrapped with timers, per decoded token, per prefill and per beam step.

    python -m scripts.bench.profile_minigpt                      # threads = the CPUs this process may use
    python -m scripts.bench.profile_minigpt --threads 1 --repeats 3 --out profile.json
    python -m scripts.bench.profile_minigpt --native-blas        # in a child without OPENBLAS_CORETYPE/_L2_SIZE

The side-by-side comparison with transformers is scripts/bench/benchmark.py; this script shares with it
scripts/bench/common.py: the options, the thread settings, the checkpoint and the timing helpers.

What is measured, on the same checkpoint and prompts as the benchmark (a 32-token prompt; greedy, 64 new
tokens; a 512-token prefill with full logits; 4 beams, 32 new tokens): the exclusive wall time of each
wrapped function (a caller is not charged for the wrapped functions it calls), the median over --repeats
runs, split by phase: "prefill" (a forward of more than one token), "decode" (a forward of one token) and
"sampler" (everything between forwards). Then cProfile's view of one greedy run, by own time. The
profiler also records any wrapped function that returns a floating-point array other than float32.

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

from .common import (NATIVE_BLAS_MARK, Settings, add_common_arguments, blas_info, limit_numpy_threads, loadavg,
                     machine_info, median, model_folder, prompt_ids, rerun_with_native_blas, timed, use_threads)

MODULE = "scripts.bench.profile_minigpt"

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
    ("minigpt.call.generate:LiveRun", "advance", "strategy loop (history, Python)"),  # drives token_by_token, beam_search
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


def profile_run(fn, config, repeats: int) -> dict:
    """Run fn under the profiler `repeats` times; per phase and label, the median seconds per run."""
    runs, walls = [], []
    fn()  # warm-up
    for _ in range(repeats):
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
            "reached": sorted(set().union(*(p.reached for p in runs)))}


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


def profile(folder: Path, repeats: int) -> dict:
    """The three runs under the profiler (greedy, prefill, beam), the wrapper's cost, and cProfile's view."""
    model = minigpt.load(folder)
    V = model.config.vocab_size
    ids = prompt_ids(V)
    long_ids = np.random.default_rng(1).integers(0, min(V, 50256), 512)
    greedy = lambda: minigpt.generate(model, ids, max_new_tokens=64, eos_token_id=V)  # noqa: E731
    beam = lambda: minigpt.generate(model, ids, "beam", num_beams=4, max_new_tokens=32, eos_token_id=V)  # noqa: E731
    runs = {
        "greedy_32+64": profile_run(greedy, model.config, repeats),
        "prefill_512": profile_run(lambda: model(long_ids), model.config, repeats),
        "beam_4x32": profile_run(beam, model.config, repeats),
    }
    reached = set().union(*(r.pop("reached") for r in runs.values()))
    return runs | {
        "wrapper_cost_s": wrapper_cost(),
        "cprofile_greedy": cprofile_greedy(model, ids, V),
        "not_reached": [f"{owner}.{name}" for owner, name, _ in WRAPPED if f"{owner}.{name}" not in reached],
    }


# ----------------------------------------------------------------------------- the report


def print_phase(p: dict, phase: str):
    """One phase of one run: per label, ms per prefill (or per token) and its share of the phase."""
    rows = {k.split("|", 1)[1]: v for k, v in p["by_label"].items() if k.startswith(phase + "|")}
    if not rows:
        return
    f = p["forwards"]
    n = {"prefill": f.get("prefill", 1), "decode": max(f.get("decode", 0), 1), "sampler": f.get("decode", 0) + 1}[phase]
    total = sum(rows.values())
    unit = "per prefill" if phase == "prefill" else "per token"
    print(f"  {phase} ({unit}: {total / n * 1e3:.2f} ms)")
    for label, s in sorted(rows.items(), key=lambda kv: -kv[1]):
        print(f"    {label:<44} {s / n * 1e3:8.3f} ms  {100 * s / total:5.1f}%")


def print_profile(prof: dict):
    cost = prof["wrapper_cost_s"]
    print(f"\nProfile of minigpt (exclusive wall time per function; the wrappers add ~{cost * 1e6:.1f} us per call)")
    for run in ("greedy_32+64", "prefill_512", "beam_4x32"):
        p = prof[run]
        print(f"\n{run}: {p['wall_s'] * 1e3:.1f} ms in all, forwards {p['forwards']}, "
              f"unaccounted {p['unaccounted_s'] * 1e3:.2f} ms")
        for phase in ("prefill",) if run == "prefill_512" else ("prefill", "decode", "sampler"):
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
                        help="profiled runs of each of greedy, prefill and beam; the median is reported "
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
    limit = limit_numpy_threads(settings.threads)  # noqa: F841  (threadpoolctl's limit lasts while it is referenced)
    can_build = all(importlib.util.find_spec(m) for m in ("torch", "transformers"))  # the random checkpoint
    folder, _ = model_folder(settings, can_build)
    blas = blas_info()
    print(f"checkpoint {folder}; {settings.threads} thread(s); OpenBLAS kernel {blas.get('corename', '?')}; "
          f"load average {start}", flush=True)
    report = {"meta": {"command": " ".join(["python -m", MODULE, *argv]), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                       "machine": machine_info(), "threads": settings.threads, "repeats": settings.repeats,
                       "blas": blas, "checkpoint": str(folder), "loadavg_start": start},
              "profile": profile(folder, settings.repeats)}
    report["meta"]["loadavg_end"] = loadavg()
    print_profile(report["profile"])
    print(f"\nload average (1, 5, 15 min): start {start}, end {report['meta']['loadavg_end']}")
    if settings.out:
        settings.out.write_text(json.dumps(report, indent=1, default=str))
        print(f"\nwrote {settings.out}")


if __name__ == "__main__":
    main()
