"""Logit processors: small steps that reshape next-token scores before a token is picked.

Each processor is a small class. Its parameters are checked when it is built; calling it maps
(logits [B, V] float32, ids [B, t] int64) to a NEW float32 [B, V] array, never touching its input.
A token that a processor rules out gets the logit -inf, i.e. probability 0 after a softmax. A row
left with no finite logit (every token ruled out) stays all -inf through every processor, without NaN:
the strategies, not the processors, refuse to choose from it (decoding.check_choosable).
`ids` is every token so far: the (left-padded) prompt followed by the tokens generated since.

The numbers are those of Hugging Face transformers' `generation/logits_process.py`: each class
names the transformers class whose semantics it reproduces (ties, `min_tokens_to_keep`, which
token is kept at a cut-off), and tests/test_processors.py checks that they agree.

`build_chain` lists the processors in the order of transformers' `GenerationMixin._get_logits_processor`
(`generation/utils.py`, the same in 4.46 and 5.24): first the processors that run for every strategy
(sequence bias, repetition penalty, n-gram ban, bad words, min new tokens, suppressed tokens), then,
only when sampling, the "warpers" temperature, top-k, top-p, min-p, typical-p, epsilon, eta.
transformers has no frequency/presence penalty; ours sits next to its cousin, the repetition penalty.
`LogitsChain.describe()` prints that order, as llama.cpp's sampler chain does. llama.cpp's own processors
(top-nσ, XTC, DRY, dynamic temperature) live in llama_samplers.py and join the chain here; the user may
reorder the warpers (`order`).

What this module is not: it does not turn logits into a token (no softmax draw, no argmax, no beams).
"""

import math
from numbers import Integral, Real

import numpy as np

NEG_INF = np.float32(-np.inf)

# The largest scale factors and biases accepted. Model logits are at most about 1e4 in size, so even the
# extremes combined (a bias of 1e9, divided by a penalty of 1e-3 and a temperature of 1e-20, summed over a
# beam's steps) stay far inside float32's range (3.4e38): no processor ever overflows to inf or NaN.
MAX_BIAS = 1e9
PENALTY_RANGE = (1e-3, 1e3)
TEMPERATURE_RANGE = (1e-20, 1e20)

# Shapes: B batch rows, V vocabulary size, t tokens so far (prompt + generated), n n-gram size.


# ----------------------------------------------------------------------------- numerics


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


def entropy(logp):
    """H = -sum_i p_i log p_i over the last axis, with 0 log 0 = 0 (the -inf * 0 NaNs are skipped). -> [B, 1]"""
    with np.errstate(invalid="ignore"):
        return -np.nansum(np.exp(logp) * logp, axis=-1, keepdims=True)


def cumulative_sum(p):
    """Running sum over the last axis, accumulated in float64 and rounded to float32, as torch does on CPU."""
    return np.cumsum(p, axis=-1, dtype=np.float64).astype(np.float32)


def kth_largest(x, k):
    """The k-th largest value of each row (ties counted separately). [B, V] -> [B, 1]"""
    v = x.shape[-1]
    return np.partition(x, v - k, axis=-1)[:, v - k : v - k + 1]


def scatter_back(values_sorted, order):
    """Undo a sort: the inverse of np.take_along_axis(values, order, -1)."""
    out = np.empty_like(values_sorted)
    np.put_along_axis(out, order, values_sorted, axis=-1)
    return out


def mask_columns(ids, vocab_size):
    """[B, t] token ids -> [B, V] bool, True where a token occurs in its row; ids >= V are ignored."""
    mask = np.zeros((ids.shape[0], vocab_size + 1), dtype=bool)  # column V soaks up out-of-vocabulary ids
    np.put_along_axis(mask, np.minimum(ids, vocab_size), True, axis=-1)
    return mask[:, :vocab_size]


# ----------------------------------------------------------------------------- validation


def number(x: float) -> str:
    """1e+09 -> 1e9, 0.001 -> 0.001: a range bound as a person writes it."""
    return f"{x:g}".replace("e+0", "e").replace("e-0", "e-").replace("e+", "e")


def check_real(parameter, value, ok, valid):
    """A real number for which ok(value) holds, as a Python float; otherwise ValueError naming the range."""
    if not isinstance(value, Real) or isinstance(value, bool) or math.isnan(value) or not ok(value):
        raise ValueError(f"{parameter} must be {valid}, got {value!r}.")
    return float(value)


