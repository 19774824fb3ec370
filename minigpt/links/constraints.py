"""Links that constrain what comes next, for every strategy: which tokens may follow, and when the text ends; and the
renormalisation that ends the chain.

    prefix_allowed_tokens_fn    only the tokens a function allows: fn(prompt index, ids of the row) -> ids
    allowed_tokens_regex        only the tokens whose text matches a regular expression (and end-of-text)
    forced_eos_token_id         at the last step, only that token (end-of-text): every text ends with it
    exponential_decay_length_penalty   after START new tokens, end-of-text's logit grows by |x| (f^k - 1)
    renormalize_logits          log-softmax after every other link (transformers' LogitNormalization)

Each keeps the contract of core/link.py and reproduces the transformers class it names; chain.py orders them as
transformers does (renormalisation last of all).

What this module is not: the bans of tokens and sequences (penalties.py) or the order of the chain (chain.py).

Differences from transformers: the decay's bonus stops at 1e9 (transformers lets it grow to inf, and the draw to
NaN); prefix_allowed_tokens_fn is given each row's ids as a NumPy array (transformers: a torch tensor) and the
index of the prompt the row continues, however the strategy lays its rows out.
"""

import math
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..core.checks import OptionError, check_int
from ..core.link import NEG_INF, Link, Option, reads
from ..core.numerics import log_softmax
from .penalties import MAX_BIAS
from .values import as_token_ids, check_prompt_length, check_token_ids

MAX_DECAY = 1e3  # the largest decay factor: its powers overflow no sooner than plain floats allow


def as_function(option: Option, value):
    if not callable(value):
        raise option.refusal(value, option.valid)
    return value


def as_regex(option: Option, value):
    """A regular expression, as text, that compiles."""
    if not isinstance(value, str):
        raise option.refusal(value, option.valid)
    try:
        re.compile(value)
    except re.error as e:
        raise OptionError("{o} is not a regular expression Python reads ({why}), got {value}.", o=option.said(),
                          why=str(e), value=repr(value)[:80]) from None
    return value


def as_decay(option: Option, value):
    """(start_index, decay_factor): an integer >= 0 and a number in (0, MAX_DECAY]."""
    try:
        start, factor = value
    except (TypeError, ValueError):
        raise option.refusal(value, option.valid) from None
    ok = isinstance(start, int) and not isinstance(start, bool) and start >= 0 and isinstance(factor, (int, float))
    if not ok or isinstance(factor, bool) or not 0 < factor <= MAX_DECAY:
        raise option.refusal(value, option.valid)
    return int(start), float(factor)


def parse_decay(text: str) -> tuple[int, float]:
    """ "10,1.05" -> (10, 1.05)."""
    start, _, factor = text.partition(",")
    try:
        return int(start), float(factor)
    except ValueError:
        raise ValueError(f"expected START,FACTOR such as 10,1.05, got {text!r}") from None


PREFIX_ALLOWED_TOKENS_FN = Option("prefix_allowed_tokens_fn", None, "Python only: a function (prompt index, the row's "
                                  "ids) -> the token ids allowed next", "penalties", kind=object,
                                  valid="a function (batch_id, ids) -> a list of token ids", normalise=as_function,
                                  python_only=True)
ALLOWED_TOKENS_REGEX = Option("allowed_tokens_regex", None, "allow only the tokens whose whole text matches REGEX "
                              "(and end-of-text), such as '[ 0-9]+'", "penalties", kind=object,
                              valid="a regular expression, such as '[ 0-9,]+'", normalise=as_regex, parse=str,
                              metavar="REGEX")
FORCED_EOS_TOKEN_ID = Option("forced_eos_token_id", None, "at the last step (the max_new_tokens-th token) allow only "
                             "this token, such as 50256 (end-of-text)", "penalties", kind=int, low=0, metavar="ID")
