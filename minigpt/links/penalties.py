"""The penalties and bans: links that every strategy applies, greedy and beam search included.

    logit_bias            x_j + bias_j                       (the OpenAI API's logit_bias)
    sequence_bias         x_j + bias of each sequence that token j would complete
    frequency/presence    x_j - f * count_j - p * [count_j > 0], over the generated tokens
    no_repeat_ngram       ban a token that would repeat an n-gram
    bad_words             ban the last token of a banned sequence
    min_new_tokens        ban end-of-text until enough tokens were generated
    suppress_tokens       ban the listed tokens

Each keeps the contract of core/link.py and reproduces the transformers class it names (the repetition
penalty, the classic one, is in core/links.py); tests/links/test_processors.py checks them against transformers.

What this module is not: the warpers that only sampling applies (core/links.py, warpers.py), llama.cpp's DRY
(llama.py), or the order of the chain (chain.py).

Differences from transformers: frequency_penalty and presence_penalty follow OpenAI's API (transformers has none).
"""

import math
from dataclasses import dataclass

import numpy as np

from ..core.checks import check_int, check_real, number, phrase
from ..core.link import NEG_INF, Link, Option, reads
from ..core.links import PENALTY_LAST_N, seen_columns
from .values import (as_bias_pairs, as_sequence_bias, as_token_ids, as_token_tuple, as_token_tuples,
                     check_prompt_length, check_token_ids, parse_bias, parse_ids, parse_sequence_bias)

# The largest bias accepted. Model logits are at most about 1e4 in size, so even the extremes combined (a bias
# of 1e9, divided by a penalty of 1e-3 and a temperature of 1e-20, summed over a beam's steps) stay far inside
# float32's range (3.4e38): no processor ever overflows to inf or NaN.
MAX_BIAS = 1e9

# OpenAI's API takes frequency and presence penalties in [-2, 2]; llama.cpp takes any (its own tests use 5).
ADDITIVE_PENALTY = 1e3
FREQUENCY_PENALTY = Option("frequency_penalty", 0.0, "subtract X times the number of times a token was generated",
                           "penalties", low=-ADDITIVE_PENALTY, high=ADDITIVE_PENALTY, metavar="X")
PRESENCE_PENALTY = Option("presence_penalty", 0.0, "subtract X from every token generated at least once",
                          "penalties", low=-ADDITIVE_PENALTY, high=ADDITIVE_PENALTY, metavar="X")
NO_REPEAT_NGRAM_SIZE = Option("no_repeat_ngram_size", 0, "ban any token that would repeat an N-gram of the text "
                              "(0 = off)", "penalties", kind=int, low=0, metavar="N")
BAD_WORDS_IDS = Option("bad_words_ids", (), "a token sequence never to generate, as comma-separated ids "
                       "(repeatable; --bad-word takes text)", "penalties", kind=object,
                       valid="a list of token-id lists, such as [[3290], [1310, 3290]]", normalise=as_token_tuples,
                       parse=parse_ids, metavar="IDS", repeat=True)
LOGIT_BIAS = Option("logit_bias", (), "add BIAS to the token's logit; -inf bans it (repeatable)", "penalties",
                    kind=object, valid="a dict of token id -> bias, such as {50256: -100.0} (-inf bans the token)",
                    normalise=as_bias_pairs, parse=parse_bias, metavar="TOKEN=BIAS", repeat=True)
SEQUENCE_BIAS = Option("sequence_bias", (), "add BIAS to the last token of TEXT whenever the text so far ends with "
                       "the rest of it (repeatable)", "penalties", kind=object,
                       valid="a dict of token sequences (or texts) -> bias, such as {(968, 1971): -5.0} or "
                       "{' New York': -5.0}", normalise=as_sequence_bias, parse=parse_sequence_bias,
                       metavar="TEXT=BIAS", repeat=True)
MIN_NEW_TOKENS = Option("min_new_tokens", 0, "hold end-of-text back until N tokens are generated", "penalties",
                        kind=int, low=0, metavar="N")
