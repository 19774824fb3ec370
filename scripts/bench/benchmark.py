"""Benchmark minigpt against transformers' GPT2LMHeadModel on the CPU, side by side in one run.

    python scripts/benchmark.py                          # every figure, threads = the CPUs this process may use
    python scripts/benchmark.py --threads 1 --out bench.json
    python scripts/benchmark.py --native-blas            # the same, in a child without OPENBLAS_CORETYPE/_L2_SIZE
    python scripts/benchmark.py --xl                     # also load and generate with a random gpt2-xl (1.5B)

Where minigpt's time goes, function by function, is measured by scripts/profile_minigpt.py, which imports its
helpers from this file (scripts/benchmark.py). Importing this file has no side effects: main() parses the
arguments, sets the thread counts and only then imports NumPy and minigpt (use_threads()).

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

The weights are the real gpt2 if weights/gpt2/ (or $MINIGPT_WEIGHTS/gpt2/) holds config.json and
model.safetensors; otherwise a random GPT2LMHeadModel(GPT2Config()) (seed 0) that transformers'
save_pretrained writes once into --cache-dir. Without torch and transformers only minigpt's figures
are measured (and the random checkpoint must already be in the cache, or given with --model-dir).

Threads: --threads N sets OPENBLAS_NUM_THREADS, OMP_NUM_THREADS and MKL_NUM_THREADS before NumPy is
imported (and threadpoolctl's limit, when it is installed) and torch.set_num_threads(N).

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
import gc
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NATIVE_BLAS_MARK = "MINIGPT_BENCHMARK_NATIVE_BLAS"  # set in --native-blas's child: what was unset, as JSON
BLAS_TUNING = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
XL_SHAPE = {"n_layer": 48, "n_head": 25, "n_embd": 1600}  # gpt2-xl; vocab and context as gpt2's
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

np = minigpt = None  # imported by use_threads(), once the thread counts are in the environment


def add_common_arguments(parser: argparse.ArgumentParser):
    """The options that this script and scripts/profile_minigpt.py share."""
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="threads for NumPy's BLAS and for torch alike (default: the CPUs this process may use)")
    parser.add_argument("--out", type=Path, help="write every figure (and the raw samples) here as JSON")
    parser.add_argument("--model-dir", type=Path, help="a folder with config.json + model.safetensors to use instead")
    parser.add_argument("--cache-dir", type=Path,
                        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "minigpt-benchmark",
                        help="where the random checkpoints are written once (default: %(default)s)")
    parser.add_argument("--native-blas", action="store_true",
                        help="run in a child process with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
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
    return parser.parse_args(argv)


def use_threads(threads: int):
    """Put the thread counts in the environment, then import NumPy and minigpt (as this module's np and
    minigpt). The thread pools of OpenBLAS, OpenMP and MKL read these variables once, when they start, so
    this must come before NumPy (or torch) is first imported in this process: hence the imports here and
    not at the top of the file."""
    global np, minigpt
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import numpy as np
    sys.path.insert(0, str(ROOT))  # the checkout this script belongs to, installed or not
    import minigpt
    import minigpt.call.batch
    import minigpt.inspection.perplexity
    import minigpt.weights.places


def rerun_with_native_blas(script: str, argv: list[str]) -> int:
    """--native-blas: `script` again, in a child whose environment lacks OPENBLAS_CORETYPE/_L2_SIZE."""
    unset = {name: os.environ[name] for name in BLAS_TUNING if name in os.environ}
    env = {k: v for k, v in os.environ.items() if k not in BLAS_TUNING}
    env[NATIVE_BLAS_MARK] = json.dumps(unset)
    what = ", ".join(f"{k}={v}" for k, v in unset.items()) or "them (neither is set here)"
    print(f"--native-blas: running again without {what}", flush=True)
    return subprocess.run([sys.executable, script, *argv], env=env).returncode


# ----------------------------------------------------------------------------- the machine


def openblas_library():
    """NumPy's OpenBLAS as a ctypes library and its symbol prefix, or (None, None)."""
    import ctypes
    import glob
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
        from threadpoolctl import threadpool_limits
        return threadpool_limits(limits=n, user_api="blas")
    except ImportError:
        lib, (prefix, suffix) = openblas_library()
        if lib is not None:
            getattr(lib, f"{prefix}set_num_threads{suffix}")(n)
        return None