def check_int(parameter, value, minimum):
    """An integer >= minimum, as a Python int; otherwise ValueError."""
    if not isinstance(value, Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{parameter} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def check_token_ids(parameter, token_ids, vocab_size):
    """Raise ValueError naming the ids outside [0, vocab_size)."""
    outside = sorted({int(i) for i in token_ids if not 0 <= i < vocab_size})
    if outside:
        raise ValueError(f"{parameter} has token ids outside [0, {vocab_size}): {outside}.")


def check_tokens(parameter, token_ids):
    """A list of non-negative integer token ids."""
    if isinstance(token_ids, (str, bytes, dict)) or not hasattr(token_ids, "__iter__"):
        raise ValueError(f"{parameter} must be a list of integer token ids, got {token_ids!r}.")
    token_ids = list(token_ids)
    if not all(isinstance(i, Integral) and not isinstance(i, bool) and i >= 0 for i in token_ids):
        raise ValueError(f"{parameter} must hold integer token ids >= 0, got {token_ids!r}.")
    return [int(i) for i in token_ids]


# ----------------------------------------------------------------------------- processors


class LogitsProcessor:
    """Base: `name`, and a repr `name(param=value, ...)` built from `params()`."""

    name = "processor"

    def params(self):
        return {}

    def __repr__(self):
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in self.params().items())})"


class Temperature(LogitsProcessor):
    """x_i / T: T < 1 sharpens the distribution, T > 1 flattens it (Ackley, Hinton & Sejnowski 1985).

    Matches transformers.TemperatureLogitsWarper. T must be > 0 (greedy decoding is T -> 0); it is held
    within TEMPERATURE_RANGE, where 1e-20 already is greedy and 1e20 uniform, so x / T stays finite.
    """

    name = "temperature"

    def __init__(self, t):
        low, high = TEMPERATURE_RANGE
        self.t = check_real("temperature", t, lambda v: low <= v <= high,
                            f"a number in [{number(low)}, {number(high)}] (for T = 0, use the greedy strategy)")

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

    def __init__(self, k, min_tokens_to_keep=1):
        self.k = check_int("top_k", k, 0)
        self.min_tokens_to_keep = check_int("min_tokens_to_keep", min_tokens_to_keep, 1)

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
    lower-indexed of two tied tokens goes first; torch also does this up to V = 16 and leaves larger
    ties in an unspecified order.
    """

    name = "top_p"

    def __init__(self, p, min_tokens_to_keep=1):
        self.p = check_real("top_p", p, lambda v: 0 < v <= 1, "in (0, 1]")
        self.min_tokens_to_keep = check_int("min_tokens_to_keep", min_tokens_to_keep, 1)

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
    If that count splits tied tokens, we keep the lower indices; torch.topk picks among ties arbitrarily.
    """

    name = "min_p"

    def __init__(self, p, min_tokens_to_keep=1):
        self.p = check_real("min_p", p, lambda v: 0 <= v <= 1, "in [0, 1]")
        self.min_tokens_to_keep = check_int("min_tokens_to_keep", min_tokens_to_keep, 1)

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

    def __init__(self, p, min_tokens_to_keep=1):
        self.p = check_real("typical_p", p, lambda v: 0 < v < 1, "in (0, 1) (1 disables it)")
        self.min_tokens_to_keep = check_int("min_tokens_to_keep", min_tokens_to_keep, 1)

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

    def __init__(self, epsilon, min_tokens_to_keep=1):
        self.epsilon = check_real("epsilon_cutoff", epsilon, lambda v: 0 < v < 1, "in (0, 1) (0 disables it)")
        self.min_tokens_to_keep = check_int("min_tokens_to_keep", min_tokens_to_keep, 1)

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

    def __init__(self, epsilon, min_tokens_to_keep=1):
        self.epsilon = check_real("eta_cutoff", epsilon, lambda v: 0 < v < 1, "in (0, 1) (0 disables it)")
        self.min_tokens_to_keep = check_int("min_tokens_to_keep", min_tokens_to_keep, 1)

    def params(self):
        return {"epsilon": self.epsilon, "min_tokens_to_keep": self.min_tokens_to_keep}

    def __call__(self, logits, ids):
        eps = np.float32(self.epsilon)
        eta = np.minimum(eps, np.sqrt(eps) * np.exp(-entropy(log_softmax(logits))))  # [B, 1]
        k = min(self.min_tokens_to_keep, logits.shape[-1])
        drop = (softmax(logits) < eta) & (logits < kth_largest(logits, k))
        return np.where(drop, NEG_INF, logits)