EXPONENTIAL_DECAY_LENGTH_PENALTY = Option(
    "exponential_decay_length_penalty", None, "START,FACTOR: after START new tokens, raise end-of-text's logit by "
    "|x| (FACTOR^k - 1) at the k-th token past START", "penalties", kind=object, normalise=as_decay, parse=parse_decay,
    valid=f"a pair (start_index, decay_factor): an integer >= 0 and a number in (0, {MAX_DECAY:g}]",
    metavar="START,FACTOR")
RENORMALIZE_LOGITS = Option("renormalize_logits", False, "after every other link, make the scores log-probabilities "
                            "again (their log softmax)", "the chain's end", kind=bool)


@dataclass(repr=False)
class AllowedTokens(Link):
    """Only the allowed tokens keep their logit, the others get -inf: the tokens fn(prompt index, row ids) returns
    for each row (transformers.PrefixConstrainedLogitsProcessor; De Cao et al. 2021, "Autoregressive Entity
    Retrieval"), or every token whose text matches the regular expression as a whole, and end-of-text. Where the
    allowed tokens of every row of a prompt are all -inf already, they get 0 instead, as transformers does, so
    that the constraint holds. An empty list is refused: nothing could follow."""
    name = "allowed_tokens"
    fn: object = reads(PREFIX_ALLOWED_TOKENS_FN, default=None)
    regex: object = reads(ALLOWED_TOKENS_REGEX, default=None)
    prompt_index: list | None = None  # the prompt each row continues (None: row i continues prompt i)
    tokenizer: object = None
    eos_token_id: int = 50256

    @classmethod
    def acts(cls, values, setting):
        return values[PREFIX_ALLOWED_TOKENS_FN.name] is not None or values[ALLOWED_TOKENS_REGEX.name] is not None

    def __post_init__(self):
        self.fn, self.regex = (o.check(getattr(self, name)) for name, o in self.option_fields.items())
        if (self.fn is None) == (self.regex is None):
            raise OptionError("{fn} and {regex} " + ("cannot be combined" if self.fn else "are both unset") + "; give "
                              "one of them.", fn=PREFIX_ALLOWED_TOKENS_FN.said(), regex=ALLOWED_TOKENS_REGEX.said())
        self.matching = None if self.regex is None or self.tokenizer is None else matching_tokens(
            self.tokenizer, self.regex, self.eos_token_id)

    def params(self):
        return super().params() | ({"fn": getattr(self.fn, "__name__", repr(self.fn))} if self.fn else {})

    def allowed(self, row: int, ids, vocab: int) -> list[int]:
        """The tokens allowed next in a row (those of the regex within the model's vocabulary), refused if none."""
        if self.regex is not None:
            if self.matching is None:
                raise ValueError("allowed_tokens_regex needs a tokenizer to read the tokens' texts.")
            tokens = [i for i in self.matching if i < vocab]
            if not tokens:
                raise OptionError("{o} matches no token of the model's vocabulary; widen it.",
                                  o=ALLOWED_TOKENS_REGEX.said())
            return tokens
        prompt = row if self.prompt_index is None else int(self.prompt_index[row])
        tokens = as_token_ids(PREFIX_ALLOWED_TOKENS_FN.said(), self.fn(prompt, ids[row]))
        if not tokens:
            raise OptionError("{fn} allowed no token for prompt {b} after {t} ids; it must allow at least one.",
                              fn=PREFIX_ALLOWED_TOKENS_FN.said(), b=prompt, t=ids.shape[1])
        check_token_ids(PREFIX_ALLOWED_TOKENS_FN.said(), tokens, vocab)
        return tokens

    def __call__(self, logits, ids):
        mask = np.full(logits.shape, NEG_INF)  # [B, V]
        for row in range(logits.shape[0]):
            mask[row, self.allowed(row, ids, logits.shape[-1])] = 0
        out = logits + mask
        prompts = np.arange(logits.shape[0]) if self.prompt_index is None else np.asarray(self.prompt_index)
        stuck = np.isneginf(out.max(axis=-1))  # [B] rows whose allowed tokens are all -inf
        whole = np.array([stuck[prompts == p].all() for p in prompts])  # [B] every row of its prompt is stuck
        return np.where(whole[:, None], mask, out)