def blas_info() -> dict:
    """Which BLAS NumPy runs, which kernel (core type) it picked and with how many threads."""
    info = {"env": {name: os.environ.get(name) for name in (*BLAS_TUNING, "OPENBLAS_NUM_THREADS")}}
    if NATIVE_BLAS_MARK in os.environ:
        info["native_blas_run"] = True
        info["unset"] = json.loads(os.environ[NATIVE_BLAS_MARK])
    try:
        from threadpoolctl import threadpool_info
        info["threadpoolctl"] = [{k: p.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
                                 for p in threadpool_info()]
    except ImportError:
        pass
    import ctypes
    lib, names = openblas_library()
    if lib is not None:
        prefix, suffix = names
        for what in ("corename", "config"):
            fn = getattr(lib, f"{prefix}get_{what}{suffix}")
            fn.restype = ctypes.c_char_p
            info[what] = fn().decode()
        info["num_threads"] = getattr(lib, f"{prefix}get_num_threads{suffix}")()
    else:
        config = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["config"] = f"{config.get('name')} {config.get('version')}"
    return info


def machine_info() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    mem = next(int(line.split()[1]) * 1024 for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    return {"cpu": cpu, "cpus": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)), "memory_bytes": mem,
            "python": platform.python_version(), "numpy": np.__version__}


def status_kb(field: str) -> int:
    """A field of /proc/self/status in kB (VmRSS: resident now, VmHWM: peak resident so far)."""
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(field + ":"))


# ----------------------------------------------------------------------------- checkpoints


def real_gpt2_folder():
    """The real gpt2 where minigpt.load("gpt2") would find it ($MINIGPT_WEIGHTS, weights/, the Hugging Face
    cache), without the network; None if it is in none of them."""
    return minigpt.folders.find("gpt2")


