"""Logit processors from llama.cpp's sampler chain that transformers does not have: top-nσ, XTC,
DRY and dynamic (entropy-based) temperature.

Each is a LogitsProcessor with the contract of link.py: (logits [B, V] float32, ids [B, t])
-> a new float32 [B, V] array, a ruled-out token getting -inf. Where llama.cpp drops a candidate from
its list, we give it -inf; "the candidates" below are the tokens whose logit is still finite. The
numbers are those of llama.cpp's `src/llama-sampling.cpp` (samplers "top-n-sigma", "xtc", "dry",
"temp-ext"); tests/links/test_llama_samplers.py checks them against its definitions and against outputs
recorded from llama.cpp itself by scripts/make_llama_reference.py.

A processor that decides something per row (XTC: whether it fired; dynamic temperature: the
temperature it chose) keeps it in `state`, {name: [B] array} of its last call, for the trace.

What this module is not: mirostat, which picks the token itself and so is a way of choosing, not a
processor (mirostat.py); the order of the chain (chain.py).
"""

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ..core.link import NEG_INF, Link, Option, Trait, reads
from ..core.links import TEMPERATURE, TEMPERATURE_RANGE, Cutoff
from ..core.numerics import largest, softmax
from .values import as_texts

# llama.cpp's limits on a sequence breaker: its first 40 bytes count, and a breaker's continuation
# after its first token is at most 20 tokens long.
MAX_BREAKER_BYTES = 40
MAX_BREAKER_TAIL = 20
# ln of float32's largest value: DRY caps base ** exponent below it (llama.cpp's FLOAT_MAX_LOG).
FLOAT32_MAX_LOG = 88.7228391
MAX_DRY_PENALTY = 1e9  # penalties.MAX_BIAS: a larger penalty is a ban already, and would overflow
LLAMA_SAMPLERS, SAMPLES = "llama.cpp samplers", Trait.SAMPLES


def as_breakers(option: Option, value) -> tuple:
    """DRY's sequence breakers: a list of non-empty texts of at most 40 bytes each (llama.cpp's limit)."""
    return check_breakers(as_texts(option, value))


TOP_N_SIGMA = Option("top_n_sigma", 0.0, "keep tokens whose logit is within N standard deviations of the largest "
                     "(0 = off)", LLAMA_SAMPLERS, SAMPLES, low=0, note="(0 turns it off)", metavar="N")
XTC_PROBABILITY = Option("xtc_probability", 0.0, "XTC: with this probability, drop every token above the threshold "
                         "but the least likely", LLAMA_SAMPLERS, SAMPLES, low=0, high=1, note="(0 turns it off)",
                         metavar="P")
XTC_THRESHOLD = Option("xtc_threshold", 0.1, "XTC: the probability at which a token counts as a top choice",
                       LLAMA_SAMPLERS, SAMPLES, low=0, high=0.5, ends="(]",
                       note="(above 0.5 no two tokens can reach it)", metavar="P")
DYNATEMP_RANGE = Option("dynatemp_range", 0.0, "dynamic temperature: move T within [T - R, T + R] with the entropy "
                        "(0 = off)", LLAMA_SAMPLERS, SAMPLES, low=0, high=TEMPERATURE_RANGE[1],
                        note="(0 turns dynamic temperature off)", metavar="R")
DYNATEMP_EXPONENT = Option("dynatemp_exponent", 1.0, "dynamic temperature: the exponent of the entropy ratio",
                           LLAMA_SAMPLERS, SAMPLES, low=0, high=100, metavar="E")
DRY_MULTIPLIER = Option("dry_multiplier", 0.0, "DRY: penalise a token that extends a repeat by M * base^(length - "
                        "allowed) (0 = off)", LLAMA_SAMPLERS, low=0, high=1e3, note="(0 turns DRY off)",
                        metavar="M")
DRY_BASE = Option("dry_base", 1.75, "DRY: the base of the penalty's growth", LLAMA_SAMPLERS, low=1,
                  high=1e3, metavar="X")
DRY_ALLOWED_LENGTH = Option("dry_allowed_length", 2, "DRY: the longest repeat that goes unpenalised", LLAMA_SAMPLERS,
                            kind=int, low=1, metavar="N")
DRY_PENALTY_LAST_N = Option("dry_penalty_last_n", -1, "DRY: how many recent tokens to search for repeats (-1: all)",
                            LLAMA_SAMPLERS, kind=int, low=-1, metavar="N")
DRY_SEQUENCE_BREAKERS = Option("dry_sequence_breakers", ("\n", ":", "\"", "*"), "DRY: a text that repeats do not "
                               "cross (repeatable; default \\n : \" *; 'none' for none)", LLAMA_SAMPLERS,
                               kind=object,
                               valid=f"a list of non-empty texts of at most {MAX_BREAKER_BYTES} bytes "
                               "each, such as ['\\n', ':'] (an empty list for none)", normalise=as_breakers,
                               parse=str, metavar="TEXT", repeat=True, flag_name="--dry-sequence-breaker")


