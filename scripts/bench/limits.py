"""The machine's own limits, measured in the same run as the figures they bound, and what each figure asks of them.

- the memory bandwidth: a float32 matrix-vector product over a 256 MB matrix (no cache holds it), timed in turn
  with the greedy runs. Decoding one token reads every weight once, so weight bytes / bandwidth is the fastest a
  token can come (the bandwidth bound).
- the sgemm peak: the GFLOP/s of a [512, 768] x [768, 3072] float32 product (the MLP's up projection over a
  512-token prefill), timed in turn with the prefill runs, at the run's thread count.
- what a figure asks: the weight bytes one decoded token reads, and the FLOPs of a forward pass
  (`forward_flops`), summed over the passes of a prefill, a generation, beam search or the perplexity windows.

A figure's share of its limit is the FLOP/s (or tokens/s) it reached over what the limit allows: a share of
100% would be the machine's best at that shape. It measures nothing about transformers beyond that share.
The goals (issue #25) are shares: decode >= 80% of the bandwidth bound, prefill >= 70% of the sgemm peak, the
perplexity windows >= 70%, 32 batched prompts >= 60%. The benchmark (report.py) and the profiler
(profile_minigpt.py) both set their figures against them here.
"""

import numpy as np

from minigpt.core.config import GPTConfig
from minigpt.inspection.scoring import windows

from .common import median

MATVEC_CALLS = 4  # products per timed sample of the bandwidth measurement
SGEMM_SHAPE = (512, 768, 3072)  # M, K, N of the peak's product: [M, K] @ [K, N]
SGEMM_CALLS = 4  # products per timed sample of the peak measurement
GOALS = {"decode": 0.80, "prefill": 0.70, "perplexity": 0.70, "batch": 0.60}  # shares of the limit, at least


# ----------------------------------------------------------------------------- the bandwidth bound


def weight_bytes_per_token(model) -> int:
    """The bytes of weights one decoded token reads: every block, ln_f and the tied LM head [V, C]
    (the token and position embeddings give one row each, which is left out)."""
    p = model.params
    leaves = lambda tree: [x for v in tree.values() for x in (leaves(v) if isinstance(v, dict) else [v])]  # noqa: E731
    blocks = sum(a.nbytes for layer in p["h"] for a in leaves(layer))
    return blocks + sum(a.nbytes for a in leaves(p["ln_f"])) + p["lm_head"]["weight"].nbytes


def bandwidth_bound(bandwidth: dict, weight_bytes: int) -> float:
    """The fastest decoding the bandwidth allows, in tokens/s: each token reads weight_bytes once."""
    return bandwidth["bytes_per_s"] / weight_bytes


def repeated(fn, n: int):
    """fn called n times, as one function."""
    return lambda: [fn() for _ in range(n)]


def matvec_functions(torch=None) -> tuple[dict, int]:
    """Float32 matrix-vector products over a 256 MB matrix, MATVEC_CALLS per call: x [1, n] @ W [n, m] as
    minigpt's layers compute it, W [m, n] @ x [n], and torch's x @ W for comparison. -> ({name: function},
    bytes each call reads)."""
    rng = np.random.default_rng(0)
    W = rng.standard_normal((8192, 8192), dtype=np.float32)
    x = rng.standard_normal((1, 8192), dtype=np.float32)
    fns = {"matvec x @ W": repeated(lambda: x @ W, MATVEC_CALLS), "matvec W @ x": repeated(lambda: W @ x[0],
                                                                                           MATVEC_CALLS)}
    if torch is not None:
        Wt, xt = torch.from_numpy(W), torch.from_numpy(x)
        fns["matvec torch x @ W"] = repeated(lambda: xt @ Wt, MATVEC_CALLS)
    return fns, MATVEC_CALLS * W.nbytes


