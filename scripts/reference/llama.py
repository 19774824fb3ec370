"""Record what llama.cpp's own samplers do, for tests/links/test_llama_samplers.py.

Runs llama.cpp's low-level sampler API (through llama-cpp-python, which builds llama.cpp from PyPI's
source package) on small random inputs, without a model, and writes inputs and outputs to
tests/fixtures/llama/cases.json, so that the tests need neither llama.cpp nor a compiler:

    python3 -m venv <env>
    CMAKE_ARGS="-DGGML_NATIVE=OFF" <env>/bin/pip install llama-cpp-python numpy
    <env>/bin/python -m scripts.reference.llama

It needs neither torch nor transformers, and so imports nothing of common.py (which needs both).

Recorded (V = vocabulary of the case, logits float32):
- top_n_sigma, xtc, temp_ext: logits [V] in, the candidates' logits out ({id: logit}; missing = dropped).
  XTC runs with probability 1, so that its random draw always fires and the output is deterministic.
- dry: a token history and logits [V] in, the logits out. llama.cpp's DRY turns its sequence-breaker
  texts into tokens through a model's vocabulary; with no model we pass no breakers (NULL vocab), so
  the breakers are tested against the definition only.
- mirostat, mirostat_v2: per step the logits in, the token llama.cpp drew and how many candidates its
  running mu let through. The test forces the same tokens through ours and compares the counts: they
  depend on mu, so equal counts step after step mean the same mu trajectory.
"""

import argparse
import ctypes
import json
from pathlib import Path

import llama_cpp as L
import numpy as np

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "llama" / "cases.json"  # as common.FIXTURES
rng = np.random.default_rng(20240613)


def candidates(logits):
    """A llama_token_data_array over logits [V] (ids 0..V-1), and the buffer that backs it."""
    data = (L.llama_token_data * len(logits))()
    for i, x in enumerate(logits):
        data[i].id, data[i].logit, data[i].p = i, float(x), 0.0
    arr = L.llama_token_data_array(data=data, size=len(logits), selected=-1, sorted=False)
    return arr, data


def kept(arr):
    """{id: logit} of the candidates left in the array, dropping the -inf ones."""
    out = {}
    for i in range(arr.size):
        if np.isfinite(arr.data[i].logit):
            out[str(arr.data[i].id)] = float(np.float32(arr.data[i].logit))
    return out


def apply(sampler, logits, history=()):
    for token in history:
        L.llama_sampler_accept(sampler, int(token))
    arr, data = candidates(logits)
    L.llama_sampler_apply(sampler, ctypes.byref(arr))
    result = kept(arr), arr
    return result


def f32(x):
    """Logits for the JSON file: each was rounded to 3 decimals (rounded3), so this short form reads back
    as the same float32."""
    return [round(float(v), 3) if np.isfinite(v) else float(v) for v in x]


def rounded3(x):
    return np.round(np.asarray(x, dtype=np.float64), 3).astype(np.float32)


def random_logits(v, scale):
    return rounded3(scale * rng.standard_normal(v))


def top_n_sigma_cases():
    cases = []
    for n in (0.5, 1.0, 1.5, 2.0, 3.0):
        for scale in (1.0, 3.0):
            x = random_logits(64, scale)
            if scale == 3.0:
                x[rng.choice(64, 5, replace=False)] = -np.inf
            s = L.llama_sampler_init_top_n_sigma(n)
            out, _ = apply(s, x)
            L.llama_sampler_free(s)
            cases.append({"n": n, "logits": f32(x), "out": out})
    return cases


def xtc_cases():
    cases = []
    for threshold in (0.02, 0.05, 0.1, 0.2, 0.5):
        for min_keep in (1, 3, 40):
            x = random_logits(32, 2.0)
            s = L.llama_sampler_init_xtc(1.0, threshold, min_keep, 1234)
            out, _ = apply(s, x)
            L.llama_sampler_free(s)
            cases.append({"threshold": threshold, "min_keep": min_keep, "logits": f32(x), "out": out})
    return cases


def temp_ext_cases():
    cases = []
    for temp in (0.5, 1.0, 1.5):
        for delta, exponent in ((0.3, 1.0), (1.0, 0.5), (2.0, 2.0)):  # delta 2: T_min = 0
            for scale in (0.5, 4.0):
                x = random_logits(24, scale)
                s = L.llama_sampler_init_temp_ext(temp, delta, exponent)
                out, _ = apply(s, x)
                L.llama_sampler_free(s)
                cases.append({"temp": temp, "delta": delta, "exponent": exponent, "logits": f32(x), "out": out})
    return cases


def dry_cases():
    cases = []
    for last_n in (-1, 6, 15):
        for allowed in (1, 2, 3):
            for alphabet in (3, 5):
                history = [int(t) for t in rng.integers(0, alphabet, 24)]
                history += history[5:12] + history[3:8]  # repeats at the end, of several lengths
                x = random_logits(12, 1.0)
                # llama.cpp's library takes no -1 here (its command line turns -1 into the context size)
                s = L.llama_sampler_init_dry(None, 0.8, 1.75, allowed, 4096 if last_n == -1 else last_n, None, 0)
                out, _ = apply(s, x, history)
                L.llama_sampler_free(s)
                cases.append({"multiplier": 0.8, "base": 1.75, "allowed_length": allowed, "penalty_last_n": last_n,
                              "history": history, "logits": f32(x), "out": out})
    return cases


def mirostat_cases(version):
    cases = []
    for tau, eta in ((3.0, 0.1), (4.0, 0.3)):
        v = 100
        if version == 1:
            s = L.llama_sampler_init_mirostat(v, 42, tau, eta, 100)
        else:
            s = L.llama_sampler_init_mirostat_v2(42, tau, eta)
        steps = []
        for _ in range(12):
            ranks = np.arange(1, v + 1, dtype=np.float32)
            logits = -float(rng.uniform(1.0, 2.0)) * np.log(ranks) + 0.3 * rng.standard_normal(v)  # Zipf-like
            x = rounded3(logits[rng.permutation(v)])
            arr, data = candidates(x)
            L.llama_sampler_apply(s, ctypes.byref(arr))
            token = arr.data[arr.selected].id
            steps.append({"logits": f32(x), "token": int(token), "kept": int(arr.size)})
        L.llama_sampler_free(s)
        cases.append({"tau": tau, "eta": eta, "vocab_size": v, "steps": steps})
    return cases


def main():
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    cases = {
        "llama_cpp_python": L.__version__,
        "top_n_sigma": top_n_sigma_cases(),
        "xtc": xtc_cases(),
        "temp_ext": temp_ext_cases(),
        "dry": dry_cases(),
        "mirostat": mirostat_cases(1),
        "mirostat_v2": mirostat_cases(2),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(cases, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
