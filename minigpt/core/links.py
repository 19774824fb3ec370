"""The classic links: the repetition penalty, then temperature and the three cut-offs everyone samples with.

    repetition_penalty   x_j / p (x_j * p if negative) for every token already seen   every strategy
                         (penalty_last_n: only the last N tokens, prompt included, as llama.cpp)
    temperature          x / T                                                         sampling only
    top_k                keep the k largest logits
    top_p                keep the smallest most probable set holding mass p (nucleus)
    min_p                keep p_i >= min_p * max p

Each keeps the contract of link.py and reproduces the transformers class it names (ties,
`min_tokens_to_keep`, which token is kept at a cut-off); tests/links/test_processors.py checks that they
agree. The rest of transformers' and llama.cpp's links are in the links/ ring; links/chain.py orders them.

Differences from transformers:
- at a cut-off, tied tokens go by id (top_p drops the lower first, min_p keeps it); torch may order them otherwise.
- repetition_penalty skips each row's left padding, as 5.x does; 4.46 penalised the pad id too.
"""

from dataclasses import dataclass

import numpy as np

from .link import NEG_INF, Link, Option, Trait, reads
from .numerics import cumulative_sum, kth_largest, softmax

# Model logits are at most about 1e4 in size: within these ranges x / T and x * penalty stay finite in float32.
TEMPERATURE_RANGE = (1e-20, 1e20)
PENALTY_RANGE = (1e-3, 1e3)


def scatter_back(values_sorted, order):
    """Undo a sort: the inverse of np.take_along_axis(values, order, -1)."""
    out = np.empty_like(values_sorted)
    np.put_along_axis(out, order, values_sorted, axis=-1)
    return out


def seen_columns(ids, vocab_size):
    """[B, t] token ids -> [B, V] bool, True where a token occurs in its row; ids >= V are ignored."""
    mask = np.zeros((ids.shape[0], vocab_size + 1), dtype=bool)  # column V soaks up out-of-vocabulary ids
    np.put_along_axis(mask, np.minimum(ids, vocab_size), True, axis=-1)
    return mask[:, :vocab_size]


SAMPLES = Trait.SAMPLES
REPETITION_PENALTY = Option("repetition_penalty", 1.0, "divide the logit of every token already in the text by X "
                            "(multiply, if negative): above 1 discourages repeats", "penalties", low=PENALTY_RANGE[0],
                            high=PENALTY_RANGE[1], note="(1 is no penalty)", metavar="X")
TEMPERATURE = Option("temperature", 1.0, "divide the logits by T: below 1 sharpens the distribution, above 1 "
                     "flattens it", "warpers", SAMPLES, low=TEMPERATURE_RANGE[0], high=TEMPERATURE_RANGE[1],
                     note="(for T = 0, use the greedy strategy)", metavar="T")
TOP_K = Option("top_k", None, "keep the K most probable tokens (sample: 0 = off, the default; contrastive: the "
               "candidates compared, default 4)", "warpers", SAMPLES, kind=int, low=0, metavar="K")
TOP_P = Option("top_p", 1.0, "nucleus: keep the fewest most probable tokens whose probability adds up to P",
               "warpers", SAMPLES, low=0, high=1, ends="(]", metavar="P")
MIN_P = Option("min_p", 0.0, "keep tokens at least P times as probable as the most probable one", "warpers",
               SAMPLES, low=0, high=1, metavar="P")
PENALTY_LAST_N = Option("penalty_last_n", None, "llama.cpp's window: the repetition, frequency and presence penalties "
                        "count the last N tokens, prompt included (-1: all)", "penalties", kind=int, low=-1,
                        metavar="N")
MIN_TOKENS_TO_KEEP = Option("min_tokens_to_keep", 1, "the fewest tokens any cut-off may leave", "warpers", SAMPLES,
                            kind=int, low=1, metavar="N")