class RepetitionPenalty(LogitsProcessor):
    """For every token already in ids (once, however often it occurs): x_i * penalty if x_i < 0,
    else x_i / penalty. penalty > 1 discourages repeats. The "penalized sampling" of Keskar et al. 2019,
    "CTRL: A Conditional Transformer Language Model".

    Matches transformers.RepetitionPenaltyLogitsProcessor, prompt included. prompt_ignore_length
    (an int, or one int per row) skips that many leading ids: transformers 5.x's generate passes the
    left-padding length of each row here so that pad tokens are not penalised; 4.46 penalised them.
    """

    name = "repetition_penalty"

    def __init__(self, penalty, prompt_ignore_length=None):
        low, high = PENALTY_RANGE
        self.penalty = check_real("repetition_penalty", penalty, lambda v: low <= v <= high,
                                  f"a number in [{number(low)}, {number(high)}] (1 is no penalty)")
        if prompt_ignore_length is not None:
            skip = np.asarray(prompt_ignore_length)
            if skip.ndim > 1 or not np.issubdtype(skip.dtype, np.integer) or (skip < 0).any():
                raise ValueError(f"prompt_ignore_length must be integers >= 0, got {prompt_ignore_length!r}.")
        self.prompt_ignore_length = prompt_ignore_length

    def params(self):
        return {"penalty": self.penalty}  # the padding it skips is bookkeeping, not a setting

    def __call__(self, logits, ids):
        vocab = logits.shape[-1]
        if self.prompt_ignore_length is not None:
            skip = np.asarray(self.prompt_ignore_length).reshape(-1, 1)  # [B or 1, 1]
            ids = np.where(np.arange(ids.shape[1]) < skip, vocab, ids)  # skipped ids fall outside the vocabulary
        penalised = np.where(logits < 0, logits * np.float32(self.penalty), logits / np.float32(self.penalty))
        return np.where(mask_columns(ids, vocab), penalised, logits)


class FrequencyPresencePenalty(LogitsProcessor):
    """x_j - frequency * c_j - presence * [c_j > 0], c_j = how often token j was GENERATED so far.

    The additive rule of OpenAI's API ("frequency_penalty", "presence_penalty", each in [-2, 2]), also
    used by vLLM and llama.cpp. Like OpenAI and vLLM we count only the generated tokens,
    ids[:, prompt_length:], not the prompt (llama.cpp counts its last `penalty_last_n` tokens instead).
    transformers has no counterpart. -inf stays -inf.
    """

    name = "frequency_presence_penalty"

    def __init__(self, frequency=0.0, presence=0.0, prompt_length=0):
        self.frequency = check_real("frequency_penalty", frequency, lambda v: -2 <= v <= 2, "in [-2, 2]")
        self.presence = check_real("presence_penalty", presence, lambda v: -2 <= v <= 2, "in [-2, 2]")
        self.prompt_length = check_int("prompt_length", prompt_length, 0)

    def params(self):
        return {"frequency": self.frequency, "presence": self.presence, "prompt_length": self.prompt_length}

    def __call__(self, logits, ids):
        generated = ids[:, self.prompt_length :]  # [B, t - prompt_length]
        counts = np.zeros(logits.shape, dtype=np.float32)  # [B, V]
        rows = np.broadcast_to(np.arange(ids.shape[0])[:, None], generated.shape)
        np.add.at(counts, (rows, generated), 1)
        return logits - (np.float32(self.frequency) * counts + np.float32(self.presence) * (counts > 0))


class NoRepeatNGram(LogitsProcessor):
    """Ban every token that would complete an n-gram already present in ids (Paulus, Xiong & Socher
    2018, "A Deep Reinforced Model for Abstractive Summarization"; fairseq's no_repeat_ngram_size).

    Matches transformers.NoRepeatNGramLogitsProcessor, prompt included: each window ids[s : s+n] whose
    first n-1 tokens equal the last n-1 tokens of ids bans its last token. n = 1 bans every seen token.
    """

    name = "no_repeat_ngram"

    def __init__(self, n):
        self.n = check_int("no_repeat_ngram_size", n, 1)

    def params(self):
        return {"n": self.n}

    def __call__(self, logits, ids):
        t, n = ids.shape[1], self.n
        if t < n:
            return logits.copy()
        windows = np.lib.stride_tricks.sliding_window_view(ids, n, axis=1)  # [B, t-n+1, n]
        suffix = ids[:, t - n + 1 :]  # [B, n-1] the n-gram the next token would complete
        completes = (windows[:, :, :-1] == suffix[:, None, :]).all(axis=-1)  # [B, t-n+1]
        banned = np.where(completes, windows[:, :, -1], logits.shape[-1])  # non-matching -> out of vocabulary
        return np.where(mask_columns(banned, logits.shape[-1]), NEG_INF, logits)


