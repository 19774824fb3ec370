"""The full sampler chain: every link in its visible order, then the chooser that picks the token.

    scores -> penalties and bans (every strategy) -> warpers (sampling only) -> the chain's end -> chooser -> token

The order is data (PENALTY_ORDER, WARPER_ORDER and FINAL_ORDER below), the order of transformers'
`_get_logits_processor` (`generation/utils.py`, 5.x) with llama.cpp's samplers slotted in: DRY after the
frequency/presence penalty; dynamic temperature in temperature's place; top-nσ and XTC after the other
warpers. The chain's end comes after the warpers whatever the strategy: the watermark, then renormalisation.
`sampler_order` moves the named warpers to the front. `Chain.describe()` lists the chain, as llama.cpp prints
its own. Each link builds itself from the options or stays out when they leave it neutral (core/link.py), so
adding a sampler is one class, its options, and one entry here. The last link chooses: greedy argmax, the
seeded draw (core/chain.py) or mirostat.

What this module is not: the chain itself (core/chain.py) or the options of a call (strategies/options.py).
"""

import numpy as np

from ..core.chain import Chain, ChainSetting, Draw, Greedy, acting
from ..core.checks import OptionError, joined, phrase
from ..core.link import Option, Trait
from ..core.links import MinP, RepetitionPenalty, Temperature, TopK, TopP
from .constraints import AllowedTokens, ExponentialDecayLength, ForcedEOS, Renormalize
from .llama import DRY, XTC, DynamicTemperature, TopNSigma
from .mirostat import Mirostat
from .penalties import (BadWords, FrequencyPresencePenalty, LogitBias, MinNewTokens, NoRepeatNGram, SequenceBias,
                        SuppressTokens)
from .prompt import EncoderNoRepeatNGram, EncoderRepetitionPenalty
from .values import as_texts
from .warpers import EpsilonCutoff, EtaCutoff, TopH, TypicalP
from .watermark import Watermark

PENALTY_ORDER = (LogitBias, SequenceBias, EncoderRepetitionPenalty, RepetitionPenalty, FrequencyPresencePenalty, DRY,
                 NoRepeatNGram, EncoderNoRepeatNGram, BadWords, MinNewTokens, AllowedTokens, ForcedEOS,
                 ExponentialDecayLength, SuppressTokens)
# The warpers in their default order, by the name --sampler-order uses; each slot takes the first of its
# classes that the options turn on (dynamic temperature replaces the plain one).
WARPER_ORDER = {"temperature": (DynamicTemperature, Temperature), "top_h": (TopH,), "top_k": (TopK,), "top_p": (TopP,),
                "min_p": (MinP,), "typical_p": (TypicalP,), "epsilon_cutoff": (EpsilonCutoff,),
                "eta_cutoff": (EtaCutoff,), "top_n_sigma": (TopNSigma,), "xtc": (XTC,)}
FINAL_ORDER = (Watermark, Renormalize)  # after the warpers, whatever the strategy: renormalisation last of all
CHOOSERS = (Mirostat,)  # the choosers that options turn on; otherwise greedy argmax, or the draw when sampling
LINKS = {cls.name: cls for cls in (*PENALTY_ORDER, *(c for slot in WARPER_ORDER.values() for c in slot),
                                   *FINAL_ORDER)}  # by name


def check_order(option: Option, order) -> tuple[str, ...]:
    """A sampler order: warper names from WARPER_ORDER, each at most once ("dynamic_temperature" means
    "temperature"); otherwise ValueError naming the offending name."""
    names = ["temperature" if name == "dynamic_temperature" else name for name in as_texts(option, order)]
    for name in names:
        if not isinstance(name, str):
            raise option.refusal(order, option.valid)
        if name not in WARPER_ORDER:
            raise OptionError("{o} names {name}, which is not a warper that can be reordered; use names from: "
                              "{known}.", o=option.said(), name=repr(name), known=", ".join(WARPER_ORDER))
        if names.count(name) > 1:
            raise OptionError("{o} names {name} twice; name each warper at most once.", o=option.said(),
                              name=repr(name))
    return tuple(names)


SAMPLER_ORDER = Option("sampler_order", (), "the warpers to apply first, in this order, such as top_k,top_p,"
                       "temperature", "llama.cpp samplers", Trait.SAMPLES, kind=object,
                       valid="a list of warper names, such as ['top_k', 'top_p', 'temperature']",
                       normalise=check_order, parse=lambda text: [n.strip() for n in text.split(",") if n.strip()],
                       metavar="NAMES")
