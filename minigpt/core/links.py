"""The warpers: processors that reshape the distribution a token is drawn from, only when sampling.

    temperature   x / T
    top_k         keep the k largest logits
    top_p         keep the smallest most probable set holding mass p (nucleus)
    min_p         keep p_i >= min_p * max p
    typical_p     keep tokens whose surprise is close to the entropy
    epsilon       keep p_i >= epsilon
    eta           keep p_i >= min(eta, sqrt(eta) exp(-H))

Each keeps the contract of link.py and reproduces the transformers class it names (ties,
`min_tokens_to_keep`, which token is kept at a cut-off); tests/test_processors.py checks that they agree.
transformers' order, which chain.py follows: temperature first, then the cut-offs as listed.

What this module is not: the penalties and bans every strategy applies (penalties.py), llama.cpp's
samplers (llama_samplers.py), or the choice of the token (chain.py).

Differences from transformers:
- at a cut-off, tied tokens go by id (top_p drops the lower first, min_p keeps it); torch may order them otherwise.
"""

import numpy as np

from .numerics import cumulative_sum, entropy, kth_largest, log_softmax, softmax
from .link import NEG_INF, SAMPLING, LogitsProcessor, Option

# Model logits are at most about 1e4 in size: within this range x / T stays finite in float32.
TEMPERATURE_RANGE = (1e-20, 1e20)


def scatter_back(values_sorted, order):
    """Undo a sort: the inverse of np.take_along_axis(values, order, -1)."""
    out = np.empty_like(values_sorted)
    np.put_along_axis(out, order, values_sorted, axis=-1)
    return out


TEMPERATURE = Option("temperature", 1.0, "divide the logits by T: below 1 sharpens the distribution, above 1 "
                     "flattens it", "warpers", SAMPLING, low=TEMPERATURE_RANGE[0], high=TEMPERATURE_RANGE[1],
                     note="(for T = 0, use the greedy strategy)", metavar="T")
TOP_K = Option("top_k", None, "keep the K most probable tokens (sample: 0 = off, the default; contrastive: the "
               "candidates compared, default 4)", "warpers", (*SAMPLING, "contrastive"), kind=int, low=0, metavar="K")
TOP_P = Option("top_p", 1.0, "nucleus: keep the fewest most probable tokens whose probability adds up to P",
               "warpers", SAMPLING, low=0, high=1, ends="(]", metavar="P")
MIN_P = Option("min_p", 0.0, "keep tokens at least P times as probable as the most probable one", "warpers",
               SAMPLING, low=0, high=1, metavar="P")
TYPICAL_P = Option("typical_p", 1.0, "keep the tokens whose surprise is closest to the entropy, mass P", "warpers",
                   SAMPLING, low=0, high=1, ends="()", note="(1 disables it)", metavar="P")
EPSILON_CUTOFF = Option("epsilon_cutoff", 0.0, "drop tokens of probability below E", "warpers", SAMPLING, low=0,
                        high=1, ends="()", note="(0 disables it)", metavar="E")
ETA_CUTOFF = Option("eta_cutoff", 0.0, "drop tokens below min(E, sqrt(E) exp(-entropy)): a floor that falls as "
                    "the distribution flattens", "warpers", SAMPLING, low=0, high=1, ends="()",
                    note="(0 disables it)", metavar="E")
MIN_TOKENS_TO_KEEP = Option("min_tokens_to_keep", 1, "the fewest tokens any cut-off may leave", "warpers", SAMPLING,
                            kind=int, low=1, metavar="N")


class Temperature(LogitsProcessor):
    """x_i / T: T < 1 sharpens the distribution, T > 1 flattens it (Ackley, Hinton & Sejnowski 1985).

    Matches transformers.TemperatureLogitsWarper. T must be > 0 (greedy decoding is T -> 0); it is held
    within TEMPERATURE_RANGE, where 1e-20 already is greedy and 1e20 uniform, so x / T stays finite.
    """

    name = "temperature"
    options = (TEMPERATURE,)

    @classmethod
    def from_options(cls, o, setting):
        return cls(o["temperature"]) if o["temperature"] != 1.0 else None

    def __init__(self, t):
        self.t = TEMPERATURE.check(t, default_ok=False)

    def params(self):
        return {"t": self.t}

    def __call__(self, logits, ids):
        return logits / np.float32(self.t)  # [B, V]


