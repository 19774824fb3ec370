"""Mirostat (Basu et al. 2021, "Mirostat: A Neural Text Decoding Algorithm that Directly Controls
Perplexity", ICLR): a chooser that samples while steering the chosen tokens' surprise towards a target tau.

Each row keeps a running mu (in bits), 2 * tau at the start. At each step the candidates are truncated
by mu, a token is drawn from what is left (renormalised), and mu moves against the error:

    mu <- mu - eta * (s - tau),   s = -log2 p(token) under the truncated distribution.

v1 truncates to the top k tokens, k from a Zipf fit of the distribution: with the candidates sorted,
p_1 >= p_2 >= ..., s_hat = sum_i t_i b_i / sum_i t_i^2 over the first m - 1 = 99 pairs (m = ZIPF_FIT_TOKENS),
t_i = ln((i + 1) / i), b_i = ln(p_i / p_{i+1}); eps = s_hat - 1;
k = (eps * 2^mu / (1 - N^-eps)) ^ (1 / s_hat), N the vocabulary size; at least one token.
v2 keeps the most probable tokens up to the first whose surprise -log2 p_i exceeds mu (at least one).

Numbers as llama.cpp's "mirostat" and "mirostat-v2" samplers (`src/llama-sampling.cpp`), in float32.
The candidates are the finite logits it is given, i.e. what the processor chain left; b_i is computed as
the logit difference x_i - x_{i+1}, equal to ln(p_i / p_{i+1}) but without underflow. When s_hat is 0
or undefined (ties, one candidate), k is taken as every candidate.

What this module is not: a logit processor. Mirostat chooses the token and learns from it, so it is a
chooser (core/chain.py), the last link of the chain in place of the plain draw, as in llama.cpp's chain.
"""

from dataclasses import dataclass

import numpy as np

from ..core.chain import Chooser
from ..core.checks import check_int
from ..core.link import NEG_INF, Link, Option, Trait, reads
from ..core.numerics import draw, largest, softmax

ZIPF_FIT_TOKENS = 100  # the most probable tokens the Zipf exponent is fitted on (llama.cpp's m)

LLAMA_SAMPLERS, SAMPLE = "llama.cpp samplers", Trait.SAMPLES | Trait.CHOOSES  # sample: it replaces the draw
MIROSTAT = Option("mirostat", 0, "mirostat: 1 or 2, the version; it steers each token's surprise towards tau and "
                  "replaces the draw (0 = off)", LLAMA_SAMPLERS, SAMPLE, kind=int, low=0, high=2,
                  valid="0 (off), 1 or 2", metavar="V")
MIROSTAT_TAU = Option("mirostat_tau", 5.0, "mirostat: the target surprise, in bits", LLAMA_SAMPLERS, SAMPLE,
                      low=0, high=100, ends="(]", metavar="BITS")
MIROSTAT_ETA = Option("mirostat_eta", 0.1, "mirostat: how fast mu follows the error", LLAMA_SAMPLERS, SAMPLE,
                      low=0, high=1, metavar="X")


@dataclass(repr=False)
class Mirostat(Link, Chooser):
    """The mirostat state of B rows, `mu` [B] float32, and the truncation and update rules above; the chain's
    last link in place of the draw (core/chain.py): narrow truncates by mu, choose draws from what is left,
    accept moves mu."""
    version: int = reads(MIROSTAT)
    tau: float = reads(MIROSTAT_TAU, default=5.0)
    eta: float = reads(MIROSTAT_ETA, default=0.1)
    vocab_size: int | None = 50257
    rows: int = 1
    rng: object = None

    def __post_init__(self):
        super().__post_init__()
        if self.version == 0:
            raise MIROSTAT.refusal(self.version, f"{MIROSTAT.valid.removeprefix('0 (off), ')} to choose by mirostat")
        self.vocab_size = check_int("vocab_size", self.vocab_size or 50257, 1)
        self.mu = np.full(self.rows, np.float32(2 * self.tau), dtype=np.float32)  # [B]

    @property
    def name(self):
        return "mirostat" if self.version == 1 else "mirostat_v2"

    def __repr__(self):
        return f"{self.name}(tau={self.tau!r}, eta={self.eta!r})"

    def describe(self) -> str:
        return repr(self)

    def top_k(self, x, mu, n):
        """v1's k for one row of n candidates; x [min(ZIPF_FIT_TOKENS, n)] holds the largest of their logits,
        sorted descending."""
        pairs = min(ZIPF_FIT_TOKENS - 1, n - 1)
        if pairs < 1:
            return n
        i = np.arange(1, pairs + 1, dtype=np.float32)
        t = np.log((i + 1) / i)  # [pairs]
        b = x[:pairs] - x[1 : pairs + 1]  # [pairs] = ln(p_i / p_{i+1})
        s_hat = np.float32((t * b).sum() / (t * t).sum())
        eps = s_hat - np.float32(1)
        with np.errstate(all="ignore"):
            k = ((eps * np.float32(2) ** mu / (np.float32(1) - np.float32(self.vocab_size) ** -eps))
                 ** (np.float32(1) / s_hat))
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
            top = largest(logits[row], min(ZIPF_FIT_TOKENS, count[row]))  # the most probable candidates, in order
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

    def narrow(self, scores):
        """The candidates each row's mu allows (truncate); what the draw and the trace then see."""
        return self.truncate(scores)

    def choose(self, truncated, rows):
        """One token per given row [B], drawn from the truncated distribution (0 for the other rows)."""
        probs = softmax(truncated)
        tokens = np.zeros(truncated.shape[0], dtype=np.int64)
        for row in rows:
            tokens[row] = draw(probs[row], self.rng)
        return tokens

    def accept(self, truncated, tokens, rows) -> dict:
        """Move mu for the given rows; -> {name: [B]} the mu each row was truncated by, and its surprise."""
        rows = np.asarray(rows, dtype=np.int64)
        mu_used = self.mu.copy()
        surprise = np.zeros(truncated.shape[0], dtype=np.float32)
        surprise[rows] = self.observe(truncated, np.asarray(tokens), rows)
        return {"mirostat_mu": mu_used, "mirostat_surprise": surprise}
