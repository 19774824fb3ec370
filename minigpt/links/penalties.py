"""The penalties and bans: processors that every strategy applies, greedy and beam search included.

    logit_bias            x_j + bias_j                       (the OpenAI API's logit_bias)
    repetition_penalty    x_j / p or x_j * p for seen tokens (Keskar et al. 2019)
    frequency/presence    x_j - f * count_j - p * [count_j > 0], over the generated tokens
    no_repeat_ngram       ban a token that would repeat an n-gram
    bad_words             ban the last token of a banned sequence
    min_new_tokens        ban end-of-text until enough tokens were generated
    suppress_tokens       ban the listed tokens

Each keeps the contract of link.py and reproduces the transformers class it names;
tests/test_processors.py checks them against transformers.

What this module is not: the warpers that only sampling applies (processors.py), llama.cpp's DRY
(llama_samplers.py), or the order of the chain (chain.py).

Differences from transformers:
- repetition_penalty skips each row's left padding, as 5.x does; 4.46 penalised the pad id too.
- frequency_penalty and presence_penalty follow OpenAI's API: transformers has none.
"""

import math

import numpy as np

from ..core.checks import as_token_ids, check_int, check_real, check_token_ids, number
from ..core.link import EVERY_STRATEGY, NEG_INF, LogitsProcessor, Option, as_bias_pairs, as_token_tuple, as_token_tuples, check_prompt_length, parse_bias, parse_ids

# The largest scale factors and biases accepted. Model logits are at most about 1e4 in size, so even the
# extremes combined (a bias of 1e9, divided by a penalty of 1e-3 and a temperature of 1e-20, summed over a
# beam's steps) stay far inside float32's range (3.4e38): no processor ever overflows to inf or NaN.
MAX_BIAS = 1e9
PENALTY_RANGE = (1e-3, 1e3)


def mask_columns(ids, vocab_size):
    """[B, t] token ids -> [B, V] bool, True where a token occurs in its row; ids >= V are ignored."""
    mask = np.zeros((ids.shape[0], vocab_size + 1), dtype=bool)  # column V soaks up out-of-vocabulary ids
    np.put_along_axis(mask, np.minimum(ids, vocab_size), True, axis=-1)
    return mask[:, :vocab_size]


REPETITION_PENALTY = Option("repetition_penalty", 1.0, "divide the logit of every token already in the text by X "
                            "(multiply, if negative): above 1 discourages repeats", "penalties", EVERY_STRATEGY,
                            low=PENALTY_RANGE[0], high=PENALTY_RANGE[1], note="(1 is no penalty)", metavar="X")
FREQUENCY_PENALTY = Option("frequency_penalty", 0.0, "subtract X times the number of times a token was generated",
                           "penalties", EVERY_STRATEGY, low=-2, high=2, metavar="X")
PRESENCE_PENALTY = Option("presence_penalty", 0.0, "subtract X from every token generated at least once",
                          "penalties", EVERY_STRATEGY, low=-2, high=2, metavar="X")
NO_REPEAT_NGRAM_SIZE = Option("no_repeat_ngram_size", 0, "ban any token that would repeat an N-gram of the text "
                              "(0 = off)", "penalties", EVERY_STRATEGY, kind=int, low=0, metavar="N")
BAD_WORDS_IDS = Option("bad_words_ids", (), "a token sequence never to generate, as comma-separated ids "
                       "(repeatable; --bad-word takes text)", "penalties", EVERY_STRATEGY, kind=object,
                       valid="a list of token-id lists, such as [[3290], [1310, 3290]]", normalise=as_token_tuples,
                       parse=parse_ids, metavar="IDS", repeat=True)
LOGIT_BIAS = Option("logit_bias", (), "add BIAS to the token's logit; -inf bans it (repeatable)", "penalties",
                    EVERY_STRATEGY, kind=object, valid="a dict of token id -> bias, such as {50256: -100.0} "
                    "(-inf bans the token)", normalise=as_bias_pairs, parse=parse_bias, metavar="TOKEN=BIAS",
                    repeat=True)
MIN_NEW_TOKENS = Option("min_new_tokens", 0, "hold end-of-text back until N tokens are generated", "penalties",
                        EVERY_STRATEGY, kind=int, low=0, metavar="N")
SUPPRESS_TOKENS = Option("suppress_tokens", (), "token ids never to generate, comma-separated", "penalties",
                         EVERY_STRATEGY, kind=object, valid="a list of token ids, such as [198, 50256]",
                         normalise=as_token_tuple, parse=parse_ids, metavar="IDS")


