"""The sampler chain: the processors in a visible order, then the chooser that picks the token.

    scores -> penalties and bans (every strategy) -> warpers (sampling only) -> chooser -> token

The order is data (PENALTIES, WARPERS below), the order of transformers' `_get_logits_processor`
(`generation/utils.py`, the same in 4.46 and 5.24) with llama.cpp's samplers slotted in: DRY after the
frequency/presence penalty; dynamic temperature in temperature's place; top-nσ and XTC after the other
warpers. `sampler_order` moves the named warpers to the front. `describe()` lists the chain, as
llama.cpp prints its own. Each processor builds itself from the options (`from_options`) or stays out
when they leave it neutral, so adding a sampler is one class, its options, and one entry here.

The last link chooses, as in llama.cpp: greedy argmax, the seeded draw (both below) or mirostat
(mirostat.py). A chooser may still narrow the candidates (mirostat truncates), chooses one token per row,
then `accept`s it: mirostat moves its mu; each returns what it decided, per row, for the trace. Beam
search, contrastive search and speculative decoding choose by rules of their own from the processed scores.

What this module is not: the options' defaults and the strategies that accept them (options.py).
"""

import numpy as np

from ..core.numerics import draw, softmax
from ..core.link import SAMPLING, ChainSetting, Option, as_texts
from .llama import DRY, XTC, DynamicTemperature, TopNSigma
from .mirostat import Mirostat
from .penalties import BadWords, FrequencyPresencePenalty, LogitBias, MinNewTokens, NoRepeatNGram, RepetitionPenalty, SuppressTokens
from ..core.links import EpsilonCutoff, EtaCutoff, MinP, Temperature, TopK, TopP, TypicalP

# ----------------------------------------------------------------------------- the choosers


class Greedy:
    """The most probable token: argmax over the processed scores (the first of equal maxima, as torch.argmax)."""

    name = "greedy"

    def narrow(self, scores):
        return scores

    def choose(self, scores, rows):
        return scores.argmax(axis=-1)  # [B]

    def accept(self, scores, tokens, rows) -> dict:
        return {}

    def describe(self) -> str:
        return ""  # the plain choice: the chain lists nothing after the processors


class Draw(Greedy):
    """A token drawn from softmax(scores) with the run's seeded generator (numerics.draw). Every row with a
    token left is drawn from, finished ones included, so that a seed gives the same text whatever the batch;
    a row with nothing left (a finished row fed padding) gets the pad token."""

    name = "draw"

    def __init__(self, rng: np.random.Generator, pad_token_id: int):
        self.rng, self.pad_token_id = rng, pad_token_id

    def choose(self, scores, rows):
        probs = softmax(scores)  # [B, V]
        return np.array([draw(p, self.rng) if p.any() else self.pad_token_id for p in probs])  # [B]


# ----------------------------------------------------------------------------- the chain


PENALTIES = (LogitBias, RepetitionPenalty, FrequencyPresencePenalty, DRY, NoRepeatNGram, BadWords, MinNewTokens,
             SuppressTokens)
# The warpers in their default order, by the name --sampler-order uses; each slot takes the first of its
# classes that the options turn on (dynamic temperature replaces the plain one).
WARPERS = {"temperature": (DynamicTemperature, Temperature), "top_k": (TopK,), "top_p": (TopP,), "min_p": (MinP,),
           "typical_p": (TypicalP,), "epsilon_cutoff": (EpsilonCutoff,), "eta_cutoff": (EtaCutoff,),
           "top_n_sigma": (TopNSigma,), "xtc": (XTC,)}
CHOOSERS = (Mirostat,)  # the choosers that options turn on; otherwise greedy argmax, or the draw when sampling


def check_order(option: Option, order) -> tuple[str, ...]:
    """A sampler order: warper names from WARPERS, each at most once ("dynamic_temperature" means
    "temperature"); otherwise ValueError naming the offending name."""
    names = ["temperature" if name == "dynamic_temperature" else name for name in as_texts(option, order)]
    for name in names:
        if not isinstance(name, str):
            raise ValueError(f"sampler_order must be {option.valid}; got {order!r}.")
        if name not in WARPERS:
            raise ValueError(f"sampler_order names {name!r}, which is not a warper that can be reordered; "
                             f"use names from: {', '.join(WARPERS)}.")
        if names.count(name) > 1:
            raise ValueError(f"sampler_order names {name!r} twice; name each warper at most once.")
    return tuple(names)


SAMPLER_ORDER = Option("sampler_order", (), "the warpers to apply first, in this order, such as top_k,top_p,"
                       "temperature", "llama.cpp samplers", SAMPLING, kind=object,
                       valid="a list of warper names, such as ['top_k', 'top_p', 'temperature']",
                       normalise=check_order, parse=lambda text: [n.strip() for n in text.split(",") if n.strip()],
                       metavar="NAMES")
OPTIONS = tuple(dict.fromkeys(option for cls in (*PENALTIES, *(c for cs in WARPERS.values() for c in cs), *CHOOSERS)
                              for option in cls.options)) + (SAMPLER_ORDER,)  # every option a link reads
DEFAULTS = {option.name: option.default for option in OPTIONS}


