"""What the benchmark and the profiler share: their settings and the options that set them, the environment a
run needs (thread counts, --native-blas), what the machine and its BLAS are, the checkpoint measured, child
processes and the timing helpers. It measures nothing itself.

The thread pools of OpenBLAS, OpenMP and MKL read OPENBLAS_NUM_THREADS, OMP_NUM_THREADS and MKL_NUM_THREADS
once, when NumPy (or torch) first starts them, and this module imports NumPy at its top. So a run goes on only in
a process that started with those variables set: `use_threads` starts the same command again in place of one
that did not (os.execve), before anything is measured.
"""

import argparse
import ctypes
import gc
import glob
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from minigpt.weights import places

BENCHMARK = "scripts.bench.benchmark"  # the module that child processes run (with --child)
NATIVE_BLAS_MARK = "MINIGPT_BENCHMARK_NATIVE_BLAS"  # set in --native-blas's child: what was unset, as JSON
BLAS_TUNING = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
QUIET = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "TOKENIZERS_PARALLELISM": "false"}  # unless the caller set them


@dataclass(frozen=True)
class Settings:
    """A run's settings, as the command line gives them."""

    threads: int  # for NumPy's BLAS and for torch alike
    cache_dir: Path  # where the random checkpoints are written once
    model_dir: Path | None = None  # the checkpoint measured, instead of gpt2
    out: Path | None = None  # where the report goes, as JSON
    native_blas: bool = False  # run in a child without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE
    repeats: int = 1  # runs of each measurement; the median is reported

    @classmethod
    def of(cls, args: argparse.Namespace):
        """The settings that parsed arguments give (this class's fields, by name)."""
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})


def add_common_arguments(parser: argparse.ArgumentParser):
    """The options that the benchmark and the profiler share."""
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="threads for NumPy's BLAS and for torch alike (default: the CPUs this process may use)")
    parser.add_argument("--out", type=Path, help="write every figure (and the raw samples) here as JSON")
    parser.add_argument("--model-dir", type=Path, help="a folder with config.json + model.safetensors to use instead")
    parser.add_argument("--cache-dir", type=Path,
                        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "minigpt-benchmark",
                        help="where the random checkpoints are written once (default: %(default)s)")
    parser.add_argument("--native-blas", action="store_true",
                        help="run in a child process with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset")


# ----------------------------------------------------------------------------- the environment of a run


def use_threads(threads: int, module: str, argv: list[str]):
    """Return in a process whose environment has the thread counts (and QUIET's settings, unless the caller's
    differ); in any other, start `python -m module argv` again in its place, with them set."""
    env = dict(os.environ) | {name: str(threads) for name in THREAD_VARIABLES}
    for name, value in QUIET.items():
        env.setdefault(name, value)
    if env != dict(os.environ):
        os.execve(sys.executable, [sys.executable, "-m", module, *argv], env)


def rerun_with_native_blas(module: str, argv: list[str]) -> int:
    """--native-blas: `python -m module argv` again, in a child whose environment lacks OPENBLAS_CORETYPE/_L2_SIZE."""
    unset = {name: os.environ[name] for name in BLAS_TUNING if name in os.environ}
    env = {k: v for k, v in os.environ.items() if k not in BLAS_TUNING}
    env[NATIVE_BLAS_MARK] = json.dumps(unset)
    what = ", ".join(f"{k}={v}" for k, v in unset.items()) or "them (neither is set here)"
    print(f"--native-blas: running again without {what}", flush=True)
    return subprocess.run([sys.executable, "-m", module, *argv], env=env).returncode


def import_transformers(threads: int):
    """torch and transformers, quiet and on `threads` threads. -> (torch, transformers)"""
    import torch  # optional: only here, where a run has chosen to measure transformers
    import transformers
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(threads)
    return torch, transformers


# ----------------------------------------------------------------------------- the machine


def openblas_library():
    """NumPy's OpenBLAS as a ctypes library and its symbol prefix, or (None, None)."""
    for folder in (Path(np.__file__).parent.parent / "numpy.libs", Path(np.__file__).parent / ".libs"):
        for path in glob.glob(str(folder / "lib*openblas*.so*")):
            lib = ctypes.CDLL(path)
            for prefix, suffix in (("scipy_openblas_", "64_"), ("openblas_", "64_"), ("openblas_", "")):
                if hasattr(lib, f"{prefix}get_corename{suffix}"):
                    return lib, (prefix, suffix)
    return None, None


def limit_numpy_threads(n: int):
    """Keep NumPy's BLAS at n threads (threadpoolctl if installed, else OpenBLAS's own call)."""
    try:
        from threadpoolctl import threadpool_limits  # optional
        return threadpool_limits(limits=n, user_api="blas")
    except ImportError:
        lib, (prefix, suffix) = openblas_library()
        if lib is not None:
            getattr(lib, f"{prefix}set_num_threads{suffix}")(n)
        return None