def build_random_checkpoint(folder: Path, shape: dict):
    """A random GPT2LMHeadModel(GPT2Config(**shape)), seed 0, written once by save_pretrained (one file)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(**shape))
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:  # never leave half a checkpoint behind
        model.save_pretrained(tmp, max_shard_size="1000GB")
        os.replace(tmp, folder)
        os.mkdir(tmp)  # for TemporaryDirectory's cleanup


def checkpoint(name: str, can_build: bool, cache_dir: Path, threads: int) -> Path:
    """The cached random checkpoint `name` (gpt2 or gpt2-xl), built first if it is not there yet."""
    folder = cache_dir / f"{name}-random-seed0"
    if (folder / "model.safetensors").is_file():
        return folder
    if not can_build:
        sys.exit(f"no checkpoint at {folder}: building a random one needs torch and transformers "
                 f"(pip install -e '.[reference]'), or give a folder with --model-dir.")
    print(f"building a random {name} checkpoint in {folder} ...", flush=True)
    # In a child process, so that this one stays small (its size at a child's start counts in that
    # child's ru_maxrss: see child()) and torch's memory is given back.
    result = child(["--child", f"build-{name}", "--child-dir", str(folder)], threads, cache_dir)
    if "error" in result:
        sys.exit(f"building {folder} failed: {result['error']}")
    return folder


# ----------------------------------------------------------------------------- timing


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


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


def weight_bytes_per_token(model) -> int:
    """The bytes of weights one decoded token reads: every block, ln_f and the tied LM head [V, C]
    (the token and position embeddings give one row each, which is left out)."""
    p = model.params
    leaves = lambda tree: [x for v in tree.values() for x in (leaves(v) if isinstance(v, dict) else [v])]
    blocks = sum(a.nbytes for layer in p["h"] for a in leaves(layer))
    return blocks + sum(a.nbytes for a in leaves(p["ln_f"])) + p["lm_head"]["weight"].nbytes


MATVEC_CALLS = 4  # products per timed sample of the bandwidth measurement


def matvec_functions(torch=None) -> tuple[dict, int]:
    """Float32 matrix-vector products over a 256 MB matrix (no cache holds it), MATVEC_CALLS per call:
    x [1, n] @ W [n, m] as minigpt's layers compute it, W [m, n] @ x [n], and torch's x @ W for comparison.
    -> ({name: function}, bytes each call reads). They are timed in turn with the greedy runs, so that
    the bound comes from the same minutes of a shared machine as the speed it is compared with."""
    rng = np.random.default_rng(0)
    W = rng.standard_normal((8192, 8192), dtype=np.float32)
    x = rng.standard_normal((1, 8192), dtype=np.float32)
    repeat = lambda fn: lambda: [fn() for _ in range(MATVEC_CALLS)]
    fns = {"matvec x @ W": repeat(lambda: x @ W), "matvec W @ x": repeat(lambda: W @ x[0])}
    if torch is not None:
        Wt, xt = torch.from_numpy(W), torch.from_numpy(x)
        fns["matvec torch x @ W"] = repeat(lambda: xt @ Wt)
    return fns, MATVEC_CALLS * W.nbytes


def bandwidth_of(samples: dict, nbytes: int) -> dict:
    """The bandwidth bound: the faster of NumPy's two matvec forms, by its median time."""
    forms = {name.removeprefix("matvec "): s for name, s in samples.items() if name.startswith("matvec")}
    by_form = {form: nbytes / median(s) for form, s in forms.items()}
    best = {form: nbytes / min(s) for form, s in forms.items()}
    return {"bytes_per_s": max(by_form["x @ W"], by_form["W @ x"]), "by_form": by_form, "best_by_form": best,
            "matrix_bytes": nbytes // MATVEC_CALLS}


# ----------------------------------------------------------------------------- child processes


def child(extra: list[str], threads: int, cache_dir: Path) -> dict:
    """Run this script with --child ...; its last stdout line is JSON. Adds the child's ru_maxrss
    (its peak resident memory, from os.wait4) and this process's resident memory when it started.

    Linux carries the resident size of the process image that exec replaces into the child's maxrss,
    so a child started by a big process inherits that size as a floor: the children are started while
    this process holds only NumPy and minigpt (about 40 MB). The child's own VmHWM, which counts its
    new image only, is recorded beside it as a check."""
    cmd = [sys.executable, __file__, "--threads", str(threads), "--cache-dir", str(cache_dir), *extra]
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


def prompt_ids(vocab_size: int, n: int = 32) -> list[int]:
    return np.random.default_rng(0).integers(0, min(vocab_size, 50256), n).tolist()


def child_minigpt(folder: Path, new_tokens: int, beam: bool) -> dict:
    """Only minigpt: load, generate greedily (and with 4 beams); resident memory after each stage."""
    rss = {"after_import": status_kb("VmRSS") * 1024}
    load_s, model = timed(lambda: minigpt.load(folder))
    rss["after_load"], rss["peak_after_load"] = status_kb("VmRSS") * 1024, status_kb("VmHWM") * 1024
    V = model.config.vocab_size
    ids = prompt_ids(V)
    greedy_s, out = timed(lambda: minigpt.generate(model, ids, max_new_tokens=new_tokens, eos_token_id=V))
    rss["peak_after_greedy"] = status_kb("VmHWM") * 1024
    result = {"load_s": load_s, "greedy_s": greedy_s, "new_tokens": len(out.sequences[0]), "rss": rss,
              "checkpoint_bytes": (folder / "model.safetensors").stat().st_size}
    if beam:
        result["beam_s"] = timed(lambda: minigpt.generate(model, ids, "beam", num_beams=4, max_new_tokens=32,
                                                          eos_token_id=V))[0]
        rss["peak_after_beam"] = status_kb("VmHWM") * 1024
    return result


def child_transformers(folder: Path, threads: int) -> dict:
    """Only transformers: load, generate greedily, 64 tokens (its peak RSS, for comparison)."""
    torch, transformers = import_transformers(threads)
    rss = {"after_import": status_kb("VmRSS") * 1024}
    load_s, model = timed(lambda: transformers.GPT2LMHeadModel.from_pretrained(folder, dtype=torch.float32).eval())
    rss["peak_after_load"] = status_kb("VmHWM") * 1024
    ids = torch.tensor([prompt_ids(model.config.vocab_size)])
    with torch.inference_mode():
        model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=64, min_new_tokens=64,
                       pad_token_id=model.config.eos_token_id)
    rss["peak_after_greedy"] = status_kb("VmHWM") * 1024
    return {"load_s": load_s, "rss": rss}