class LogitsChain:
    """Processors applied one after the other, logits -> p_1 -> p_2 -> ..., then the chooser."""

    def __init__(self, processors, chooser=None):
        self.processors = list(processors)
        self.chooser = chooser or Greedy()

    def __call__(self, logits, ids):
        """The processed scores [B, V] (a new array) of logits [B, V] after the tokens ids [B, t]."""
        logits = np.array(logits, dtype=np.float32)  # a copy: the caller's array is never modified
        ids = np.asarray(ids, dtype=np.int64).reshape(logits.shape[0], -1)  # [B, t]
        for processor in self.processors:
            logits = processor(logits, ids)
        return logits

    def describe(self) -> list[str]:
        """The processors in order, then the chooser if it is more than the plain argmax or draw."""
        return [repr(p) for p in self.processors] + [d for d in [self.chooser.describe()] if d]

    def state(self, row: int) -> dict:
        """What the processors decided for one row at their last call (XTC, dynamic temperature), by name."""
        return {name: values[row].item() for p in self.processors for name, values in getattr(p, "state", {}).items()}

    def masked_by(self, logits, ids, rows) -> list:
        """The processors that set some logit of the given rows to -inf: what to loosen when they leave no
        token at all. Runs the chain again, one processor at a time (only on that error)."""
        logits = np.array(logits, dtype=np.float32)
        ids = np.asarray(ids, dtype=np.int64).reshape(logits.shape[0], -1)
        masking = []
        for processor in self.processors:
            out = processor(logits, ids)
            if (np.isneginf(out[rows]) & ~np.isneginf(logits[rows])).any():
                masking.append(processor)
            logits = out
        return masking

    def __len__(self):
        return len(self.processors)

    def __repr__(self):
        return f"LogitsChain({' -> '.join(self.describe()) or 'identity'})"


def build_chain(*, sampling: bool, prompt_length: int, eos_token_id: int, vocab_size: int | None, pad_lengths=None,
                tokenizer=None, rng=None, pad_token_id: int = 0, **options) -> LogitsChain:
    """The links whose options are not neutral, in the order above; options by their declared names
    (link.Option), the others at their defaults. The warpers and the draw only when sampling, as in
    transformers. pad_lengths (one int per row) is each row's left padding, which the repetition penalty
    and DRY skip as transformers 5.x's generate does; that generate finds it as the argmax of the attention
    mask, which is 0 for a row that is all padding (an empty prompt): such a row's padding is penalised
    after all, and so it is here. vocab_size None skips the check that the token ids given (bans, biases)
    are in the vocabulary: the options are then only checked for range."""
    unknown = sorted(options.keys() - DEFAULTS.keys())
    if unknown:
        raise ValueError(f"unknown chain options {unknown}; known: {', '.join(DEFAULTS)}.")
    o = DEFAULTS | {name: value for name, value in options.items() if value is not None}
    rows = 1 if pad_lengths is None else len(pad_lengths)
    setting = ChainSetting(prompt_length, eos_token_id, vocab_size, None if pad_lengths is None else
                           [int(pad) for pad in pad_lengths], tokenizer, rng, rows, pad_token_id)
    links = [cls.from_options(o, setting) for cls in PENALTIES]
    order = check_order(SAMPLER_ORDER, o["sampler_order"])
    chooser = None
    if sampling:
        for name in [*order, *(name for name in WARPERS if name not in order)]:
            links.append(next((p for p in (cls.from_options(o, setting) for cls in WARPERS[name]) if p), None))
        chooser = next((c for c in (cls.from_options(o, setting) for cls in CHOOSERS) if c), None) \
            or Draw(rng if rng is not None else np.random.default_rng(), pad_token_id)
    chain = LogitsChain([p for p in links if p], chooser)
    for p in chain.processors:  # name the token ids outside the vocabulary now, not at the first step
        if vocab_size is not None and hasattr(p, "check_vocabulary"):
            p.check_vocabulary(vocab_size)
    return chain


# What to loosen when the processors named here leave no token to choose.
LOOSEN = {"suppress_tokens": "suppress fewer tokens", "logit_bias": "give fewer tokens a -inf logit_bias",
          "bad_words": "ban fewer bad words", "no_repeat_ngram": "raise no_repeat_ngram_size",
          "min_new_tokens": "lower min_new_tokens"}


def check_choosable(chain: LogitsChain, logits, history, processed, step: int, rows=None, nothing_left=None):
    """Refuse to choose from processed logits [B, V] (= chain(logits, history)) when, for one of `rows`
    (default: every row), nothing is left to choose: every logit is -inf, or one is NaN.

    nothing_left [B] bool overrides "every logit is -inf" (beam search: every candidate of a prompt).
    Raises ValueError naming the step (1 = the first new token) and the processors that masked the tokens.
    """
    rows = np.arange(processed.shape[0]) if rows is None else np.asarray(rows)
    if rows.size == 0:
        return
    if np.isnan(processed[rows]).any():
        raise ValueError(f"the logits at step {step + 1} hold NaN, so no token can be chosen; the model's weights "
                         f"are probably not finite numbers: check (or re-download) the checkpoint.")
    empty = ~np.isfinite(processed[rows]).any(axis=-1) if nothing_left is None else nothing_left[rows]
    if empty.any():
        masking = chain.masked_by(logits, history, rows[empty]) or chain.processors
        fixes = [LOOSEN[p.name] for p in masking if p.name in LOOSEN] or ["loosen them"]
        options = dict.fromkeys(p.options[0].name if p.options else p.name for p in masking)  # as the user set them
        raise ValueError(f"every token was masked at step {step + 1} by the logit processors ({', '.join(options)}), "
                         f"so there is nothing left to choose; {' or '.join(fixes)} so that at least one token "
                         f"stays allowed.")