class BadWords(LogitsProcessor):
    """Ban the last token of each banned sequence whose other tokens are the last tokens of ids; a
    one-token sequence is banned always.

    Matches transformers.NoBadWordsLogitsProcessor (a SequenceBiasLogitsProcessor with bias -inf). As
    in transformers' generate, passing eos_token_id drops the one-token sequence [eos] from the list,
    so a bad word can never forbid ending; a prefix longer than ids never matches.
    """

    name = "bad_words"

    def __init__(self, sequences, eos_token_id=None):
        if not isinstance(sequences, (list, tuple)) or not all(isinstance(seq, (list, tuple)) and seq for seq in sequences):
            raise ValueError(f"bad_words_ids must be a list of non-empty token-id lists, got {sequences!r}.")
        sequences = [check_tokens("bad_words_ids", seq) for seq in sequences]
        self.sequences = [seq for seq in sequences if seq != [eos_token_id]]
        self.eos_token_id = eos_token_id

    def params(self):
        return {"sequences": self.sequences}

    def check_vocabulary(self, vocab_size):
        check_token_ids("bad_words_ids", [i for seq in self.sequences for i in seq], vocab_size)

    def __call__(self, logits, ids):
        self.check_vocabulary(logits.shape[-1])
        t = ids.shape[1]
        banned = np.zeros(logits.shape, dtype=bool)  # [B, V]
        for *prefix, last in self.sequences:
            if len(prefix) <= t:
                banned[:, last] |= (ids[:, t - len(prefix) :] == prefix).all(axis=-1)  # [B]
        return np.where(banned, NEG_INF, logits)


class LogitBias(LogitsProcessor):
    """x_j + bias[j] for each token j in the map, the OpenAI API's `logit_bias`.

    Matches transformers.SequenceBiasLogitsProcessor given one-token sequences [[j], bias]; the bias is
    rounded to float32 before it is added. A bias of -inf bans the token; NaN and +inf are refused, and
    so are finite biases beyond MAX_BIAS (already far more than any logit).
    """

    name = "logit_bias"

    def __init__(self, bias):
        try:
            bias = dict(bias)  # {token: bias}, or [(token, bias), ...]
        except (TypeError, ValueError):
            raise ValueError(f"logit_bias must map token ids to biases, such as {{50256: -100.0}}; got {bias!r}.") from None
        tokens = check_tokens("logit_bias", bias.keys())
        values = [check_real(f"logit_bias for token {token}", b, lambda v: v == -math.inf or abs(v) <= MAX_BIAS,
                             f"a number in [-{number(MAX_BIAS)}, {number(MAX_BIAS)}], or -inf to ban the token")
                  for token, b in zip(tokens, bias.values())]
        self.bias = dict(zip(tokens, values))

    def params(self):
        return {"bias": self.bias}

    def check_vocabulary(self, vocab_size):
        check_token_ids("logit_bias", self.bias, vocab_size)

    def __call__(self, logits, ids):
        self.check_vocabulary(logits.shape[-1])
        bias = np.zeros(logits.shape[-1], dtype=np.float32)  # [V]
        bias[list(self.bias)] = list(self.bias.values())
        return logits + bias  # [B, V]


class MinNewTokens(LogitsProcessor):
    """eos gets -inf while fewer than min_new_tokens tokens have been generated, where
    generated = ids.shape[1] - prompt_length (prompt_length counts the left padding).

    Matches transformers.MinNewTokensLengthLogitsProcessor (its prompt_length_to_skip is prompt_length).
    """

    name = "min_new_tokens"

    def __init__(self, eos_token_id, prompt_length, min_new_tokens):
        self.eos_token_id = check_int("eos_token_id", eos_token_id, 0)
        self.prompt_length = check_int("prompt_length", prompt_length, 0)
        self.min_new_tokens = check_int("min_new_tokens", min_new_tokens, 0)

    def params(self):
        return {"min_new_tokens": self.min_new_tokens, "eos_token_id": self.eos_token_id,
                "prompt_length": self.prompt_length}

    def __call__(self, logits, ids):
        out = logits.copy()
        if ids.shape[1] - self.prompt_length < self.min_new_tokens and self.eos_token_id < logits.shape[-1]:
            out[:, self.eos_token_id] = NEG_INF
        return out