def run_child(kind: str, folder: Path, threads: int, xl_new_tokens: int):
    """What a child process started by child() does (--child kind); prints its result as JSON."""
    if kind == "rss-minigpt":
        limit_numpy_threads(threads)
        result = child_minigpt(folder, 64, beam=True)
    elif kind == "hold-minigpt":  # load, read every weight once, say so, then hold the model until stdin closes
        limit_numpy_threads(threads)
        model = minigpt.load(folder)
        minigpt.generate(model, prompt_ids(model.config.vocab_size), max_new_tokens=2)
        print(json.dumps({"ready": True}), flush=True)
        sys.stdin.read()
        return
    elif kind == "rss-transformers":
        result = child_transformers(folder, threads)
    elif kind in ("xl-minigpt", "xl-minigpt-copied"):
        limit_numpy_threads(threads)
        if kind == "xl-minigpt-copied":  # as before the memory map: every float32 tensor read into its own array
            minigpt.checkpoint.NATIVE_F32 = False
        result = child_minigpt(folder, xl_new_tokens, beam=False)
    elif kind in ("build-gpt2", "build-gpt2-xl"):
        build_random_checkpoint(folder, XL_SHAPE if kind == "build-gpt2-xl" else {})
        result = {}
    else:
        sys.exit(f"unknown --child {kind}")
    print(json.dumps(result))


# ----------------------------------------------------------------------------- the comparisons


def import_transformers(threads: int):
    import torch
    import transformers
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(threads)
    return torch, transformers


def compare(folder: Path, hf, repeats: int) -> dict:
    """Every side-by-side figure. hf: (torch, transformers) or None."""
    results = {}
    fns = {"minigpt": lambda: minigpt.load(folder)}
    if hf:
        torch, transformers = hf
        fns["transformers"] = lambda: transformers.GPT2LMHeadModel.from_pretrained(folder, dtype=torch.float32).eval()
    results["loadavg_load"] = loadavg()
    results["load_s"] = take_turns(fns, repeats)

    model = minigpt.load(folder)
    V = model.config.vocab_size
    ids = prompt_ids(V)
    counts = {}

    def mg_greedy(trace_top=10):
        out = minigpt.generate(model, ids, max_new_tokens=64, eos_token_id=V, trace_top=trace_top)
        counts["minigpt greedy"] = len(out.sequences[0])

    def mg_beam():
        out = minigpt.generate(model, ids, "beam", num_beams=4, max_new_tokens=32, eos_token_id=V)
        counts["minigpt beam"] = len(out.sequences[0])

    long_ids = np.random.default_rng(1).integers(0, min(V, 50256), 512)
    matvec, matvec_bytes = matvec_functions(hf[0] if hf else None)
    greedy = {"minigpt": mg_greedy, "minigpt trace_top=0": lambda: mg_greedy(0), **matvec}
    prefill, beam = {"minigpt": lambda: model(long_ids)}, {"minigpt": mg_beam}
    if hf:
        ref = transformers.GPT2LMHeadModel.from_pretrained(folder, dtype=torch.float32).eval()
        x, x_long = torch.tensor([ids]), torch.from_numpy(long_ids)[None]
        pad = ref.config.eos_token_id

        def hf_generate(new, beams=1):
            with torch.inference_mode():
                out = ref.generate(x, attention_mask=torch.ones_like(x), do_sample=False, num_beams=beams,
                                   max_new_tokens=new, min_new_tokens=new, pad_token_id=pad)
            counts[f"transformers {'beam' if beams > 1 else 'greedy'}"] = out.shape[1] - x.shape[1]

        def hf_prefill():
            with torch.inference_mode():
                return ref(x_long).logits

        greedy["transformers"] = lambda: hf_generate(64)
        prefill["transformers"] = hf_prefill
        beam["transformers"] = lambda: hf_generate(32, beams=4)
        results["attn_implementation"] = ref.config._attn_implementation
        logits = hf_prefill()[0].numpy()
        results["prefill_max_abs_diff"] = float(np.abs(model(long_ids) - logits).max())
    results["loadavg"] = {"load_s": results.pop("loadavg_load", None)}
    for key, fns in (("greedy_s", greedy), ("prefill_s", prefill), ("beam_s", beam)):
        results["loadavg"][key] = loadavg()  # the machine is shared: how busy it was as each one started
        results[key] = take_turns(fns, repeats)
    results.update(compare_whole_texts(folder, model, hf and ref, hf))
    results["bandwidth"] = bandwidth_of(results["greedy_s"], matvec_bytes)
    results["bandwidth_samples_s"] = {k: results["greedy_s"].pop(k) for k in matvec}
    results["new_token_counts"] = counts
    results["weight_bytes_per_token"] = weight_bytes_per_token(model)
    return results