@lru_cache(maxsize=8)
def matching_tokens(tokenizer, regex: str, eos_token_id: int) -> list[int]:
    """The ids whose text matches the regular expression as a whole, and end-of-text."""
    pattern = re.compile(regex)
    return sorted({i for i, text in enumerate(tokenizer.token_texts) if pattern.fullmatch(text)} | {eos_token_id})


@dataclass(repr=False)
class ForcedEOS(Link):
    """At the step that generates the max_new_tokens-th token, every logit is -inf but the forced token's, which is
    0: the text ends with it, unless it ended before. transformers.ForcedEOSTokenLogitsProcessor (at length
    max_length - 1, max_length = prompt + max_new_tokens). max_new_tokens None: it never forces."""
    name = "forced_eos"
    token_id: int = reads(FORCED_EOS_TOKEN_ID)
    prompt_length: int = 0
    max_new_tokens: int | None = None

    def __post_init__(self):
        super().__post_init__()
        self.prompt_length = check_prompt_length(self.prompt_length)
        if self.max_new_tokens is not None:
            self.max_new_tokens = check_int("max_new_tokens", self.max_new_tokens, 0)

    def check_vocabulary(self, vocab_size):
        check_token_ids(FORCED_EOS_TOKEN_ID.said(), [self.token_id], vocab_size)

    def __call__(self, logits, ids):
        if self.max_new_tokens is None or ids.shape[1] - self.prompt_length != self.max_new_tokens - 1:
            return logits.copy()
        self.check_vocabulary(logits.shape[-1])
        out = np.full(logits.shape, NEG_INF)
        out[:, self.token_id] = 0
        return out


@dataclass(repr=False)
class ExponentialDecayLength(Link):
    """Once more than start_index tokens are generated, end-of-text's logit x becomes x + |x| (f^k - 1), k = the
    new tokens past start_index: with f > 1 the text grows likelier to end, step after step, without a hard cut.
    transformers.ExponentialDecayLengthPenalty (its regulation starts at prompt_length + start_index); -inf stays
    -inf, and the bonus stops at 1e9."""
    name = "exponential_decay_length_penalty"
    decay: tuple = reads(EXPONENTIAL_DECAY_LENGTH_PENALTY)
    eos_token_id: int = 50256
    prompt_length: int = 0

    def __post_init__(self):
        super().__post_init__()
        self.eos_token_id = check_int("eos_token_id", self.eos_token_id, 0)
        self.prompt_length = check_prompt_length(self.prompt_length)

    def __call__(self, logits, ids):
        start, factor = self.decay
        k = ids.shape[1] - (self.prompt_length + start)
        out = logits.copy()
        if k <= 0 or self.eos_token_id >= logits.shape[-1]:
            return out
        grown = math.inf if k * math.log(factor) > 700 else factor**k - 1  # f^k - 1, inf beyond what a double holds
        x = logits[:, self.eos_token_id]  # [B]
        with np.errstate(over="ignore", invalid="ignore"):
            bonus = np.abs(x) * np.float32(min(grown, 3e38))  # in float32, as transformers multiplies
        out[:, self.eos_token_id] = x + np.minimum(np.where(np.isfinite(x), bonus, 0), np.float32(MAX_BIAS))
        return out


@dataclass(repr=False)
class Renormalize(Link):
    """log-softmax of the scores after every other link, so that they are log-probabilities again: beam search
    then adds normalised scores. transformers.LogitNormalization (its renormalize_logits), always last."""
    name = "renormalize"
    on: bool = reads(RENORMALIZE_LOGITS)

    def __call__(self, logits, ids):
        return log_softmax(logits)