def bandwidth_of(samples: dict, nbytes: int) -> dict:
    """The bandwidth bound: the faster of NumPy's two matvec forms, by its median time."""
    forms = {name.removeprefix("matvec "): s for name, s in samples.items() if name.startswith("matvec")}
    by_form = {form: nbytes / median(s) for form, s in forms.items()}
    best = {form: nbytes / min(s) for form, s in forms.items()}
    return {"bytes_per_s": max(by_form["x @ W"], by_form["W @ x"]), "by_form": by_form, "best_by_form": best,
            "matrix_bytes": nbytes // MATVEC_CALLS}


# ----------------------------------------------------------------------------- the sgemm peak


def sgemm_functions(torch=None) -> tuple[dict, int]:
    """The product [512, 768] @ [768, 3072] in float32, SGEMM_CALLS per call, in NumPy (the peak) and in torch
    (for comparison). -> ({name: function}, FLOPs of each call: 2 M K N per product)."""
    M, K, N = SGEMM_SHAPE
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((M, K), dtype=np.float32), rng.standard_normal((K, N), dtype=np.float32)
    fns = {"sgemm": repeated(lambda: a @ b, SGEMM_CALLS)}
    if torch is not None:
        at, bt = torch.from_numpy(a), torch.from_numpy(b)
        fns["sgemm torch"] = repeated(lambda: at @ bt, SGEMM_CALLS)
    return fns, SGEMM_CALLS * 2 * M * K * N


def sgemm_peak_of(samples: dict, flops: int) -> dict:
    """The sgemm peak: NumPy's FLOP/s at its median time (and torch's, and each one's best run)."""
    forms = {name: s for name, s in samples.items() if name.startswith("sgemm")}
    return {"flops_per_s": flops / median(forms["sgemm"]),
            "by_form": {name: flops / median(s) for name, s in forms.items()},
            "best_by_form": {name: flops / min(s) for name, s in forms.items()}, "shape": SGEMM_SHAPE}


# ----------------------------------------------------------------------------- the FLOPs a figure asks for


def forward_flops(config: GPTConfig, new: int, cached: int = 0, unembedded: int | None = None) -> int:
    """The FLOPs of one forward pass of one row: `new` tokens after `cached` positions already in the KV cache,
    `unembedded` of them (default: all) taken through the LM head. With C = n_embd, S = cached + new, V = vocab:

        n_layer * (2 * P * new + 4 * new * S * C) + 2 * C * V * unembedded

    P is the weights of a block's four matrices (c_attn C x 3C, c_proj C x C, c_fc C x d_mlp, c_proj d_mlp x C;
    12 C^2 for GPT-2), each multiplied and added once per token: 2 FLOPs per weight. Attention is q k^T and
    probabilities @ v, each new x S x C multiply-adds over the heads: 4 new S C, the whole [new, S] square as
    minigpt computes it, the causal mask's half included. The LM head is a [C, V] product per unembedded
    position. Biases, layer norms, gelu and softmax (O(new * C) or O(new * S) each) are left out, as are the
    embeddings (lookups)."""
    C, S = config.n_embd, cached + new
    P = C * 3 * C + C * C + 2 * C * config.d_mlp
    unembedded = new if unembedded is None else unembedded
    return config.n_layer * (2 * P * new + 4 * new * S * C) + 2 * C * config.vocab_size * unembedded


def generation_flops(config: GPTConfig, prompt: int, new_tokens: int, rows: int = 1, prompt_rows: int | None = None):
    """The FLOPs of generating new_tokens after a prompt of `prompt` positions (left padding included): one
    prefill of prompt_rows rows (default: rows) that unembeds its last position, then new_tokens - 1 one-token
    forwards of `rows` rows (beam search: one prompt, then num_beams rows)."""
    prompt_rows = rows if prompt_rows is None else prompt_rows
    prefill = prompt_rows * forward_flops(config, prompt, 0, unembedded=1)
    return prefill + rows * sum(forward_flops(config, 1, prompt + i, unembedded=1) for i in range(new_tokens - 1))


def perplexity_flops(config: GPTConfig, n_tokens: int, window: int, stride: int) -> int:
    """The FLOPs of the perplexity of n_tokens with a sliding window (minigpt.inspection.scoring.windows): each
    window one forward of its length, unembedding the positions it scores. transformers' guide loop unembeds
    every position of a window; the share counts the same work for both."""
    return sum(forward_flops(config, w.end - w.begin, 0, unembedded=w.end - w.first_scored)
               for w in windows(n_tokens, window, stride))


# ----------------------------------------------------------------------------- a figure against its limit


def share_of_bound(new_tokens: int, seconds: float, bound: float) -> float:
    """Tokens/s reached over the bandwidth bound (tokens/s)."""
    return new_tokens / seconds / bound


def share_of_peak(flops: int, seconds: float, peak: float) -> float:
    """FLOP/s reached over the sgemm peak (FLOP/s)."""
    return flops / seconds / peak


def verdict(share: float, goal: float | None) -> str:
    """"met" or "missed" against a goal (a share, at least), "report" when there is none."""
    return "report" if goal is None else "met" if share >= goal else "missed"
