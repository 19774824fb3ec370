"""The benchmark's side-by-side measurements, minigpt against transformers on the same checkpoint and threads:
load, greedy (with the memory-bandwidth bound timed in turn with it), prefill, beam, and the whole-text work
(the perplexity of a long text, a file of prompts). Each returns raw samples in seconds; report.py makes the table.

Both sides generate exactly the same number of tokens: minigpt is given an end-of-text id it can never pick
(vocab_size), transformers min_new_tokens = max_new_tokens.
"""

import json
import tempfile
from pathlib import Path

import numpy as np

import minigpt
from minigpt.call.batch import run_prompt_file
from minigpt.inspection import score_text

from .common import loadavg, median, prompt_ids, take_turns

MATVEC_CALLS = 4  # products per timed sample of the bandwidth measurement
PERPLEXITY_TOKENS, PERPLEXITY_WINDOW, PERPLEXITY_STRIDE = 20_000, 1024, 512
FILE_PROMPTS, FILE_NEW_TOKENS = 32, 32


# ----------------------------------------------------------------------------- the bandwidth bound


def weight_bytes_per_token(model) -> int:
    """The bytes of weights one decoded token reads: every block, ln_f and the tied LM head [V, C]
    (the token and position embeddings give one row each, which is left out)."""
    p = model.params
    leaves = lambda tree: [x for v in tree.values() for x in (leaves(v) if isinstance(v, dict) else [v])]  # noqa: E731
    blocks = sum(a.nbytes for layer in p["h"] for a in leaves(layer))
    return blocks + sum(a.nbytes for a in leaves(p["ln_f"])) + p["lm_head"]["weight"].nbytes


def matvec_functions(torch=None) -> tuple[dict, int]:
    """Float32 matrix-vector products over a 256 MB matrix (no cache holds it), MATVEC_CALLS per call:
    x [1, n] @ W [n, m] as minigpt's layers compute it, W [m, n] @ x [n], and torch's x @ W for comparison.
    -> ({name: function}, bytes each call reads). They are timed in turn with the greedy runs, so that
    the bound comes from the same minutes of a shared machine as the speed it is compared with."""
    rng = np.random.default_rng(0)
    W = rng.standard_normal((8192, 8192), dtype=np.float32)
    x = rng.standard_normal((1, 8192), dtype=np.float32)
    repeat = lambda fn: lambda: [fn() for _ in range(MATVEC_CALLS)]  # noqa: E731
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


# ----------------------------------------------------------------------------- greedy, prefill, beam


def minigpt_runs(model, ids, long_ids, counts: dict) -> dict:
    """minigpt's greedy (64 new tokens, tracing 10 candidates and none), prefill and beam (4 beams, 32 new
    tokens), by measure; each generation notes how many tokens it made in counts."""
    V = model.config.vocab_size

    def greedy(trace_top=10):
        out = minigpt.generate(model, ids, max_new_tokens=64, eos_token_id=V, trace_top=trace_top)
        counts["minigpt greedy"] = len(out.sequences[0])

    def beam():
        out = minigpt.generate(model, ids, "beam", num_beams=4, max_new_tokens=32, eos_token_id=V)
        counts["minigpt beam"] = len(out.sequences[0])

    return {"greedy_s": {"minigpt": greedy, "minigpt trace_top=0": lambda: greedy(0)},
            "prefill_s": {"minigpt": lambda: model(long_ids)}, "beam_s": {"minigpt": beam}}


def transformers_runs(torch, ref, ids, long_ids, counts: dict) -> dict:
    """transformers' greedy, prefill and beam on the same prompts, by measure."""
    x, x_long = torch.tensor([ids]), torch.from_numpy(long_ids)[None]
    pad = ref.config.eos_token_id

    def generate(new, beams=1):
        with torch.inference_mode():
            out = ref.generate(x, attention_mask=torch.ones_like(x), do_sample=False, num_beams=beams,
                               max_new_tokens=new, min_new_tokens=new, pad_token_id=pad)
        counts[f"transformers {'beam' if beams > 1 else 'greedy'}"] = out.shape[1] - x.shape[1]

    def prefill():
        with torch.inference_mode():
            return ref(x_long).logits

    return {"greedy_s": lambda: generate(64), "prefill_s": prefill, "beam_s": lambda: generate(32, beams=4)}


def compare(folder: Path, hf, repeats: int) -> dict:
    """Every side-by-side figure. hf: (torch, transformers) or None."""
    load = {"minigpt": lambda: minigpt.load(folder)}
    if hf:
        torch, transformers = hf
        load["transformers"] = lambda: transformers.GPT2LMHeadModel.from_pretrained(folder, dtype=torch.float32).eval()
    results = {"loadavg": {"load_s": loadavg()}}
    results["load_s"] = take_turns(load, repeats)

    model = minigpt.load(folder)
    ids, counts = prompt_ids(model.config.vocab_size), {}
    long_ids = np.random.default_rng(1).integers(0, min(model.config.vocab_size, 50256), 512)
    matvec, matvec_bytes = matvec_functions(hf[0] if hf else None)
    runs = minigpt_runs(model, ids, long_ids, counts)
    runs["greedy_s"] |= matvec
    ref = None
    if hf:
        ref = transformers.GPT2LMHeadModel.from_pretrained(folder, dtype=torch.float32).eval()
        for key, fn in transformers_runs(torch, ref, ids, long_ids, counts).items():
            runs[key]["transformers"] = fn
        results["attn_implementation"] = ref.config._attn_implementation
        logits = runs["prefill_s"]["transformers"]()[0].numpy()
        results["prefill_max_abs_diff"] = float(np.abs(model(long_ids) - logits).max())
    for key, fns in runs.items():
        results["loadavg"][key] = loadavg()  # the machine is shared: how busy it was as each one started
        results[key] = take_turns(fns, repeats)
    results.update(compare_whole_texts(model, ref, hf))
    results["bandwidth"] = bandwidth_of(results["greedy_s"], matvec_bytes)
    results["bandwidth_samples_s"] = {k: results["greedy_s"].pop(k) for k in matvec}
    results["new_token_counts"] = counts
    results["weight_bytes_per_token"] = weight_bytes_per_token(model)
    return results


# ----------------------------------------------------------------------------- whole texts


def compare_whole_texts(model, ref, hf) -> dict:
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
        run_prompt_file(model, work / "in.jsonl", work / "out.jsonl", options=opts)

    ppl = {"minigpt": lambda: score_text(model, text, PERPLEXITY_STRIDE, PERPLEXITY_WINDOW)}
    batched = {"minigpt": from_file,
               "minigpt one at a time": lambda: [minigpt.generate(model, ids, **opts) for ids in batch_ids]}
    if hf:
        from ..reference.perplexity import window_nlls  # transformers' guide loop; it imports torch, as hf does

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