def finite_counts(logits):
    """How many candidates (finite logits) each row has. [B, V] -> [B, 1]"""
    return np.isfinite(logits).sum(axis=-1, keepdims=True)


@dataclass(repr=False)
class TopNSigma(Link):
    """Keep x_i >= max_j x_j - n * sigma, sigma the standard deviation of the finite logits of the row
    (Tang et al. 2024, "Top-nσ: Not All Logits Are You Need"). It works on logits, not probabilities,
    so the set it keeps does not change with the temperature.

    Matches llama.cpp's "top-n-sigma": mean and sigma (population, 1/N) over the finite logits only;
    n = 0 turns it off, and a row with one candidate is left alone.
    """
    name = "top_n_sigma"
    n: float = reads(TOP_N_SIGMA)

    def __call__(self, logits, ids):
        finite = np.isfinite(logits)  # [B, V]
        count = finite.sum(axis=-1, keepdims=True)  # [B, 1]
        n = np.maximum(count, 1).astype(np.float32)
        mean = np.where(finite, logits, np.float32(0)).sum(axis=-1, keepdims=True) / n  # [B, 1]
        sigma = np.sqrt((np.where(finite, logits - mean, np.float32(0)) ** 2).sum(axis=-1, keepdims=True) / n)  # [B, 1]
        bar = logits.max(axis=-1, keepdims=True) - np.float32(self.n) * sigma  # [B, 1]
        drop = (logits < bar) & (count > 1) & (self.n > 0)
        return np.where(drop, NEG_INF, logits)


@dataclass(repr=False)
class XTC(Cutoff):
    """Exclude Top Choices (XTC; p-e-w, text-generation-webui #6335, 2024): with probability
    `probability`, drop every token whose p_i >= threshold except the least probable of them, so that
    the most obvious continuations give way to a still plausible one. Useful for creative writing;
    it leaves the distribution alone when fewer than two tokens reach the threshold.

    Matches llama.cpp's "xtc": one uniform u ~ U[0, 1) per row and call (from the run's seeded rng,
    so a seed reproduces the text); it fires when u <= probability; then, with the candidates sorted
    by p descending, the first `pos` of those at or above the threshold are dropped, pos = (their
    count - 1), if at least min_tokens_to_keep candidates remain. Among tokens of equal p the one
    with the higher id counts as less probable. A threshold above 0.5 never has two tokens above it.
    """

    name = "xtc"
    probability: float = reads(XTC_PROBABILITY)
    threshold: float = reads(XTC_THRESHOLD, default=0.1)
    rng: np.random.Generator | None = None
    state: dict = field(default_factory=dict, init=False)

    def __post_init__(self):
        super().__post_init__()
        self.rng = self.rng if self.rng is not None else np.random.default_rng()

    def __call__(self, logits, ids):
        out = logits.copy()
        excluded = np.zeros(logits.shape[0], dtype=np.int64)  # [B] how many top tokens this call dropped
        count = finite_counts(logits)[:, 0]  # [B]
        for row in range(logits.shape[0]):
            if self.probability <= 0 or count[row] < 2:
                continue
            if self.rng.random() > self.probability:
                continue
            probs = softmax(logits[row : row + 1])[0]  # [V]
            drop = int((probs >= np.float32(self.threshold)).sum()) - 1  # all at or above it but the last
            if drop > 0 and count[row] - drop >= self.min_tokens_to_keep:
                out[row, largest(logits[row], drop)] = NEG_INF  # the most probable, ties by lower id
                excluded[row] = drop
        self.state = {"xtc_excluded": excluded}
        return out