class SuppressTokens(LogitsProcessor):
    """x_j = -inf for every listed token j, at every step (Whisper's suppress_tokens).

    Matches transformers.SuppressTokensLogitsProcessor.
    """

    name = "suppress_tokens"

    def __init__(self, token_ids):
        self.token_ids = check_tokens("suppress_tokens", token_ids)

    def params(self):
        return {"token_ids": self.token_ids}

    def check_vocabulary(self, vocab_size):
        check_token_ids("suppress_tokens", self.token_ids, vocab_size)

    def __call__(self, logits, ids):
        self.check_vocabulary(logits.shape[-1])
        out = logits.copy()
        out[:, self.token_ids] = NEG_INF
        return out


PROCESSORS = {cls.name: cls for cls in (
    Temperature, TopK, TopP, MinP, TypicalP, EpsilonCutoff, EtaCutoff, RepetitionPenalty,
    FrequencyPresencePenalty, NoRepeatNGram, BadWords, LogitBias, MinNewTokens, SuppressTokens,
)}


# ----------------------------------------------------------------------------- the chain


class LogitsChain:
    """Processors applied one after the other: logits -> p_1 -> p_2 -> ... ; describe() lists them."""

    def __init__(self, processors):
        self.processors = list(processors)

    def __call__(self, logits, ids):
        logits = np.array(logits, dtype=np.float32)  # a copy: the caller's array is never modified
        ids = np.asarray(ids, dtype=np.int64).reshape(logits.shape[0], -1)  # [B, t]
        for processor in self.processors:
            logits = processor(logits, ids)
        return logits

    def describe(self):
        return [repr(p) for p in self.processors]

    def state(self, row: int) -> dict:
        """What the processors decided for one row at their last call (XTC, dynamic temperature), by name."""
        return {name: values[row].item() for p in self.processors for name, values in getattr(p, "state", {}).items()}

    def masked_by(self, logits, ids, rows) -> list[str]:
        """The names of the processors that set some logit of the given rows to -inf: what to loosen when
        they leave no token at all. Runs the chain again, one processor at a time (only on that error)."""
        logits = np.array(logits, dtype=np.float32)
        ids = np.asarray(ids, dtype=np.int64).reshape(logits.shape[0], -1)
        names = []
        for processor in self.processors:
            out = processor(logits, ids)
            if (np.isneginf(out[rows]) & ~np.isneginf(logits[rows])).any() and processor.name not in names:
                names.append(processor.name)
            logits = out
        return names

    def __len__(self):
        return len(self.processors)

    def __repr__(self):
        return f"LogitsChain({' -> '.join(self.describe()) or 'identity'})"