class TopK(LogitsProcessor):
    """Keep x_i iff x_i >= the k-th largest logit (Fan, Lewis & Dauphin 2018, "Hierarchical Neural Story
    Generation"). Tokens tied with the k-th largest all survive, so ties can keep more than k.

    Matches transformers.TopKLogitsWarper: k is raised to min_tokens_to_keep and capped at V.
    k = 0 disables the filter (as `top_k=0` does in transformers' generate).
    """

    name = "top_k"
    options = (TOP_K, MIN_TOKENS_TO_KEEP)

    @classmethod
    def from_options(cls, o, setting):
        return cls(o["top_k"], o["min_tokens_to_keep"]) if o["top_k"] else None

    def __init__(self, k, min_tokens_to_keep=1):
        self.k = TOP_K.check(k, default_ok=False)
        self.min_tokens_to_keep = MIN_TOKENS_TO_KEEP.check(min_tokens_to_keep)

    def params(self):
        return {"k": self.k, "min_tokens_to_keep": self.min_tokens_to_keep}

    def __call__(self, logits, ids):
        if self.k == 0:
            return logits.copy()
        k = min(max(self.k, self.min_tokens_to_keep), logits.shape[-1])
        return np.where(logits < kth_largest(logits, k), NEG_INF, logits)  # [B, V]


class TopP(LogitsProcessor):
    """Nucleus sampling (Holtzman et al. 2020, "The Curious Case of Neural Text Degeneration"): keep the
    smallest set of most probable tokens whose probability mass reaches p.

    Matches transformers.TopPLogitsWarper, which works from the least probable end: sort ascending,
    c_j = p_(1) + ... + p_(j), drop token j iff c_j <= 1 - p, then keep the min_tokens_to_keep most
    probable whatever their mass. Equal logits are ordered by index (a stable sort), so at the cut the
    lower-indexed of two tied tokens is dropped first (torch's sort does so only up to V = 16).
    """

    name = "top_p"
    options = (TOP_P, MIN_TOKENS_TO_KEEP)

    @classmethod
    def from_options(cls, o, setting):
        return cls(o["top_p"], o["min_tokens_to_keep"]) if o["top_p"] != 1.0 else None

    def __init__(self, p, min_tokens_to_keep=1):
        self.p = TOP_P.check(p, default_ok=False)
        self.min_tokens_to_keep = MIN_TOKENS_TO_KEEP.check(min_tokens_to_keep)

    def params(self):
        return {"p": self.p, "min_tokens_to_keep": self.min_tokens_to_keep}

    def __call__(self, logits, ids):
        order = np.argsort(logits, axis=-1, kind="stable")  # [B, V] least probable first
        cum = cumulative_sum(softmax(np.take_along_axis(logits, order, axis=-1)))  # [B, V]
        drop = cum <= np.float32(1 - self.p)
        drop[:, max(logits.shape[-1] - self.min_tokens_to_keep, 0) :] = False
        return np.where(scatter_back(drop, order), NEG_INF, logits)


class MinP(LogitsProcessor):
    """Keep p_i >= min_p * max_j p_j (Nguyen et al. 2024, "Turning Up the Heat: Min-p Sampling for
    Creative and Coherent LLM Outputs"): the bar rises with the model's confidence.

    Matches transformers.MinPLogitsWarper: the min_tokens_to_keep most probable tokens are kept too.
    If that count splits tied tokens, the lower indices are kept.
    """

    name = "min_p"
    options = (MIN_P, MIN_TOKENS_TO_KEEP)

    @classmethod
    def from_options(cls, o, setting):
        return cls(o["min_p"], o["min_tokens_to_keep"]) if o["min_p"] != 0.0 else None

    def __init__(self, p, min_tokens_to_keep=1):
        self.p = MIN_P.check(p, default_ok=False)
        self.min_tokens_to_keep = MIN_TOKENS_TO_KEEP.check(min_tokens_to_keep)

    def params(self):
        return {"p": self.p, "min_tokens_to_keep": self.min_tokens_to_keep}

    def __call__(self, logits, ids):
        probs = softmax(logits)  # [B, V]
        drop = probs < np.float32(self.p) * probs.max(axis=-1, keepdims=True)
        most_probable = np.argsort(-probs, axis=-1, kind="stable")[:, : self.min_tokens_to_keep]
        np.put_along_axis(drop, most_probable, False, axis=-1)
        return np.where(drop, NEG_INF, logits)