PERPLEXITY_TOKENS, PERPLEXITY_WINDOW, PERPLEXITY_STRIDE = 20_000, 1024, 512
FILE_PROMPTS, FILE_NEW_TOKENS = 32, 32


def compare_whole_texts(folder: Path, model, ref, hf) -> dict:
    """The batch work, side by side, each once (they take minutes): the perplexity of a 20,000-token text with
    transformers' guide loop on the same windows, and 32 prompts of 8 to 40 tokens from a file, 32 new tokens
    each, against transformers' generate() on the same left-padded batch and minigpt one prompt at a time."""
    rng, tok = np.random.default_rng(2), minigpt.Tokenizer()
    text = rng.integers(0, 50256, PERPLEXITY_TOKENS).tolist()
    texts = [tok.decode(rng.integers(0, 50256, n).tolist()) for n in rng.integers(8, 41, FILE_PROMPTS)]
    batch_ids = [tok.encode(t) for t in texts]
    work = Path(tempfile.mkdtemp())
    (work / "in.jsonl").write_text("".join(json.dumps({"prompt": t}) + "\n" for t in texts))
    opts = {"max_new_tokens": FILE_NEW_TOKENS, "min_new_tokens": FILE_NEW_TOKENS}

    def from_file():
        (work / "out.jsonl").unlink(missing_ok=True)
        minigpt.batch.run_prompt_file(model, work / "in.jsonl", work / "out.jsonl", options=opts)

    ppl = {"minigpt": lambda: minigpt.inspection.score_text(model, text, PERPLEXITY_STRIDE, PERPLEXITY_WINDOW)}
    batched = {"minigpt": from_file,
               "minigpt one at a time": lambda: [minigpt.generate(model, ids, **opts) for ids in batch_ids]}
    if hf:
        from make_perplexity_reference import window_nlls  # transformers' guide loop; it imports torch, as hf does

        torch = hf[0]
        longest = max(map(len, batch_ids))
        x = torch.tensor([[0] * (longest - len(ids)) + ids for ids in batch_ids])
        mask = torch.tensor([[0] * (longest - len(ids)) + [1] * len(ids) for ids in batch_ids])

        def hf_batch():
            with torch.inference_mode():
                ref.generate(x, attention_mask=mask, do_sample=False, max_new_tokens=FILE_NEW_TOKENS,
                             min_new_tokens=FILE_NEW_TOKENS, pad_token_id=ref.config.eos_token_id)

        ppl["transformers"] = lambda: window_nlls(ref, text, PERPLEXITY_WINDOW, PERPLEXITY_STRIDE)
        batched["transformers"] = hf_batch
    print("whole texts: perplexity and a file of prompts (once each) ...", flush=True)
    return {"perplexity_s": take_turns(ppl, 1, warmup=0), "file_s": take_turns(batched, 1, warmup=0)}


# ----------------------------------------------------------------------------- the report


def row(name, mg, hf, ratio=None, goal="", ok=None, unit="", best=None):
    return {"measure": name, "minigpt": mg, "transformers": hf, "ratio": ratio, "ratio_best": best, "goal": goal,
            "ok": ok, "unit": unit}