def build_chain(*, sampling, prompt_length, eos_token_id, vocab_size, temperature=1.0, top_k=0, top_p=1.0,
                min_p=0.0, typical_p=1.0, epsilon_cutoff=0.0, eta_cutoff=0.0, repetition_penalty=1.0,
                frequency_penalty=0.0, presence_penalty=0.0, no_repeat_ngram_size=0, bad_words_ids=None,
                logit_bias=None, min_new_tokens=0, suppress_tokens=None, min_tokens_to_keep=1,
                pad_lengths=None, top_n_sigma=0.0, xtc_probability=0.0, xtc_threshold=0.1, dynatemp_range=0.0,
                dynatemp_exponent=1.0, dry_multiplier=0.0, dry_base=1.75, dry_allowed_length=2, dry_penalty_last_n=-1,
                dry_sequence_breakers=(), tokenizer=None, order=(), rng=None):
    """The processors whose options are not neutral, in transformers' order (see the module docstring).

    llama.cpp's processors (llama_samplers.py) join them: DRY after the frequency/presence penalty, for
    every strategy; when sampling, dynamic temperature in temperature's place (dynatemp_range > 0), and
    top-nσ and XTC after the other warpers. XTC draws from `rng` (the run's seeded generator). The DRY
    sequence breakers are texts, turned into token sequences with `tokenizer` (without one, they are
    only checked, and DRY runs without breakers). `order` (names of warpers, as printed) moves the warpers named to the front of the
    warpers, in that order; the others follow in the default order. "temperature" also names
    dynamic_temperature.

    The sampling-only options (temperature ... eta_cutoff) are ignored when sampling is False, as in
    transformers. pad_lengths (one int per row, optional) is the number of left-padding tokens, which
    the repetition penalty then skips as transformers 5.x's generate does. That generate finds them as
    the argmax of the attention mask, which is 0 for a row that is all padding (an empty prompt): such
    a row's padding is penalised after all, and so it is here. vocab_size None skips the check that the
    token ids given (bans, biases) are in the vocabulary: the options are then only checked for range.
    """
    from .llama_samplers import DRY, XTC, DynamicTemperature, TopNSigma, check_breakers, sequence_breaker_tokens

    order = check_order(order)
    breakers = check_breakers(dry_sequence_breakers)
    dry_pads = None if pad_lengths is None else [int(pad) for pad in pad_lengths]
    if pad_lengths is not None:
        pad_lengths = [0 if pad == prompt_length else int(pad) for pad in pad_lengths]
    keep = {"min_tokens_to_keep": min_tokens_to_keep}
    chain = [  # each entry is a processor, or a falsy value where its option is neutral
        logit_bias and LogitBias(logit_bias),
        repetition_penalty != 1.0 and RepetitionPenalty(repetition_penalty, prompt_ignore_length=pad_lengths),
        (frequency_penalty != 0.0 or presence_penalty != 0.0)
        and FrequencyPresencePenalty(frequency_penalty, presence_penalty, prompt_length),
        dry_multiplier != 0.0 and DRY(dry_multiplier, dry_base, dry_allowed_length, dry_penalty_last_n,
                                      sequence_breaker_tokens(tokenizer, breakers, vocab_size) if tokenizer else (),
                                      prompt_ignore_length=dry_pads, breaker_texts=breakers if tokenizer else ()),
        no_repeat_ngram_size != 0 and NoRepeatNGram(no_repeat_ngram_size),
        bad_words_ids and BadWords(bad_words_ids, eos_token_id=eos_token_id),
        min_new_tokens != 0 and MinNewTokens(eos_token_id, prompt_length, min_new_tokens),
        suppress_tokens and SuppressTokens(suppress_tokens),
    ]
    if sampling:
        warpers = {  # in the default order
            "temperature": DynamicTemperature(temperature, dynatemp_range, dynatemp_exponent) if dynatemp_range != 0.0
            else temperature != 1.0 and Temperature(temperature),
            "top_k": top_k != 0 and TopK(top_k, **keep),
            "top_p": top_p != 1.0 and TopP(top_p, **keep),
            "min_p": min_p != 0.0 and MinP(min_p, **keep),
            "typical_p": typical_p != 1.0 and TypicalP(typical_p, **keep),
            "epsilon_cutoff": epsilon_cutoff != 0.0 and EpsilonCutoff(epsilon_cutoff, **keep),
            "eta_cutoff": eta_cutoff != 0.0 and EtaCutoff(eta_cutoff, **keep),
            "top_n_sigma": top_n_sigma != 0.0 and TopNSigma(top_n_sigma),
            "xtc": xtc_probability != 0.0 and XTC(xtc_probability, xtc_threshold, min_tokens_to_keep, rng),
        }
        chain += [warpers[name] for name in [*order, *(name for name in warpers if name not in order)]]
    chain = LogitsChain(p for p in chain if p)
    for p in chain.processors:  # name the token ids outside the vocabulary now, not at the first step
        if vocab_size is not None and hasattr(p, "check_vocabulary"):
            p.check_vocabulary(vocab_size)
    return chain


# The warpers --sampler-order can arrange, by the names the chain prints (the slot of temperature takes
# dynamic temperature when dynatemp_range > 0).
ORDERABLE = ("temperature", "top_k", "top_p", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff", "top_n_sigma", "xtc")


def check_order(order) -> tuple[str, ...]:
    """A sampler order: warper names from ORDERABLE, each at most once ("dynamic_temperature" means
    "temperature"); otherwise ValueError naming the offending name."""
    if isinstance(order, str) or not all(isinstance(name, str) for name in order):
        raise ValueError(f"sampler_order must be a list of warper names such as ['top_k', 'temperature'], got {order!r}.")
    names = ["temperature" if name == "dynamic_temperature" else name for name in order]
    for name in names:
        if name not in ORDERABLE:
            raise ValueError(f"sampler_order names {name!r}, which is not a warper that can be reordered; "
                             f"use names from: {', '.join(ORDERABLE)}.")
        if names.count(name) > 1:
            raise ValueError(f"sampler_order names {name!r} twice; name each warper at most once.")
    return tuple(names)