class TypicalP(LogitsProcessor):
    """Locally typical sampling (Meister et al. 2023, "Locally Typical Sampling", TACL): prefer tokens
    whose surprise -log p_i is close to the entropy H = -sum_j p_j log p_j.

    Matches transformers.TypicalLogitsWarper: sort by |-log p_i - H| ascending, find the first position
    at which the running mass reaches p, and keep every token whose distance does not exceed that one's
    (the cut-off token is kept, and so are ties with it), plus the first min_tokens_to_keep in that order.
    """

    name = "typical_p"
    options = (TYPICAL_P, MIN_TOKENS_TO_KEEP)

    @classmethod
    def from_options(cls, o, setting):
        return cls(o["typical_p"], o["min_tokens_to_keep"]) if o["typical_p"] != 1.0 else None

    def __init__(self, p, min_tokens_to_keep=1):
        self.p = TYPICAL_P.check(p, default_ok=False)
        self.min_tokens_to_keep = MIN_TOKENS_TO_KEEP.check(min_tokens_to_keep)

    def params(self):
        return {"p": self.p, "min_tokens_to_keep": self.min_tokens_to_keep}

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


class EpsilonCutoff(LogitsProcessor):
    """Keep p_i >= epsilon (Hewitt, Manning & Liang 2022, "Truncation Sampling as Language Model
    Desmoothing").

    Matches transformers.EpsilonLogitsWarper: a token is dropped only if it is below epsilon AND below
    the min_tokens_to_keep-th largest logit, so the top ones (and ties with them) always stay.
    """

    name = "epsilon_cutoff"
    options = (EPSILON_CUTOFF, MIN_TOKENS_TO_KEEP)

    @classmethod
    def from_options(cls, o, setting):
        return cls(o["epsilon_cutoff"], o["min_tokens_to_keep"]) if o["epsilon_cutoff"] != 0.0 else None

    def __init__(self, epsilon, min_tokens_to_keep=1):
        self.epsilon = EPSILON_CUTOFF.check(epsilon, default_ok=False)
        self.min_tokens_to_keep = MIN_TOKENS_TO_KEEP.check(min_tokens_to_keep)

    def params(self):
        return {"epsilon": self.epsilon, "min_tokens_to_keep": self.min_tokens_to_keep}

    def __call__(self, logits, ids):
        k = min(self.min_tokens_to_keep, logits.shape[-1])
        drop = (softmax(logits) < np.float32(self.epsilon)) & (logits < kth_largest(logits, k))
        return np.where(drop, NEG_INF, logits)


class EtaCutoff(LogitsProcessor):
    """Keep p_i >= eta = min(epsilon, sqrt(epsilon) * exp(-H)), H the entropy of p (Hewitt, Manning &
    Liang 2022, "Truncation Sampling as Language Model Desmoothing"): flat distributions cut less.

    Matches transformers.EtaLogitsWarper (epsilon is its `eta_cutoff`), with the same
    min_tokens_to_keep rule as EpsilonCutoff; the threshold is computed in float32.
    """

    name = "eta_cutoff"
    options = (ETA_CUTOFF, MIN_TOKENS_TO_KEEP)

    @classmethod
    def from_options(cls, o, setting):
        return cls(o["eta_cutoff"], o["min_tokens_to_keep"]) if o["eta_cutoff"] != 0.0 else None

    def __init__(self, epsilon, min_tokens_to_keep=1):
        self.epsilon = ETA_CUTOFF.check(epsilon, default_ok=False)
        self.min_tokens_to_keep = MIN_TOKENS_TO_KEEP.check(min_tokens_to_keep)

    def params(self):
        return {"epsilon": self.epsilon, "min_tokens_to_keep": self.min_tokens_to_keep}

    def __call__(self, logits, ids):
        eps = np.float32(self.epsilon)
        eta = np.minimum(eps, np.sqrt(eps) * np.exp(-entropy(log_softmax(logits))))  # [B, 1]
        k = min(self.min_tokens_to_keep, logits.shape[-1])
        drop = (softmax(logits) < eta) & (logits < kth_largest(logits, k))
        return np.where(drop, NEG_INF, logits)


WARPERS = (Temperature, TopK, TopP, MinP, TypicalP, EpsilonCutoff, EtaCutoff)  # transformers' order