SUPPRESS_TOKENS = Option("suppress_tokens", (), "token ids never to generate, comma-separated", "penalties",
                         kind=object, valid="a list of token ids, such as [198, 50256]", normalise=as_token_tuple,
                         parse=parse_ids, metavar="IDS")


@dataclass(repr=False)
class FrequencyPresencePenalty(Link):
    """x_j - frequency * c_j - presence * [c_j > 0], c_j = how often token j was GENERATED so far: the additive
    rule of OpenAI's API, also used by vLLM and llama.cpp. Like OpenAI and vLLM it counts only the generated
    tokens, ids[:, prompt_length:]; with last_n (penalty_last_n) it counts, as llama.cpp, the last last_n ids,
    prompt included (-1: every id), each row's left padding (prompt_ignore_length) excepted. -inf stays -inf."""
    name = "frequency_presence_penalty"
    frequency: float = reads(FREQUENCY_PENALTY, default=0.0)
    presence: float = reads(PRESENCE_PENALTY, default=0.0)
    last_n: int | None = reads(PENALTY_LAST_N, default=None)
    prompt_length: int = 0
    prompt_ignore_length: object = None

    @classmethod
    def acts(cls, values, setting):
        return values[FREQUENCY_PENALTY.name] != 0.0 or values[PRESENCE_PENALTY.name] != 0.0

    def __post_init__(self):
        super().__post_init__()
        self.prompt_length = check_prompt_length(self.prompt_length)

    def counted(self, ids, vocab: int):
        """ids [B, t] with those that do not count replaced by vocab (an extra column): every id before the
        generated ones, or outside the window of llama.cpp's penalty_last_n."""
        B, t = ids.shape
        start = np.full((B, 1), self.prompt_length)  # [B, 1] where counting starts
        if self.last_n is not None:
            pad = np.asarray(0 if self.prompt_ignore_length is None else self.prompt_ignore_length).reshape(-1, 1)
            start = np.maximum(pad, 0 if self.last_n == -1 else t - self.last_n)
        return np.where(np.arange(t) >= start, np.minimum(ids, vocab), vocab)  # [B, t]

    def __call__(self, logits, ids):
        counted = self.counted(ids, logits.shape[-1])  # [B, t]
        counts = np.zeros((logits.shape[0], logits.shape[1] + 1), dtype=np.float32)  # [B, V + 1]
        np.add.at(counts, (np.broadcast_to(np.arange(ids.shape[0])[:, None], counted.shape), counted), 1)
        counts = counts[:, :-1]  # [B, V]
        return logits - (np.float32(self.frequency) * counts + np.float32(self.presence) * (counts > 0))


@dataclass(repr=False)
class NoRepeatNGram(Link):
    """Ban every token that would complete an n-gram already in ids (Paulus, Xiong & Socher 2018, "A Deep
    Reinforced Model for Abstractive Summarization"); transformers.NoRepeatNGramLogitsProcessor, prompt
    included: each window ids[s : s+n] whose first n-1 tokens equal the last n-1 tokens of ids bans its last
    token. n = 1 bans every seen token."""
    name = "no_repeat_ngram"
    n: int = reads(NO_REPEAT_NGRAM_SIZE)

    def __post_init__(self):
        self.n = check_int(NO_REPEAT_NGRAM_SIZE.said(), self.n, 1)

    def __call__(self, logits, ids):
        t, n = ids.shape[1], self.n
        if t < n:
            return logits.copy()
        windows = np.lib.stride_tricks.sliding_window_view(ids, n, axis=1)  # [B, t-n+1, n]
        suffix = ids[:, t - n + 1 :]  # [B, n-1] the n-gram the next token would complete
        completes = (windows[:, :, :-1] == suffix[:, None, :]).all(axis=-1)  # [B, t-n+1]
        banned = np.where(completes, windows[:, :, -1], logits.shape[-1])  # non-matching -> out of vocabulary
        return np.where(seen_columns(banned, logits.shape[-1]), NEG_INF, logits)