def blas_info() -> dict:
    """Which BLAS NumPy runs, which kernel (core type) it picked and with how many threads: from threadpoolctl
    (the `bench` extra) when it is installed, else from OpenBLAS's own calls (openblas_get_corename, _get_config,
    _get_num_threads) through ctypes. numpy.show_runtime() names the BLAS only through threadpoolctl, so
    without it the library comes from numpy.show_config(). -> {"library", "kernel", "threads", "source", ...}"""
    info = {"env": {name: os.environ.get(name) for name in (*BLAS_TUNING, "OPENBLAS_NUM_THREADS")}}
    if NATIVE_BLAS_MARK in os.environ:
        info["native_blas_run"] = True
        info["unset"] = json.loads(os.environ[NATIVE_BLAS_MARK])
    try:
        from threadpoolctl import threadpool_info  # optional: the bench extra
        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if pools:
            pool = pools[0]
            return info | {"source": "threadpoolctl", "library": f"{pool['internal_api']} {pool.get('version')}",
                           "kernel": pool.get("architecture"), "threads": pool.get("num_threads"),
                           "pools": [{k: p.get(k) for k in ("internal_api", "version", "architecture", "num_threads",
                                                             "filepath")} for p in pools]}
    except ImportError:
        pass
    lib, names = openblas_library()
    if lib is None:
        config = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return info | {"source": "numpy.show_config", "library": f"{config.get('name')} {config.get('version')}"}
    prefix, suffix = names
    found = {}
    for what in ("corename", "config"):
        fn = getattr(lib, f"{prefix}get_{what}{suffix}")
        fn.restype = ctypes.c_char_p
        found[what] = fn().decode()
    return info | {"source": "OpenBLAS's own calls", "library": " ".join(found["config"].split()[:2]),
                   "config": found["config"], "kernel": found["corename"],
                   "threads": getattr(lib, f"{prefix}get_num_threads{suffix}")()}


def blas_warning(info: dict) -> str | None:
    """A sentence when OPENBLAS_CORETYPE forces OpenBLAS's kernel (or OPENBLAS_L2_SIZE its cache size), else None."""
    forced = {name: value for name, value in info["env"].items() if name in BLAS_TUNING and value}
    if not forced:
        return None
    said = " and ".join(f"{name}={value}" for name, value in forced.items())
    return (f"warning: {said} in the environment forces OpenBLAS's choice (kernel {info.get('kernel', '?')}) over "
            f"the one it makes for this CPU, which can be much slower: add --native-blas to measure without it.")


def machine_info() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    mem = next(int(line.split()[1]) * 1024 for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    return {"cpu": cpu, "cpus": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)), "memory_bytes": mem,
            "python": platform.python_version(), "numpy": np.__version__}


def status_kb(field: str) -> int:
    """A field of /proc/self/status in kB (VmRSS: resident now, VmHWM: peak resident so far)."""
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(field + ":"))


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ----------------------------------------------------------------------------- the checkpoint, child processes


def child(settings: Settings, extra: list[str]) -> dict:
    """Run the benchmark with --child ...; its last stdout line is JSON. Adds the child's ru_maxrss
    (its peak resident memory, from os.wait4) and this process's resident memory when it started.

    Linux carries the resident size of the process image that exec replaces into the child's maxrss,
    so a child started by a big process inherits that size as a floor: the children are started while
    this process holds only NumPy and minigpt (about 40 MB). The child's own VmHWM, which counts its
    new image only, is recorded beside it as a check."""
    cmd = [sys.executable, "-m", BENCHMARK, "--threads", str(settings.threads), "--cache-dir",
           str(settings.cache_dir), *extra]
    parent_rss = status_kb("VmRSS") * 1024
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        return {"error": f"{' '.join(extra[:2])} exited with {proc.returncode}",
                "peak_rss_bytes": usage.ru_maxrss * 1024}
    result = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    result["peak_rss_bytes"] = usage.ru_maxrss * 1024  # Linux: kilobytes
    result["parent_rss_bytes"] = parent_rss
    return result


def checkpoint(name: str, can_build: bool, settings: Settings) -> Path:
    """The cached random checkpoint `name` (gpt2 or gpt2-xl), built first if it is not there yet."""
    folder = settings.cache_dir / f"{name}-random-seed0"
    if (folder / "model.safetensors").is_file():
        return folder
    if not can_build:
        sys.exit(f"no checkpoint at {folder}: building a random {name} there needs torch and transformers (pip "
                 f"install -e '.[reference]', without --no-transformers), or give a folder of {name}'s shape with "
                 f"--model-dir.")
    print(f"building a random {name} checkpoint in {folder} ...", flush=True)
    # In a child process, so that this one stays small (its size at a child's start counts in that
    # child's ru_maxrss: see child()) and torch's memory is given back.
    result = child(settings, ["--child", f"build-{name}", "--child-dir", str(folder)])
    if "error" in result:
        sys.exit(f"building {folder} failed: {result['error']}")
    return folder


def model_folder(settings: Settings, can_build: bool) -> tuple[Path, bool]:
    """The checkpoint measured: --model-dir, else the real gpt2 where minigpt.load("gpt2") would find it
    ($MINIGPT_WEIGHTS, weights/, the Hugging Face cache; without the network), else the cached random one.
    -> (folder, whether it is the real gpt2 or the given one)"""
    real = settings.model_dir or places.find("gpt2")
    return real or checkpoint("gpt2", can_build, settings), real is not None


# ----------------------------------------------------------------------------- timing


def timed(fn):
    t = time.perf_counter()
    result = fn()
    return time.perf_counter() - t, result


def take_turns(fns: dict, repeats: int, warmup: int = 1) -> dict:
    """Time each function `repeats` times, the functions taking turns (the order alternating), after
    `warmup` untimed calls each. -> {name: [seconds, ...]}"""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            gc.collect()
            time.sleep(0.05)  # let the other library's spinning threads go to sleep
            samples[name].append(timed(fns[name])[0])
    return samples


def median(xs):
    return statistics.median(xs) if xs else None


def prompt_ids(vocab_size: int, n: int = 32) -> list[int]:
    """The prompt of every measurement: n random tokens, seeded."""
    return np.random.default_rng(0).integers(0, min(vocab_size, 50256), n).tolist()