def summarize(cmp: dict, bandwidth: dict, rss: dict, rss_hf: dict, xl: dict | None, checkpoint_bytes: int,
              memory: int) -> list:
    """The table's rows. Speeds from the median time; ratio = minigpt's speed / transformers', and
    ratio_best the same from each one's fastest run (what a quiet machine would show)."""
    keys = ("load_s", "greedy_s", "prefill_s", "beam_s", "perplexity_s", "file_s")
    med = {k: {name: median(s) for name, s in cmp[k].items()} for k in keys}
    best = {k: {name: min(s) for name, s in cmp[k].items()} for k in med}

    def speedup(k, name="minigpt", of=med):
        return of[k]["transformers"] / of[k][name] if "transformers" in of[k] else None

    def ok(r, goal):
        return None if r is None else r >= goal

    def compared(label, k, new_tokens=None, goal=None, name="minigpt", goal_text=None):
        speed = (lambda t: new_tokens / t) if new_tokens else (lambda t: t)
        hf = med[k].get("transformers")
        r = speedup(k, name)
        goal_text = goal_text or (f">= {goal:.1f}x" if goal else "report" if name == "minigpt" else "info")
        return row(label, speed(med[k][name]), hf and speed(hf), r, goal_text, ok(r, goal) if goal else None,
                   best=speedup(k, name, best))

    bound = bandwidth["bytes_per_s"] / cmp["weight_bytes_per_token"]
    g = 64 / med["greedy_s"]["minigpt"]
    g_hf = 64 / med["greedy_s"]["transformers"] if "transformers" in med["greedy_s"] else None
    peak = rss.get("peak_rss_bytes")
    rows = [
        compared("load: safetensors -> ready model (s)", "load_s", goal=1 / 1.5, goal_text="<= 1.5x its time"),
        compared("greedy 32+64 (tokens/s)", "greedy_s", 64, 2.0),
        row(f"  share of bandwidth bound ({bound:.1f} tok/s)", g / bound, g_hf and g_hf / bound, None, ">= 75%",
            g / bound >= 0.75, unit="%"),
        compared("greedy 32+64, trace_top=0 (tokens/s)", "greedy_s", 64, name="minigpt trace_top=0"),
        compared("prefill 512, full logits (s)", "prefill_s", goal=1.0),
        compared("beam 4 beams, 32 new (tokens/s)", "beam_s", 32, 2.0),
        row("peak RSS, load+greedy+beam (MB)", peak / 1e6, rss_hf.get("peak_rss_bytes", 0) / 1e6 or None,
            peak / checkpoint_bytes, "<= 1.3x ckpt", peak / checkpoint_bytes <= 1.3, unit="x ckpt"),
    ]
    tokens = PERPLEXITY_TOKENS - 1
    rows.append(compared(f"perplexity {PERPLEXITY_TOKENS:,} tokens, L {PERPLEXITY_WINDOW} S {PERPLEXITY_STRIDE} "
                         "(tokens/s)", "perplexity_s", tokens, 1.0))
    generated = FILE_PROMPTS * FILE_NEW_TOKENS
    rows.append(compared(f"{FILE_PROMPTS} prompts from a file x {FILE_NEW_TOKENS} new (tokens/s)", "file_s",
                         generated, 1.5))
    one = med["file_s"]["minigpt one at a time"] / med["file_s"]["minigpt"]
    rows.append(row("  the same, one prompt at a time (tokens/s)", generated / med["file_s"]["minigpt one at a time"],
                    None, one, ">= 3x batched", one >= 3, unit="x batched"))
    shared = rss.get("shared")
    if shared:
        share = shared["two_bytes"] / (2 * shared["one_bytes"])
        rows.append(row("2 processes holding it: Pss (MB)", shared["two_bytes"] / 1e6, None, share,
                        "< 2x one", share < 1, unit="x 2 one"))
    if xl:
        if "error" in xl:
            rows.append(row("xl: load + generate", xl["error"], None, None, "fits in RAM", False))
        else:
            rows.append(row("xl: load (s)", xl["load_s"], None, None, "report"))
            copied = xl["copied"]
            if "error" not in copied:
                rows.append(row("  before the memory map: load (s)", copied["load_s"], None, None, "report"))
                rows.append(row("  before the memory map: peak RSS (GiB)", copied["peak_rss_bytes"] / 2**30, None,
                                copied["peak_rss_bytes"] / xl["checkpoint_bytes"], "report", unit="x ckpt"))
            speed = xl["new_tokens"] / xl["greedy_s"]
            rows.append(row(f"xl: greedy 32+{xl['new_tokens']} (tokens/s)", speed, None, None, "report"))
            peak = xl["peak_rss_bytes"]
            rows.append(row("xl: peak RSS (GiB)", peak / 2**30, None, peak / xl["checkpoint_bytes"],
                            f"< {memory / 2**30:.1f} GiB RAM", peak < memory, unit="x ckpt"))
    return rows


def fmt(x, unit=""):
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    if unit == "%":
        return f"{100 * x:.0f}%"
    return f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}"