class RepetitionPenalty(LogitsProcessor):
    """For every token already in ids (once, however often it occurs): x_i * penalty if x_i < 0,
    else x_i / penalty. penalty > 1 discourages repeats. The "penalized sampling" of Keskar et al. 2019,
    "CTRL: A Conditional Transformer Language Model".

    Matches transformers.RepetitionPenaltyLogitsProcessor, prompt included. prompt_ignore_length
    (an int, or one int per row) skips that many leading ids: the chain passes each row's left-padding
    length here, so that pad tokens are not penalised.
    """

    name = "repetition_penalty"
    options = (REPETITION_PENALTY,)

    @classmethod
    def from_options(cls, o, setting):
        if o["repetition_penalty"] == 1.0:
            return None
        pads = setting.pad_lengths  # a row that is all padding (an empty prompt) is penalised, see build_chain
        skip = None if pads is None else [0 if pad == setting.prompt_length else pad for pad in pads]
        return cls(o["repetition_penalty"], prompt_ignore_length=skip)

    def __init__(self, penalty, prompt_ignore_length=None):
        self.penalty = REPETITION_PENALTY.check(penalty, default_ok=False)
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
    -inf stays -inf.
    """

    name = "frequency_presence_penalty"
    options = (FREQUENCY_PENALTY, PRESENCE_PENALTY)

    @classmethod
    def from_options(cls, o, setting):
        if o["frequency_penalty"] == 0.0 and o["presence_penalty"] == 0.0:
            return None
        return cls(o["frequency_penalty"], o["presence_penalty"], setting.prompt_length)

    def __init__(self, frequency=0.0, presence=0.0, prompt_length=0):
        self.frequency = FREQUENCY_PENALTY.check(frequency)
        self.presence = PRESENCE_PENALTY.check(presence)
        self.prompt_length = check_prompt_length(prompt_length)

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
    options = (NO_REPEAT_NGRAM_SIZE,)

    @classmethod
    def from_options(cls, o, setting):
        return cls(o["no_repeat_ngram_size"]) if o["no_repeat_ngram_size"] else None

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
    options = (BAD_WORDS_IDS,)

    @classmethod
    def from_options(cls, o, setting):
        return cls([list(s) for s in o["bad_words_ids"]], setting.eos_token_id) if o["bad_words_ids"] else None

    def __init__(self, sequences, eos_token_id=None):
        if (not isinstance(sequences, (list, tuple))
                or not all(isinstance(seq, (list, tuple)) and seq for seq in sequences)):
            raise ValueError(f"bad_words_ids must be a list of non-empty token-id lists, got {sequences!r}.")
        sequences = [as_token_ids("bad_words_ids", seq) for seq in sequences]
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
    options = (LOGIT_BIAS,)

    @classmethod
    def from_options(cls, o, setting):
        return cls(o["logit_bias"]) if o["logit_bias"] else None

    def __init__(self, bias):
        try:
            bias = dict(bias)  # {token: bias}, or [(token, bias), ...]
        except (TypeError, ValueError):
            raise ValueError(f"logit_bias must map token ids to biases, such as {{50256: -100.0}}; "
                             f"got {bias!r}.") from None
        tokens = as_token_ids("logit_bias", bias.keys())
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
    options = (MIN_NEW_TOKENS,)

    @classmethod
    def from_options(cls, o, setting):
        if not o["min_new_tokens"] or (setting.vocab_size is not None and setting.eos_token_id >= setting.vocab_size):
            return None  # off, or a small test vocabulary without GPT-2's end-of-text: nothing to hold back
        return cls(setting.eos_token_id, setting.prompt_length, o["min_new_tokens"])

    def __init__(self, eos_token_id, prompt_length, min_new_tokens):
        self.eos_token_id = check_int("eos_token_id", eos_token_id, 0)
        self.prompt_length = check_prompt_length(prompt_length)
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
    options = (SUPPRESS_TOKENS,)

    @classmethod
    def from_options(cls, o, setting):
        return cls(o["suppress_tokens"]) if o["suppress_tokens"] else None

    def __init__(self, token_ids):
        self.token_ids = as_token_ids("suppress_tokens", token_ids)

    def params(self):
        return {"token_ids": self.token_ids}

    def check_vocabulary(self, vocab_size):
        check_token_ids("suppress_tokens", self.token_ids, vocab_size)

    def __call__(self, logits, ids):
        self.check_vocabulary(logits.shape[-1])
        out = logits.copy()
        out[:, self.token_ids] = NEG_INF
        return out