@dataclass(repr=False)
class RepetitionPenalty(Link):
    """For every token already in ids (once, however often it occurs): x_i * penalty if x_i < 0, else
    x_i / penalty; above 1 discourages repeats. The "penalized sampling" of Keskar et al. 2019, "CTRL: A
    Conditional Transformer Language Model"; transformers.RepetitionPenaltyLogitsProcessor, prompt included.
    prompt_ignore_length (an int, or one per row) skips that many leading ids: each row's left padding; last_n
    (llama.cpp's penalty_last_n; None or -1: all) counts only the last last_n ids."""
    name = "repetition_penalty"
    penalty: float = reads(REPETITION_PENALTY)
    last_n: int | None = reads(PENALTY_LAST_N, default=None, kw_only=True)
    prompt_ignore_length: object = None

    def __post_init__(self):
        super().__post_init__()
        skip = np.asarray(0 if self.prompt_ignore_length is None else self.prompt_ignore_length)
        if skip.ndim > 1 or not np.issubdtype(skip.dtype, np.integer) or (skip < 0).any():
            raise ValueError(f"prompt_ignore_length must be integers >= 0, got {self.prompt_ignore_length!r}.")

    def __call__(self, logits, ids):
        vocab, t = logits.shape[-1], ids.shape[1]
        skip = np.asarray(0 if self.prompt_ignore_length is None else self.prompt_ignore_length).reshape(-1, 1)
        if self.last_n not in (None, -1):  # [B or 1, 1] the window starts at the last last_n ids
            skip = np.maximum(skip, t - self.last_n)
        ids = np.where(np.arange(t) < skip, vocab, ids)  # skipped ids fall outside the vocabulary
        penalised = np.where(logits < 0, logits * np.float32(self.penalty), logits / np.float32(self.penalty))
        return np.where(seen_columns(ids, vocab), penalised, logits)


@dataclass(repr=False)
class Temperature(Link):
    """x_i / T: T < 1 sharpens the distribution, T > 1 flattens it (Ackley, Hinton & Sejnowski 1985);
    transformers.TemperatureLogitsWarper. T -> 0 is greedy decoding, so T is held in TEMPERATURE_RANGE."""
    name = "temperature"
    t: float = reads(TEMPERATURE)

    def __call__(self, logits, ids):
        return logits / np.float32(self.t)  # [B, V]


@dataclass(repr=False)
class Cutoff(Link):
    """A link that cuts the distribution short: whatever its rule, it keeps at least min_tokens_to_keep tokens,
    as every cut-off of transformers does."""
    min_tokens_to_keep: int = reads(MIN_TOKENS_TO_KEEP, default=1, kw_only=True)


@dataclass(repr=False)
class TopK(Cutoff):
    """Keep x_i iff x_i >= the k-th largest logit (Fan, Lewis & Dauphin 2018, "Hierarchical Neural Story
    Generation"); tokens tied with it all stay. transformers.TopKLogitsWarper: k is raised to
    min_tokens_to_keep and capped at V; k = 0 keeps everything."""
    name = "top_k"
    k: int = reads(TOP_K)

    @classmethod
    def acts(cls, values, setting):
        return bool(values[TOP_K.name])  # None and 0 are both off

    def __call__(self, logits, ids):
        if self.k == 0:
            return logits.copy()
        k = min(max(self.k, self.min_tokens_to_keep), logits.shape[-1])
        return np.where(logits < kth_largest(logits, k), NEG_INF, logits)  # [B, V]


@dataclass(repr=False)
class TopP(Cutoff):
    """Nucleus sampling (Holtzman et al. 2020, "The Curious Case of Neural Text Degeneration"): keep the
    smallest set of most probable tokens whose probability mass reaches p. As transformers.TopPLogitsWarper,
    from the least probable end: sort ascending, c_j = p_(1) + ... + p_(j), drop token j iff c_j <= 1 - p,
    then keep the min_tokens_to_keep most probable whatever their mass (a stable sort: of two tied tokens at
    the cut, the lower id is dropped first)."""
    name = "top_p"
    p: float = reads(TOP_P)

    def __call__(self, logits, ids):
        order = np.argsort(logits, axis=-1, kind="stable")  # [B, V] least probable first
        cum = cumulative_sum(softmax(np.take_along_axis(logits, order, axis=-1)))  # [B, V]
        drop = cum <= np.float32(1 - self.p)
        drop[:, max(logits.shape[-1] - self.min_tokens_to_keep, 0) :] = False
        return np.where(scatter_back(drop, order), NEG_INF, logits)


@dataclass(repr=False)
class MinP(Cutoff):
    """Keep p_i >= min_p * max_j p_j (Nguyen et al. 2024, "Turning Up the Heat: Min-p Sampling for Creative
    and Coherent LLM Outputs"): the bar rises with the model's confidence. transformers.MinPLogitsWarper: the
    min_tokens_to_keep most probable stay too (the lower ids, if that count splits tied tokens)."""
    name = "min_p"
    p: float = reads(MIN_P)

    def __call__(self, logits, ids):
        probs = softmax(logits)  # [B, V]
        drop = probs < np.float32(self.p) * probs.max(axis=-1, keepdims=True)
        most_probable = np.argsort(-probs, axis=-1, kind="stable")[:, : self.min_tokens_to_keep]
        np.put_along_axis(drop, most_probable, False, axis=-1)
        return np.where(drop, NEG_INF, logits)