@dataclass(repr=False)
class BadWords(Link):
    """Ban the last token of each banned sequence whose other tokens are the last tokens of ids; a one-token
    sequence is banned always. transformers.NoBadWordsLogitsProcessor: the one-token sequence [eos] is dropped
    from the list, so a bad word never forbids ending; a prefix longer than ids never matches."""
    name = "bad_words"
    sequences: list = reads(BAD_WORDS_IDS)
    eos_token_id: int | None = None

    def __post_init__(self):
        if (not isinstance(self.sequences, (list, tuple))
                or not all(isinstance(seq, (list, tuple)) and seq for seq in self.sequences)):
            raise BAD_WORDS_IDS.refusal(self.sequences, "a list of non-empty token-id lists")
        sequences = [as_token_ids(BAD_WORDS_IDS.said(), seq) for seq in self.sequences]
        self.sequences = [seq for seq in sequences if seq != [self.eos_token_id]]

    def check_vocabulary(self, vocab_size):
        check_token_ids(BAD_WORDS_IDS.said(), [i for seq in self.sequences for i in seq], vocab_size)

    def __call__(self, logits, ids):
        self.check_vocabulary(logits.shape[-1])
        t = ids.shape[1]
        banned = np.zeros(logits.shape, dtype=bool)  # [B, V]
        for *prefix, last in self.sequences:
            if len(prefix) <= t:
                banned[:, last] |= (ids[:, t - len(prefix) :] == prefix).all(axis=-1)  # [B]
        return np.where(banned, NEG_INF, logits)


@dataclass(repr=False)
class LogitBias(Link):
    """x_j + bias[j] for each token j in the map, the OpenAI API's `logit_bias`; transformers'
    SequenceBiasLogitsProcessor given one-token sequences, the bias rounded to float32 first. -inf bans the
    token; NaN, +inf and finite biases beyond MAX_BIAS (already far more than any logit) are refused."""
    name = "logit_bias"
    bias: dict = reads(LOGIT_BIAS)

    def __post_init__(self):
        try:
            bias = dict(self.bias)  # {token: bias}, or [(token, bias), ...]
        except (TypeError, ValueError):
            raise LOGIT_BIAS.refusal(self.bias, "a map of token ids to biases, such as {50256: -100.0}") from None
        tokens = as_token_ids(LOGIT_BIAS.said(), bias.keys())
        self.bias = {token: check_bias(phrase("{o} for token {t}", o=LOGIT_BIAS.said(), t=token), b)
                     for token, b in zip(tokens, bias.values())}

    def check_vocabulary(self, vocab_size):
        check_token_ids(LOGIT_BIAS.said(), self.bias, vocab_size)

    def __call__(self, logits, ids):
        self.check_vocabulary(logits.shape[-1])
        bias = np.zeros(logits.shape[-1], dtype=np.float32)  # [V]
        bias[list(self.bias)] = list(self.bias.values())
        return logits + bias  # [B, V]


def check_bias(parameter, bias) -> float:
    """A bias in [-MAX_BIAS, MAX_BIAS], or -inf (a ban); NaN and +inf are refused."""
    return check_real(parameter, bias, lambda v: v == -math.inf or abs(v) <= MAX_BIAS,
                      f"a number in [-{number(MAX_BIAS)}, {number(MAX_BIAS)}], or -inf to ban the token")


