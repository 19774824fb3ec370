"""The numeric helpers every stage after the logits shares, one implementation of each.

    softmax, log_softmax                   scores -> probabilities, in float32, without NaN for a row of -inf
    cumulative_sum                         running sums as torch accumulates them on the CPU
    kth_largest, largest                   top-k selection: a threshold, or the indices in order
    draw                                   the seeded draw of one token from a distribution

A row whose every score is -inf (every token ruled out) stays well defined: softmax gives all zeros,
log_softmax all -inf. The strategies, not these functions, refuse to choose from such a row.

What this module is not: the model's own attention softmax (model.py keeps an in-place one, see there).
"""

import numpy as np

# Shapes: B rows, V vocabulary.


def row_max(x):
    """max x over the last axis, 0 for a row of only -inf (so that x - max stays -inf, not NaN). -> [B, 1]"""
    top = x.max(axis=-1, keepdims=True)
    return np.where(top == -np.inf, np.zeros_like(top), top)


def softmax(x):
    """p_i = exp(x_i - max x) / sum_j exp(x_j - max x) over the last axis; -inf gets probability 0.
    A row of only -inf (every token masked) gets all zeros: no distribution, but no NaN either."""
    e = np.exp(x - row_max(x))  # [B, V]
    total = e.sum(axis=-1, keepdims=True)
    return e / np.where(total > 0, total, np.ones_like(total))


def log_softmax(x):
    """log p_i = x_i - max x - log sum_j exp(x_j - max x) over the last axis; a row of only -inf stays -inf."""
    shifted = x - row_max(x)  # [B, V]
    total = np.exp(shifted).sum(axis=-1, keepdims=True)
    return shifted - np.log(np.where(total > 0, total, np.ones_like(total)))


def cumulative_sum(p):
    """Running sum over the last axis, accumulated in float64 and rounded to float32, as torch does on CPU."""
    return np.cumsum(p, axis=-1, dtype=np.float64).astype(np.float32)


def kth_largest(x, k):
    """The k-th largest value of each row (ties counted separately). [B, V] -> [B, 1]"""
    v = x.shape[-1]
    return np.partition(x, v - k, axis=-1)[:, v - k : v - k + 1]


def largest(scores, n: int) -> np.ndarray:
    """Indices of the n largest of scores [N], largest first, equal scores by lower index. A few are
    picked by repeated argmax (each pass ~50x cheaper than a selection over 50257 entries); many by
    one selection (argpartition) and a sort of the n chosen."""
    n = min(n, scores.size)
    if n > 32:
        nth = np.partition(scores, scores.size - n)[scores.size - n]  # the n-th largest value
        above = np.flatnonzero(scores > nth)
        best = np.concatenate([above, np.flatnonzero(scores == nth)[: n - above.size]])  # ties at nth: lower ids
        return best[np.lexsort((best, -scores[best]))]
    rest = scores.copy()
    best = np.empty(n, dtype=np.int64)
    for j in range(n):
        best[j] = rest.argmax()  # the first of equal maxima
        if rest[best[j]] == -np.inf:  # only -inf is left, chosen or not: the lowest ids not chosen yet
            best[j:] = np.setdiff1d(np.arange(scores.size), best[:j])[: n - j]
            break
        rest[best[j]] = -np.inf
    return best


def draw(probs, rng: np.random.Generator) -> int:
    """Inverse-CDF sampling: u ~ U[0, 1), the first token whose cumulative probability exceeds u * total.

    Computed in float64 from one uniform number per draw, so the same seed gives the same token on any
    machine; a token of probability 0 is never drawn.
    """
    cdf = np.cumsum(probs, dtype=np.float64)  # [V]
    if not cdf[-1] > 0:  # the strategies check for this first (chain.check_choosable), with a better message
        raise ValueError("cannot draw a token from a distribution in which every token has probability 0.")
    u = rng.random() * cdf[-1]
    return int(min(np.searchsorted(cdf, u, side="right"), np.flatnonzero(probs)[-1]))