def print_table(rows: list, meta: dict):
    print(f"\nminigpt vs transformers: {meta['checkpoint']} ({meta['checkpoint_bytes'] / 1e6:.0f} MB), "
          f"{meta['threads']} thread(s), median of {meta['repeats']}")
    b = meta["blas"]
    print(f"NumPy BLAS: {b.get('config', '?')} | kernel {b.get('corename', '?')} | "
          f"threads {b.get('num_threads', '?')} | "
          f"OPENBLAS_CORETYPE={b['env'].get('OPENBLAS_CORETYPE')} OPENBLAS_L2_SIZE={b['env'].get('OPENBLAS_L2_SIZE')}"
          + (f" (--native-blas: unset {b['unset'] or 'nothing, neither was set'})" if b.get("native_blas_run") else ""))
    print(f"torch: {meta.get('torch', '-')} threads {meta.get('torch_threads', '-')}, "
          f"transformers {meta.get('transformers', '-')}, "
          f"attention {meta.get('attn_implementation', '-')}")
    bw = meta["bandwidth"]
    print(f"bandwidth: matvec {bw['bytes_per_s'] / 1e9:.1f} GB/s ("
          + ", ".join(f"{k} {v / 1e9:.1f}" for k, v in bw["by_form"].items())
          + f"); weights read per token {meta['weight_bytes_per_token'] / 1e6:.0f} MB -> bound "
          f"{bw['bytes_per_s'] / meta['weight_bytes_per_token']:.1f} tokens/s")
    print(f"load average (1, 5, 15 min): start {meta['loadavg_start']}, end {meta['loadavg_end']}; "
          f"1-min at each measure: {meta['loadavg_per_measure']}\n")
    header = f"{'measure':<42} {'minigpt':>9} {'transformers':>12} {'ratio':>7} {'best':>6}  {'goal':<13} ok"
    print(header)
    print("-" * len(header))
    for r in rows:
        unit = r["unit"] if r["unit"] == "%" else ""
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        ok = {True: "yes", False: "NO", None: ""}[r["ok"]]
        best = "" if r["ratio_best"] is None else f"{r['ratio_best']:.2f}x"
        print(f"{r['measure']:<42} {fmt(r['minigpt'], unit):>9} {fmt(r['transformers'], unit):>12} {ratio:>7} "
              f"{best:>6}  {r['goal']:<13} {ok}")
    print("ratio: minigpt's speed over transformers' from the median runs; best: from each one's fastest run.\n"
          "For peak RSS the ratio is minigpt's peak over the checkpoint's bytes.")


def has_transformers(wanted: bool) -> bool:
    """Whether torch and transformers take part: wanted, and both installed."""
    has = wanted and all(importlib.util.find_spec(m) for m in ("torch", "transformers"))
    if wanted and not has:
        print("torch/transformers not installed: minigpt's figures only", flush=True)
    return has


def model_folder(model_dir: Path | None, can_build: bool, cache_dir: Path, threads: int) -> tuple[Path, bool]:
    """The checkpoint measured: --model-dir, else the real gpt2, else the cached random one. -> (folder, real)"""
    real = model_dir or real_gpt2_folder()
    return real or checkpoint("gpt2", can_build, cache_dir, threads), real is not None


def children(folder: Path, has_hf: bool, threads: int, cache_dir: Path, xl_new_tokens: int | None) -> tuple:
    """The peak-RSS children, and --xl's (xl_new_tokens not None), started while this process is still
    small (see child()). -> (minigpt's, transformers' or {}, xl's or None)"""
    print("peak RSS in child processes ...", flush=True)
    run = lambda *extra: child(["--child", *extra], threads, cache_dir)  # noqa: E731
    rss = run("rss-minigpt", "--child-dir", str(folder))
    rss_hf = run("rss-transformers", "--child-dir", str(folder)) if has_hf else {}
    if os.path.exists("/proc/self/smaps_rollup"):
        rss["shared"] = shared_pss(folder, threads, cache_dir)
    if xl_new_tokens is None:
        return rss, rss_hf, None
    xl_folder = checkpoint("gpt2-xl", has_hf, cache_dir, threads)
    print(f"xl: load + generate {xl_new_tokens} tokens in a child ...", flush=True)
    xl = run("xl-minigpt", "--child-dir", str(xl_folder), "--xl-new-tokens", str(xl_new_tokens))
    xl["copied"] = run("xl-minigpt-copied", "--child-dir", str(xl_folder), "--xl-new-tokens", str(xl_new_tokens))
    xl["checkpoint_bytes"] = (xl_folder / "model.safetensors").stat().st_size
    return rss, rss_hf, xl


