"""The benchmark's side-by-side measurements, minigpt against transformers on the same checkpoint and threads:
greedy (with the memory bandwidth timed in turn with it), prefill (with the sgemm peak timed in turn with it),
beam, the whole-text work (the perplexity of a long text, a file of prompts), and two of minigpt's own: the
default trace's cost per greedy step, and beam sampling against beam search with 100 beams. Each returns raw
samples in seconds; report.py makes the table, limits.py holds the machine's limits they are set against.

Both sides generate exactly the same number of tokens: minigpt is given an end-of-text id it can never pick
(vocab_size), transformers min_new_tokens = max_new_tokens.
"""

import gc
import json
import tempfile
import time
from pathlib import Path

import numpy as np

import minigpt
from minigpt.call.batch import run_prompt_file
from minigpt.core.numerics import log_softmax
from minigpt.core.tokenizer import Tokenizer
from minigpt.inspection import score_text
from minigpt.strategies.run import trace_step

from .common import loadavg, prompt_ids, take_turns, timed
from .limits import (bandwidth_of, forward_flops, generation_flops, matvec_functions, perplexity_flops, sgemm_functions,
                     sgemm_peak_of, weight_bytes_per_token)

PROMPT_TOKENS, GREEDY_NEW, PREFILL_TOKENS, BEAM_BEAMS, BEAM_NEW = 32, 64, 512, 4, 32
PERPLEXITY_TOKENS, PERPLEXITY_WINDOW, PERPLEXITY_STRIDE = 20_000, 1024, 512
FILE_PROMPTS, FILE_NEW_TOKENS = 32, 32
MANY_BEAMS, MANY_BEAMS_NEW = 100, 5  # beam sampling against beam search
TRACE_TOP = 10  # generate()'s default trace: the candidates each step keeps
CONTEXT_NEEDED = max(PERPLEXITY_WINDOW, PREFILL_TOKENS, PROMPT_TOKENS + GREEDY_NEW)  # positions a checkpoint needs


# ----------------------------------------------------------------------------- greedy, prefill, beam


def minigpt_runs(model, ids, long_ids, counts: dict) -> dict:
    """minigpt's greedy (64 new tokens, the default trace), prefill and beam (4 beams, 32 new tokens), by measure;
    each generation notes how many tokens it made in counts."""
    V = model.config.vocab_size

    def greedy():
        out = minigpt.generate(model, ids, max_new_tokens=GREEDY_NEW, eos_token_id=V)
        counts["minigpt greedy"] = len(out.sequences[0])

    def beam():
        out = minigpt.generate(model, ids, "beam", num_beams=BEAM_BEAMS, max_new_tokens=BEAM_NEW, eos_token_id=V)
        counts["minigpt beam"] = len(out.sequences[0])

    return {"greedy_s": {"minigpt": greedy}, "prefill_s": {"minigpt": lambda: model(long_ids)},
            "beam_s": {"minigpt": beam}}


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

    return {"greedy_s": lambda: generate(GREEDY_NEW), "prefill_s": prefill,
            "beam_s": lambda: generate(BEAM_NEW, beams=BEAM_BEAMS)}


def compare(folder: Path, hf, repeats: int, trace_pairs: int) -> dict:
    """Every side-by-side figure, and the machine's limits timed in turn with them. hf: (torch, transformers) or
    None."""
    model = minigpt.load(folder)
    ids, counts, results = prompt_ids(model.config.vocab_size, PROMPT_TOKENS), {}, {"loadavg": {}}
    long_ids = np.random.default_rng(1).integers(0, min(model.config.vocab_size, 50256), PREFILL_TOKENS)
    torch = hf[0] if hf else None
    (matvec, matvec_bytes), (sgemm, sgemm_flops) = matvec_functions(torch), sgemm_functions(torch)
    runs = minigpt_runs(model, ids, long_ids, counts)
    runs["greedy_s"] |= matvec  # each limit from the same minutes of a shared machine as the figures it bounds
    runs["prefill_s"] |= sgemm
    ref = None
    if hf:
        ref = hf[1].GPT2LMHeadModel.from_pretrained(folder, dtype=torch.float32).eval()
        for key, fn in transformers_runs(torch, ref, ids, long_ids, counts).items():
            runs[key]["transformers"] = fn
        results["attn_implementation"] = ref.config._attn_implementation
        logits = runs["prefill_s"]["transformers"]()[0].numpy()
        results["prefill_max_abs_diff"] = float(np.abs(model(long_ids) - logits).max())
    for key, fns in runs.items():
        results["loadavg"][key] = loadavg()  # the machine is shared: how busy it was as each one started
        results[key] = take_turns(fns, repeats)
    results["loadavg"]["many_beams_s"] = loadavg()
    results["many_beams_s"] = take_turns(many_beams_runs(model, ids), repeats)
    results["loadavg"]["trace"] = loadavg()
    results["trace"] = trace_cost(model, ids, trace_pairs)
    results.update(compare_whole_texts(model, ref, hf))
    results["bandwidth"] = bandwidth_of(results["greedy_s"], matvec_bytes)
    results["bandwidth_samples_s"] = {k: results["greedy_s"].pop(k) for k in matvec}
    results["sgemm_peak"] = sgemm_peak_of(results["prefill_s"], sgemm_flops)
    results["sgemm_samples_s"] = {k: results["prefill_s"].pop(k) for k in sgemm}
    results["new_token_counts"] = counts
    results["weight_bytes_per_token"] = weight_bytes_per_token(model)
    results["flops"] = task_flops(model.config, results["file_prompt_tokens"])
    return results