@dataclass(repr=False)
class SequenceBias(Link):
    """x_j + b for each biased sequence (s_1, ..., s_n; b) with s_n = j whose s_1 .. s_{n-1} are the last n-1
    ids: a sequence's bias falls on its last token when the next token would complete it (a one-token sequence:
    always). transformers.SequenceBiasLogitsProcessor (its sequence_bias): the biases of a row are summed in
    float32, the one-token sequences first, then the longer ones grouped by length, then added to the logits.
    A sequence given as text is turned into tokens by the run's tokenizer. logit_bias is the one-token form."""
    name = "sequence_bias"
    bias: tuple = reads(SEQUENCE_BIAS)
    tokenizer: object = None

    def __post_init__(self):
        self.sequences, self.texts = {}, []  # token tuple -> bias, in the order given; texts left without tokenizer
        for key, bias in as_sequence_bias(SEQUENCE_BIAS, self.bias):
            bias = check_bias(phrase("{o} for {s}", o=SEQUENCE_BIAS.said(), s=repr(key)), bias)
            if isinstance(key, str) and self.tokenizer is None:
                self.texts.append(key)  # checked only: the chain of generate() has the tokenizer
                continue
            sequence = tuple(as_token_ids(SEQUENCE_BIAS.said(), self.tokenizer.encode(key) if isinstance(key, str)
                                          else key))
            if not sequence:
                raise SEQUENCE_BIAS.refusal(key, "a non-empty text or token sequence for each bias")
            self.sequences[sequence] = bias

    def check_vocabulary(self, vocab_size):
        check_token_ids(SEQUENCE_BIAS.said(), [i for sequence in self.sequences for i in sequence], vocab_size)

    def __call__(self, logits, ids):
        if self.texts:
            raise ValueError(f"sequence_bias {self.texts[0]!r} is text, and no tokenizer was given to turn it into "
                             f"tokens; give the sequence as token ids.")
        self.check_vocabulary(logits.shape[-1])
        t, bias = ids.shape[1], np.zeros(logits.shape, dtype=np.float32)  # [B, V]
        single = {s[0]: b for s, b in self.sequences.items() if len(s) == 1}
        bias[:, list(single)] = np.asarray(list(single.values()), dtype=np.float32)
        by_length = {}  # the longer sequences, grouped by length in the order each length first appears
        for sequence, b in self.sequences.items():
            if len(sequence) > 1:
                by_length.setdefault(len(sequence), []).append((sequence, b))
        for n, group in by_length.items():
            for (*prefix, last), b in group if n - 1 <= t else ():
                completes = (ids[:, t - len(prefix) :] == prefix).all(axis=-1)  # [B]
                bias[:, last] += np.where(completes, np.float32(b), np.float32(0))
        return logits + bias


@dataclass(repr=False)
class MinNewTokens(Link):
    """eos gets -inf while fewer than min_new_tokens tokens have been generated, generated = ids.shape[1] -
    prompt_length (which counts the left padding); transformers.MinNewTokensLengthLogitsProcessor."""
    name = "min_new_tokens"
    min_new_tokens: int = reads(MIN_NEW_TOKENS)
    eos_token_id: int = 50256
    prompt_length: int = 0

    @classmethod
    def acts(cls, values, setting):  # a test model's small vocabulary may lack GPT-2's end-of-text
        vocab = setting.vocab_size
        return values[MIN_NEW_TOKENS.name] != 0 and (vocab is None or setting.eos_token_id < vocab)

    def __post_init__(self):
        self.min_new_tokens = check_int(MIN_NEW_TOKENS.said(), self.min_new_tokens, 0)
        self.eos_token_id = check_int("eos_token_id", self.eos_token_id, 0)
        self.prompt_length = check_prompt_length(self.prompt_length)

    def __call__(self, logits, ids):
        out = logits.copy()
        if ids.shape[1] - self.prompt_length < self.min_new_tokens and self.eos_token_id < logits.shape[-1]:
            out[:, self.eos_token_id] = NEG_INF
        return out


@dataclass(repr=False)
class SuppressTokens(Link):
    """x_j = -inf for every listed token j, at every step (Whisper's suppress_tokens);
    transformers.SuppressTokensLogitsProcessor."""
    name = "suppress_tokens"
    token_ids: list = reads(SUPPRESS_TOKENS)

    def __post_init__(self):
        self.token_ids = as_token_ids(SUPPRESS_TOKENS.said(), self.token_ids)

    def check_vocabulary(self, vocab_size):
        check_token_ids(SUPPRESS_TOKENS.said(), self.token_ids, vocab_size)

    def __call__(self, logits, ids):
        self.check_vocabulary(logits.shape[-1])
        out = logits.copy()
        out[:, self.token_ids] = NEG_INF
        return out
