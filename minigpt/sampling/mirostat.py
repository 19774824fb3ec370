"""Mirostat (Basu et al. 2021, "Mirostat: A Neural Text Decoding Algorithm that Directly Controls
Perplexity", ICLR): sampling that steers the surprise of the chosen tokens towards a target tau.

Each row keeps a running mu (in bits), 2 * tau at the start. At each step the candidates are truncated
by mu, a token is drawn from what is left (renormalised), and mu moves against the error:

    mu <- mu - eta * (s - tau),   s = -log2 p(token) under the truncated distribution.

v1 truncates to the top k tokens, k from a Zipf fit of the distribution: with the candidates sorted,
p_1 >= p_2 >= ..., s_hat = sum_i t_i b_i / sum_i t_i^2 over the first m - 1 = 99 pairs,
t_i = ln((i + 1) / i), b_i = ln(p_i / p_{i+1}); eps = s_hat - 1;
k = (eps * 2^mu / (1 - N^-eps)) ^ (1 / s_hat), N the vocabulary size; at least one token.
v2 keeps the most probable tokens up to the first whose surprise -log2 p_i exceeds mu (at least one).

Numbers as llama.cpp's "mirostat" and "mirostat-v2" samplers (`src/llama-sampling.cpp`), in float32.
The candidates are the finite logits it is given, i.e. what the processor chain left; b_i is computed as
the logit difference x_i - x_{i+1}, equal to ln(p_i / p_{i+1}) but without underflow. When s_hat is 0
or undefined (ties, one candidate), k is taken as every candidate.

What this module is not: a logit processor. Mirostat chooses the token and learns from it, so it takes the
place of the final draw (sample.py), as it is the last sampler of llama.cpp's chain.
"""

import numpy as np

from .decoding import draw, largest
from .processors import NEG_INF, check_int, check_real, softmax

M = 100  # tokens of the Zipf fit (llama.cpp's m)


class Mirostat:
    """The mirostat state of B rows: `mu` [B] float32, and the truncation and update rules above."""

    def __init__(self, version, tau=5.0, eta=0.1, vocab_size=50257, rows=1):
        if version not in (1, 2) or isinstance(version, bool):
            raise ValueError(f"mirostat must be 0 (off), 1 or 2, got {version!r}.")
        self.version = version
        self.tau = check_real("mirostat_tau", tau, lambda v: 0 < v <= 100, "a number of bits in (0, 100]")
        self.eta = check_real("mirostat_eta", eta, lambda v: 0 <= v <= 1, "in [0, 1]")
        self.vocab_size = check_int("vocab_size", vocab_size, 1)
        self.mu = np.full(rows, np.float32(2 * self.tau), dtype=np.float32)  # [B]

    @property
    def name(self):
        return "mirostat" if self.version == 1 else "mirostat_v2"

    def __repr__(self):
        return f"{self.name}(tau={self.tau!r}, eta={self.eta!r})"

    def top_k(self, x, mu, n):
        """v1's k for one row of n candidates, x [min(M, n)] the largest of their logits, sorted descending."""
        pairs = min(M - 1, n - 1)
        if pairs < 1:
            return n
        i = np.arange(1, pairs + 1, dtype=np.float32)
        t = np.log((i + 1) / i)  # [pairs]
        b = x[:pairs] - x[1 : pairs + 1]  # [pairs] = ln(p_i / p_{i+1})
        s_hat = np.float32((t * b).sum() / (t * t).sum())
        eps = s_hat - np.float32(1)
        with np.errstate(all="ignore"):
            k = (eps * np.float32(2) ** mu / (np.float32(1) - np.float32(self.vocab_size) ** -eps)) ** (np.float32(1) / s_hat)
        if not np.isfinite(k) or k >= n:
            return n
        return max(int(k), 1)

    def truncate(self, logits):
        """The candidates each row's mu allows: logits [B, V] -> [B, V] with -inf for the others."""
        count = np.isfinite(logits).sum(axis=-1)  # [B] candidates per row
        if self.version == 2:  # surprise only grows down the sorted candidates: keep those within mu, at least the top
            with np.errstate(divide="ignore"):
                keep = -np.log2(softmax(logits)) <= self.mu[:, None]  # [B, V]
            keep[np.arange(len(count)), logits.argmax(axis=-1)] = True
            return np.where(keep & (count > 0)[:, None], logits, NEG_INF)
        out = np.full_like(logits, NEG_INF)
        for row in np.flatnonzero(count):
            top = largest(logits[row], min(M, count[row]))  # the most probable candidates, in order
            keep = self.top_k(logits[row, top], self.mu[row], int(count[row]))
            kept = top[:keep] if keep <= top.size else largest(logits[row], keep)
            out[row, kept] = logits[row, kept]
        return out

    def observe(self, truncated, tokens, rows):
        """mu <- mu - eta * (-log2 p(token) - tau) for each given row; returns the surprises [len(rows)]."""
        probs = softmax(truncated[rows])  # [R, V]
        surprise = -np.log2(probs[np.arange(len(rows)), tokens[rows]])  # [R]
        self.mu[rows] -= np.float32(self.eta) * (surprise - np.float32(self.tau))
        return surprise

    def choose(self, logits, rng, rows=None, forced=None):
        """Truncate, draw one token per row (or take `forced` [B]), update mu.
        -> (tokens [B], truncated logits [B, V], state: {name: [B] array} for the trace)."""
        rows = np.arange(logits.shape[0]) if rows is None else np.asarray(rows)
        mu_used = self.mu.copy()
        truncated = self.truncate(logits)  # [B, V]
        if forced is not None:
            tokens = np.asarray(forced, dtype=np.int64).copy()
        else:
            probs = softmax(truncated)
            tokens = np.zeros(logits.shape[0], dtype=np.int64)
            for row in rows:
                tokens[row] = draw(probs[row], rng)
        surprise = np.zeros(logits.shape[0], dtype=np.float32)
        surprise[rows] = self.observe(truncated, tokens, rows)
        return tokens, truncated, {"mirostat_mu": mu_used, "mirostat_surprise": surprise}
