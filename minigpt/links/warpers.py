"""The other warpers of transformers: cut-offs by typicality and by entropy, only when sampling.

    top_h         keep the most probable tokens while their share of the entropy stays within top_h H
    typical_p     keep tokens whose surprise is close to the entropy
    epsilon       keep p_i >= epsilon
    eta           keep p_i >= min(eta, sqrt(eta) exp(-H))

Each keeps the contract of core/link.py and reproduces the transformers class it names; the classic ones
(temperature, top-k, top-p, min-p) are in core/links.py, and chain.py orders them all as transformers does.

What this module is not: the penalties and bans every strategy applies (penalties.py), llama.cpp's samplers
(llama.py), or the choice of the token (core/chain.py, mirostat.py).
"""

from dataclasses import dataclass

import numpy as np

from ..core.link import NEG_INF, Link, Option, Trait, reads
from ..core.links import Cutoff, scatter_back
from ..core.numerics import cumulative_sum, kth_largest, log_softmax, row_max, softmax

SAMPLES = Trait.SAMPLES
TOP_H = Option("top_h", None, "keep the most probable tokens (of the first 100) while their entropy terms add up to "
               "at most H times the entropy", "warpers", SAMPLES, low=0, high=1, ends="(]", metavar="H")
TOP_H_CANDIDATES = 100  # transformers' top_n: top-h looks at the 100 most probable tokens only
TYPICAL_P = Option("typical_p", 1.0, "keep the tokens whose surprise is closest to the entropy, mass P", "warpers",
                   SAMPLES, low=0, high=1, ends="()", note="(1 disables it)", metavar="P")
EPSILON_CUTOFF = Option("epsilon_cutoff", 0.0, "drop tokens of probability below E", "warpers", SAMPLES, low=0,
                        high=1, ends="()", note="(0 disables it)", metavar="E")
ETA_CUTOFF = Option("eta_cutoff", 0.0, "drop tokens below min(E, sqrt(E) exp(-entropy)): a floor that falls as "
                    "the distribution flattens", "warpers", SAMPLES, low=0, high=1, ends="()",
                    note="(0 disables it)", metavar="E")


def entropy(logp):
    """H = -sum_i p_i log p_i over the last axis, with 0 log 0 = 0 (the -inf * 0 NaNs are skipped). -> [B, 1]"""
    with np.errstate(invalid="ignore"):
        return -np.nansum(np.exp(logp) * logp, axis=-1, keepdims=True)


def below(logits, floor, min_tokens_to_keep: int):
    """logits [B, V] with -inf where p_i < floor ([B, 1] or a number) and the logit is below the
    min_tokens_to_keep-th largest: the top ones, and ties with them, always stay."""
    k = min(min_tokens_to_keep, logits.shape[-1])
    return np.where((softmax(logits) < floor) & (logits < kth_largest(logits, k)), NEG_INF, logits)


@dataclass(repr=False)
class TopH(Link):
    """Top-H ("Top-H Decoding: Adapting the Creativity and Coherence with Bounded Entropy in Text Generation",
    NeurIPS 2025, arXiv 2509.02510): among the n = min(100, V) most probable tokens, renormalised to q, keep the
    most probable while sum_{i <= j} -q_i log q_i <= h * H(q), the first one always. As
    transformers.TopHLogitsWarper (float32, the running sum as torch's, H as torch's Categorical computes it):
    tokens past the 100th are always dropped, and tokens tied with each other go by id (torch.topk orders them as
    it likes)."""
    name = "top_h"
    h: float = reads(TOP_H)

    def __call__(self, logits, ids):
        n = min(TOP_H_CANDIDATES, logits.shape[-1])
        top = np.argsort(-logits, axis=-1, kind="stable")[:, :n]  # [B, n] most probable first, ties by id
        x = np.take_along_axis(logits, top, axis=-1)  # [B, n]
        with np.errstate(divide="ignore", invalid="ignore"):  # a row of -inf keeps its first: it stays all -inf
            m = row_max(x)  # [B, 1]
            logq = x - (m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True)))  # [B, n] x - logsumexp
            q = softmax(logq)  # [B, n]
            h = -(np.maximum(logq, np.finfo(np.float32).min) * q).sum(axis=-1, keepdims=True)  # [B, 1]
            terms = -q * np.log(q)  # [B, n] NaN for q = 0, which is never kept
            keep = cumulative_sum(terms) <= h * np.float32(self.h)  # [B, n]
        keep[:, 0] = True
        kept = np.zeros(logits.shape, dtype=bool)  # [B, V]
        np.put_along_axis(kept, top, keep, axis=-1)
        return np.where(kept, logits, NEG_INF)


@dataclass(repr=False)
class TypicalP(Cutoff):
    """Locally typical sampling (Meister et al. 2023, "Locally Typical Sampling", TACL): prefer tokens whose
    surprise -log p_i is close to the entropy H = -sum_j p_j log p_j. As transformers.TypicalLogitsWarper: sort
    by |-log p_i - H| ascending, find the first position at which the running mass reaches p, and keep every
    token whose distance does not exceed that one's (ties with it too), plus the first min_tokens_to_keep."""
    name = "typical_p"
    p: float = reads(TYPICAL_P)

    def __call__(self, logits, ids):
        logp = log_softmax(logits)  # [B, V]
        distance = np.abs(-logp - entropy(logp))  # [B, V], inf for -inf logits
        order = np.argsort(distance, axis=-1, kind="stable")  # most typical first
        distance_sorted = np.take_along_axis(distance, order, axis=-1)
        cum = cumulative_sum(softmax(np.take_along_axis(logits, order, axis=-1)))  # [B, V]
        cut = np.minimum((cum < np.float32(self.p)).sum(axis=-1, keepdims=True), logits.shape[-1] - 1)  # [B, 1]
        drop = distance_sorted > np.take_along_axis(distance_sorted, cut, axis=-1)
        drop[:, : self.min_tokens_to_keep] = False
        return np.where(scatter_back(drop, order), NEG_INF, logits)


@dataclass(repr=False)
class EpsilonCutoff(Cutoff):
    """Keep p_i >= epsilon (Hewitt, Manning & Liang 2022, "Truncation Sampling as Language Model
    Desmoothing"); transformers.EpsilonLogitsWarper, with the min_tokens_to_keep rule of `below`."""
    name = "epsilon_cutoff"
    epsilon: float = reads(EPSILON_CUTOFF)

    def __call__(self, logits, ids):
        return below(logits, np.float32(self.epsilon), self.min_tokens_to_keep)


@dataclass(repr=False)
class EtaCutoff(Cutoff):
    """Keep p_i >= eta = min(epsilon, sqrt(epsilon) * exp(-H)), H the entropy of p (Hewitt, Manning & Liang
    2022): flat distributions cut less. transformers.EtaLogitsWarper (epsilon is its `eta_cutoff`), the
    threshold in float32, with the min_tokens_to_keep rule of `below`."""
    name = "eta_cutoff"
    epsilon: float = reads(ETA_CUTOFF)

    def __call__(self, logits, ids):
        eps = np.float32(self.epsilon)
        eta = np.minimum(eps, np.sqrt(eps) * np.exp(-entropy(log_softmax(logits))))  # [B, 1]
        return below(logits, eta, self.min_tokens_to_keep)