@dataclass(repr=False)
class DynamicTemperature(Link):
    """Entropy-based temperature (llama.cpp's "temp-ext", from kalomaze's DynaTemp, 2023):
    x_i / T_dyn with T_dyn = T_min + (T_max - T_min) * (H / H_max) ** exponent,
    T_min = max(0, T - range), T_max = T + range, H the entropy of the candidates' distribution and
    H_max = log(number of candidates). A confident (low-entropy) step is sampled colder, an uncertain one
    hotter: one setting for both factual and open-ended spans.

    Matches llama.cpp's "temp-ext" with dynatemp_range > 0 (range 0 is the plain Temperature). A row with
    at most one candidate is left alone; T_dyn = 0 keeps only the most probable token (the first of equal
    maxima), as llama.cpp's temperature 0 does. llama.cpp counts as candidates every entry still in its
    list, including ones that top-nσ set to -inf; we count the finite logits.
    """

    name = "dynamic_temperature"
    t: float = reads(TEMPERATURE)
    range: float = reads(DYNATEMP_RANGE)
    exponent: float = reads(DYNATEMP_EXPONENT, default=1.0)
    state: dict = field(default_factory=dict, init=False)

    @classmethod
    def acts(cls, values, setting):
        return values[DYNATEMP_RANGE.name] != 0.0  # in temperature's place, when it has a range

    def temperatures(self, logits):
        """T_dyn of each row. [B, V] -> [B, 1] float32"""
        count = finite_counts(logits)  # [B, 1]
        probs = softmax(logits)  # [B, V]
        with np.errstate(divide="ignore", invalid="ignore"):
            h = -np.where(probs > 0, probs * np.log(probs), np.float32(0)).sum(axis=-1, keepdims=True)  # [B, 1]
            h_max = np.log(np.maximum(count, 2).astype(np.float32))
        t_min = np.float32(max(0.0, self.t - self.range))
        t_max = np.float32(self.t + self.range)
        t = (t_min + (t_max - t_min) * (h / h_max) ** np.float32(self.exponent)).astype(np.float32)
        return np.where(t < TEMPERATURE_RANGE[0], np.float32(0), t)  # below 1e-20: greedy, as T = 0

    def __call__(self, logits, ids):
        t = self.temperatures(logits)  # [B, 1]
        alone = finite_counts(logits) <= 1  # [B, 1]
        greedy = np.full_like(logits, NEG_INF)
        best = logits.argmax(axis=-1)[:, None]  # [B, 1]
        np.put_along_axis(greedy, best, np.take_along_axis(logits, best, axis=-1), axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled = np.where(t > 0, logits / np.where(t > 0, t, np.float32(1)), greedy)
        self.state = {"dynamic_temperature": np.where(alone, np.float32(1), t)[:, 0]}
        return np.where(alone, logits, scaled).astype(np.float32)


@dataclass(repr=False)
class DRY(Link):
    """Don't Repeat Yourself (p-e-w, text-generation-webui #5677, 2024): a token that would extend a
    sequence already present in the context gets x_i - multiplier * base ** (L - allowed_length), L the
    length of the longest such repeat, for L >= allowed_length. Repeats of any length are caught, not only
    n-grams of one size, and the penalty grows with each repeated token; use it against loops in long texts.

    Definition (llama.cpp's "dry", ported from koboldcpp): in the last penalty_last_n tokens c_0 .. c_{n-1}
    (-1: the whole context), for each j < n-1 let L_j be the number of tokens ending at c_j that equal the
    last tokens of the context (the longest common suffix of c_0..c_j and c_0..c_{n-1}), capped at
    `limit`; each j with L_j >= allowed_length penalises c_{j+1} by its largest L_j. `limit` is the
    distance from the end to the nearest sequence breaker: a repeat never reaches across a breaker. A
    breaker is a token sequence, head first; a token that is a breaker on its own is never penalised.
    The exponent is capped at ln(float32 max) / ln(base) as in llama.cpp, and the penalty at 1e9 (a ban in
    effect; llama.cpp lets a larger one become inf). prompt_ignore_length (one int per row) skips each
    row's left padding. llama.cpp finds L_j with the Z-algorithm; we count matching tokens directly.
    """

    name = "dry"
    multiplier: float = reads(DRY_MULTIPLIER)
    base: float = reads(DRY_BASE, default=1.75)
    allowed_length: int = reads(DRY_ALLOWED_LENGTH, default=2)
    penalty_last_n: int = reads(DRY_PENALTY_LAST_N, default=-1)
    sequence_breakers: tuple = reads(DRY_SEQUENCE_BREAKERS, default=())  # as texts; `tokenizer` finds their tokens
    breakers: list = field(default_factory=list)  # the breakers as token sequences, head first
    prompt_ignore_length: object = None
    tokenizer: object = None
    vocab_size: int | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.tokenizer is None:
            self.sequence_breakers = ()  # no tokenizer to find their tokens: DRY runs without them
        sequences = [*self.breakers, *sequence_breaker_tokens(self.tokenizer, self.sequence_breakers, self.vocab_size)]
        self.heads = {}  # head token -> the tails (token tuples) that complete a breaker after it
        for head, *tail in sequences:
            self.heads.setdefault(int(head), set()).add(tuple(int(i) for i in tail))
        self.max_exponent = int(FLOAT32_MAX_LOG / math.log(self.base)) if self.base > 1.000001 else None

    def params(self):
        return super().params() | {"sequence_breakers": list(self.sequence_breakers)}

    def context(self, row):
        """The last penalty_last_n tokens of a row [t] (-1: all of them)."""
        return row if self.penalty_last_n == -1 else row[len(row) - min(len(row), self.penalty_last_n) :]

    def repeat_limit(self, c):
        """How far back from the end a repeat may reach: up to the nearest complete breaker, else len(c)."""
        n = len(c)
        heads = np.flatnonzero(np.isin(c, list(self.heads)))[::-1]  # breaker heads, nearest the end first
        for start in heads:
            i = n - 1 - start  # tokens after the head
            matched = [len(tail) for tail in self.heads[int(c[start])] if len(tail) <= i
                       and tuple(c[start + 1 : start + 1 + len(tail)]) == tail]
            if matched:
                return i - max(matched)
        return n

    def repeat_lengths(self, c, limit):
        """L_j for j = 0 .. n-2: how many tokens ending at c_j equal the last tokens of c, at most limit. -> [n-1]"""
        n = len(c)
        length = np.zeros(n - 1, dtype=np.int64)
        alive = np.arange(n - 1)  # the j whose match is still growing
        for k in range(min(limit, n - 1)):  # compare c_{j-k} with c_{n-1-k}
            alive = alive[(alive - k >= 0)]
            alive = alive[c[alive - k] == c[n - 1 - k]]
            if alive.size == 0:
                break
            length[alive] += 1
        return length

    def penalties(self, c, vocab_size):
        """The penalty of each token for a context c [n] (already cut to penalty_last_n). -> [V] float32"""
        out = np.zeros(vocab_size, dtype=np.float32)
        n = len(c)
        if n <= self.allowed_length:
            return out
        limit = self.repeat_limit(c)
        if limit < self.allowed_length:
            return out
        length = self.repeat_lengths(c, limit)  # [n-1]
        longest = {}
        for j in np.flatnonzero(length >= self.allowed_length):
            token = int(c[j + 1])
            longest[token] = max(longest.get(token, 0), int(length[j]))
        for token, repeat in longest.items():
            if token >= vocab_size or () in self.heads.get(token, ()):
                continue
            exponent = repeat - self.allowed_length
            if self.max_exponent is not None:
                exponent = min(exponent, self.max_exponent)
            out[token] = min(self.multiplier * self.base**exponent, MAX_DRY_PENALTY)
        return out

    def __call__(self, logits, ids):
        if self.multiplier == 0 or self.penalty_last_n == 0:
            return logits.copy()
        skip = np.zeros(ids.shape[0], dtype=np.int64) if self.prompt_ignore_length is None else \
            np.broadcast_to(np.asarray(self.prompt_ignore_length), (ids.shape[0],))
        penalty = np.stack([self.penalties(self.context(row[s:]), logits.shape[-1]) for row, s in zip(ids, skip)])
        return logits - penalty  # [B, V]


def check_breakers(texts) -> tuple[str, ...]:
    """DRY's sequence breakers: a list of non-empty texts of at most 40 bytes each (llama.cpp's limit)."""
    if isinstance(texts, str) or not all(isinstance(t, str) and 0 < len(t.encode("utf-8")) <= MAX_BREAKER_BYTES
                                         for t in texts):
        raise DRY_SEQUENCE_BREAKERS.refusal(texts)
    return tuple(texts)


def sequence_breaker_tokens(tokenizer, texts, vocab_size=None) -> tuple[tuple[int, ...], ...]:
    """The token sequences (head first) that stand for the breaker texts, as llama.cpp derives them: every
    token whose bytes contain a breaker is a breaker on its own; a token whose bytes END with the start of
    a breaker is a head, followed by the tokens of the breaker's rest (at most 20 of them). Works on bytes
    (check_breakers refuses breakers longer than llama.cpp's 40 bytes)."""
    return breaker_tokens_cached(tokenizer, tuple(texts), vocab_size) if texts else ()


@lru_cache(maxsize=8)
def breaker_tokens_cached(tokenizer, texts, vocab_size):
    n = tokenizer.n_vocab if vocab_size is None else min(vocab_size, tokenizer.n_vocab)
    words = [tokenizer.token_bytes(i) for i in range(n)]
    found = []
    for text in texts:
        breaker = text.encode("utf-8")[:MAX_BREAKER_BYTES]
        for token, word in enumerate(words):
            if breaker in word:
                found.append((token,))
                continue
            pos = word.find(breaker[:1])
            while pos >= 0:
                piece = word[pos:]
                pos = word.find(breaker[:1], pos + 1)
                if breaker.startswith(piece):  # the token ends with the first len(piece) bytes of the breaker
                    rest = breaker[len(piece) :].decode("utf-8", errors="replace")
                    found.append((token, *tokenizer.encode(rest)[:MAX_BREAKER_TAIL]))
    return tuple(dict.fromkeys(found))  # without repeats, in the order found