OPTIONS = tuple(dict.fromkeys(option for cls in (*LINKS.values(), *CHOOSERS) for option in cls.options)) + (
    SAMPLER_ORDER,)  # every option a link reads
DEFAULTS = {option.name: option.default for option in OPTIONS}


def build_chain(*, sampling: bool, prompt_length: int, eos_token_id: int, vocab_size: int | None, pad_lengths=None,
                tokenizer=None, rng=None, pad_token_id: int = 0, max_new_tokens: int | None = None,
                prompt_index=None, **options) -> Chain:
    """The links whose options are not neutral, in the order above; options by their declared names
    (core/link.Option), the others at their defaults. The warpers and the draw only when sampling, as in
    transformers. pad_lengths (one int per row) is each row's left padding, which the penalties skip
    (ChainSetting.prompt_ignore_length); prompt_index (one int per row) the prompt each row continues.
    vocab_size None skips the check that the token ids given (bans, biases) are in the vocabulary: the options
    are then only checked for range."""
    unknown = sorted(options.keys() - DEFAULTS.keys())
    if unknown:
        raise ValueError(f"unknown chain options {unknown}; known: {', '.join(DEFAULTS)}.")
    values = DEFAULTS | {name: value for name, value in options.items() if value is not None}
    setting = ChainSetting(prompt_length, eos_token_id, vocab_size, None if pad_lengths is None else
                           [int(pad) for pad in pad_lengths], tokenizer, rng, 1 if pad_lengths is None else
                           len(pad_lengths), pad_token_id, max_new_tokens,
                           None if prompt_index is None else [int(i) for i in prompt_index])
    links = acting(PENALTY_ORDER, values, setting)
    chooser = Greedy()
    if sampling:
        order = check_order(SAMPLER_ORDER, values[SAMPLER_ORDER.name])
        for name in [*order, *(name for name in WARPER_ORDER if name not in order)]:
            links += acting(WARPER_ORDER[name], values, setting)[:1]  # the slot's first class that acts
        chooser = (acting(CHOOSERS, values, setting) or [Draw(rng if rng is not None else np.random.default_rng(),
                                                              pad_token_id)])[0]
    links += acting(FINAL_ORDER, values, setting)
    for link in links:  # name the token ids outside the vocabulary now, not at the first step
        if vocab_size is not None and hasattr(link, "check_vocabulary"):
            link.check_vocabulary(vocab_size)
    return Chain(links, chooser)


# What to loosen when the links named here leave no token to choose ({o}: the link's first option).
LOOSEN = {SuppressTokens: "suppress fewer tokens", LogitBias: "give fewer tokens a -inf {o}", BadWords: "ban fewer "
          "bad words", NoRepeatNGram: "raise {o}", MinNewTokens: "lower {o}", SequenceBias: "give fewer sequences a "
          "-inf {o}", EncoderNoRepeatNGram: "raise {o}", AllowedTokens: "allow more tokens"}


def masked_by(chain: Chain, logits, ids, rows) -> list:
    """The links of a chain that set some logit of the given rows to -inf: what to loosen when they leave no
    token at all. Runs the chain again, one link at a time (only on that error)."""
    logits = np.array(logits, dtype=np.float32)
    ids = np.asarray(ids, dtype=np.int64).reshape(logits.shape[0], -1)
    masking = []
    for processor in chain.processors:
        out = processor(logits, ids)
        if (np.isneginf(out[rows]) & ~np.isneginf(logits[rows])).any():
            masking.append(processor)
        logits = out
    return masking


def check_choosable(chain: Chain, logits, history, processed, step: int, rows=None, nothing_left=None):
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
        masking = masked_by(chain, logits, history, rows[empty]) or chain.processors
        fixes = [phrase(LOOSEN[type(p)], o=p.options[0].said()) for p in masking if type(p) in LOOSEN]
        options = list(dict.fromkeys(p.options[0].said() if p.options else p.name for p in masking))  # as set
        raise OptionError("every token was masked at step {step} by the logit processors ({options}), so there is "
                          "nothing left to choose; {fixes} so that at least one token stays allowed.", step=step + 1,
                          options=joined(options), fixes=fixes or "loosen them")