def pss_bytes(pid: int) -> int:
    """The proportional set size of a process (Linux): each page shared with n processes counts 1/n."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("Pss:"))


def shared_pss(folder: Path, threads: int, cache_dir: Path) -> dict:
    """Two processes that hold the same model loaded: their Pss together, against one process alone. A mapped
    float32 file is shared through the page cache, so the two together should cost less than twice one."""
    cmd = [sys.executable, __file__, "--threads", str(threads), "--cache-dir", str(cache_dir),
           "--child", "hold-minigpt", "--child-dir", str(folder)]
    holders = []
    try:
        for _ in range(2):
            holders.append(subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
            holders[-1].stdout.readline()  # {"ready": true}: loaded, every page read
            if len(holders) == 1:
                one = pss_bytes(holders[0].pid)
        return {"one_bytes": one, "two_bytes": sum(pss_bytes(p.pid) for p in holders)}
    finally:
        for p in holders:
            p.stdin.close()
            p.wait()


def print_children(rss: dict, rss_hf: dict, xl: dict | None):
    """Each child's own figures, bytes in MB."""
    def mb(key, value):
        if key.endswith("bytes"):
            return round(value / 1e6)
        return {stage: round(b / 1e6) for stage, b in value.items()} if key == "rss" else value

    for name, r in (("minigpt", rss), ("transformers", rss_hf), ("xl", xl)):
        if r:
            print(f"{name} child: " + json.dumps({k: mb(k, v) for k, v in r.items()}) + "  (bytes in MB)")


def run(args) -> dict:
    """Every figure: the child processes first, then the comparisons; prints the table. -> the report"""
    start = loadavg()
    limit = limit_numpy_threads(args.threads)  # threadpoolctl's limit lasts while it is referenced
    has_hf = has_transformers(not args.no_transformers)
    folder, real = model_folder(args.model_dir, has_hf, args.cache_dir, args.threads)
    checkpoint_bytes = (folder / "model.safetensors").stat().st_size
    meta = {"command": " ".join(["python", *sys.argv]), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "machine": machine_info(), "threads": args.threads, "repeats": args.repeats, "blas": blas_info(),
            "checkpoint": str(folder) if real else f"random gpt2 124M ({folder})", "checkpoint_bytes": checkpoint_bytes,
            "loadavg_start": start,
            "numpy_threads_set_by": "threadpoolctl" if limit else "OPENBLAS_NUM_THREADS, openblas_set_num_threads"}
    print(f"checkpoint {folder}; {args.threads} thread(s); load average {start}", flush=True)
    rss, rss_hf, xl = children(folder, has_hf, args.threads, args.cache_dir, args.xl_new_tokens if args.xl else None)

    hf = import_transformers(args.threads) if has_hf else None
    if hf:
        torch, transformers = hf
        meta |= {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                 "transformers": transformers.__version__}
    print("comparing ...", flush=True)
    cmp = compare(folder, hf, args.repeats)
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
    return {"meta": meta, "rows": rows, "samples": {k: cmp[k] for k in ("load_s", "greedy_s", "prefill_s", "beam_s",
                                                                         "perplexity_s", "file_s")},
            "loadavg_per_measure": cmp["loadavg"],
            "bandwidth_samples_s": cmp["bandwidth_samples_s"], "rss_minigpt": rss, "rss_transformers": rss_hf, "xl": xl,
            "new_token_counts": counts, "prefill_max_abs_diff": cmp.get("prefill_max_abs_diff")}


def main(argv: list[str] | None = None):
    """Parse the arguments, then (in this order) rerun for --native-blas, set the threads and import NumPy
    (use_threads), and run: the comparison, or what a --child process does."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.native_blas and NATIVE_BLAS_MARK not in os.environ:
        sys.exit(rerun_with_native_blas(__file__, argv))
    use_threads(args.threads)
    if args.child:
        return run_child(args.child, args.child_dir, args.threads, args.xl_new_tokens)
    report = run(args)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1, default=str))
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