def task_flops(config, file_prompt: int) -> dict:
    """The FLOPs of each measure's forward passes (limits.forward_flops), by measure: the same count for both
    sides, so that each side's share of the sgemm peak is that FLOP count over its time, over the peak."""
    return {"greedy_s": generation_flops(config, PROMPT_TOKENS, GREEDY_NEW),
            "prefill_s": forward_flops(config, PREFILL_TOKENS),
            "beam_s": generation_flops(config, PROMPT_TOKENS, BEAM_NEW, rows=BEAM_BEAMS, prompt_rows=1),
            "perplexity_s": perplexity_flops(config, PERPLEXITY_TOKENS, PERPLEXITY_WINDOW, PERPLEXITY_STRIDE),
            "file_s": generation_flops(config, file_prompt, FILE_NEW_TOKENS, rows=FILE_PROMPTS)}


# ----------------------------------------------------------------------------- minigpt's own


def many_beams_runs(model, ids) -> dict:
    """Beam search and beam sampling, 100 beams x 5 new tokens each, no top-k (beam sampling draws its 2K
    candidates from the whole [K * V] distribution, by the Gumbel-top-k trick), seeded."""
    V = model.config.vocab_size
    opts = {"num_beams": MANY_BEAMS, "max_new_tokens": MANY_BEAMS_NEW, "eos_token_id": V}
    return {"minigpt beam": lambda: minigpt.generate(model, ids, "beam", **opts),
            "minigpt beam-sample": lambda: minigpt.generate(model, ids, "beam-sample", seed=0, **opts)}


def trace_cost(model, ids, pairs: int) -> dict:
    """What the default trace (trace_top=10) costs a greedy run, apart from the noise: `pairs` pairs of greedy
    32+64 runs, one with the trace's candidates and one without (trace_top=0), the order alternating from pair to
    pair, so that a burst of load falls on one pair's two runs alike; each pair's difference is one estimate.
    Beside it, the trace's own work timed directly: trace_step on one step's real arrays, with 10 candidates
    and with none. -> {"pairs": [(with, without) seconds], "direct_s": {top: seconds per call}, "new_tokens"}"""
    V = model.config.vocab_size
    greedy = {top: (lambda top=top: minigpt.generate(model, ids, max_new_tokens=GREEDY_NEW, eos_token_id=V,
                                                     trace_top=top)) for top in (TRACE_TOP, 0)}
    for fn in greedy.values():
        fn()
    samples = []
    for pair in range(pairs):
        times = {}
        for top in (TRACE_TOP, 0) if pair % 2 == 0 else (0, TRACE_TOP):
            gc.collect()
            time.sleep(0.05)
            times[top] = timed(greedy[top])[0]
        samples.append((times[TRACE_TOP], times[0]))
    logits = model(np.asarray(ids))[-1:]  # [1, V] a real step's logits
    logprobs, processed, tok = log_softmax(logits)[0], logits[0], Tokenizer()
    direct = {}
    for top in (TRACE_TOP, 0, TRACE_TOP, 0):  # twice each, in turn; the faster of the two
        seconds, _ = timed(lambda: [trace_step(7, logprobs, processed, top, tok) for _ in range(200)])
        direct[top] = min(direct.get(top, seconds), seconds)
    return {"pairs": samples, "direct_s": {top: s / 200 for top, s in direct.items()}, "new_tokens": GREEDY_NEW}


# ----------------------------------------------------------------------------- whole texts


def compare_whole_texts(model, ref, hf) -> dict:
    """The batch work, side by side, each once (they take minutes): the perplexity of a 20,000-token text with
    transformers' guide loop on the same windows, and 32 prompts of 8 to 40 tokens from a file, 32 new tokens
    each, against transformers' generate() on the same left-padded batch and minigpt one prompt at a time."""
    rng, tok = np.random.default_rng(2), minigpt.Tokenizer()
    text = rng.integers(0, 50256, PERPLEXITY_TOKENS).tolist()
    texts = [tok.decode(rng.integers(0, 50256, n).tolist()) for n in rng.integers(8, 41, FILE_PROMPTS)]
    batch_ids = [tok.encode(t) for t in texts]
    longest = max(map(len, batch_ids))  # the batch's prompts are left-padded to it
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
        x = torch.tensor([[0] * (longest - len(ids)) + ids for ids in batch_ids])
        mask = torch.tensor([[0] * (longest - len(ids)) + [1] * len(ids) for ids in batch_ids])

        def hf_batch():
            with torch.inference_mode():
                ref.generate(x, attention_mask=mask, do_sample=False, max_new_tokens=FILE_NEW_TOKENS,
                             min_new_tokens=FILE_NEW_TOKENS, pad_token_id=ref.config.eos_token_id)

        ppl["transformers"] = lambda: window_nlls(ref, text, PERPLEXITY_WINDOW, PERPLEXITY_STRIDE)
        batched["transformers"] = hf_batch
    print("whole texts: perplexity and a file of prompts (once each) ...", flush=True)
    return {"perplexity_s": take_turns(ppl, 1, warmup=0), "file_s": take_turns(batched, 1, warmup=0),
            "file_prompt_tokens": longest}
