"""The strategies by name: one record each, from which every list of strategies, and every refusal of an option
a strategy does not use, derives.

A record says what a strategy does (core/link.Trait: it samples, streams one token per row per step, keeps
beams, lets the chain choose), which loop runs it (strategies/), what it holds at its peak (memory.py), the
options that are its own, the rules between them, and the defaults it needs to be itself (a beam search of one
beam is greedy decoding; diverse beam search needs two groups): so every strategy runs from its name alone. An option is accepted by a strategy when the strategy
does what the option's declaration says it is used by, or lists it among its own.

`build_options` makes a call's GenerationOptions, refusing in one sentence naming the option, before any token
is generated: an unknown name, an option the strategy does not use, a value of the wrong type or out of range,
and options that contradict each other.

What this module is not: the options' declarations (beside the code that reads them; strategies/options.py
gathers them) or the loops (strategies/).
"""

import difflib
from dataclasses import dataclass, replace
from typing import Callable

from ..core.checks import Named, OptionError, phrase
from ..core.link import Option, Trait
from ..core.links import TOP_K
from ..strategies import beam, contrastive, speculative, tokenwise
from ..strategies.options import (BY_NAME, DIVERSITY_PENALTY, DO_SAMPLE, DRAFT_MODEL, NUM_ASSISTANT_TOKENS,
                                  NUM_BEAM_GROUPS, NUM_BEAMS, NUM_RETURN_SEQUENCES, PENALTY_ALPHA, REGISTRY,
                                  GenerationOptions)
from . import memory

STRATEGY = Named("strategy", "--strategy")  # generate()'s argument, as a refusal names it


def no_rules(options: GenerationOptions):
    """A strategy whose options need nothing of each other."""


def beam_rules(options: GenerationOptions):
    if options.num_return_sequences > options.num_beams:
        raise OptionError("{n} ({n_value}) must be at most {beams} ({beams_value}).", n=NUM_RETURN_SEQUENCES.said(),
                          n_value=options.num_return_sequences, beams=NUM_BEAMS.said(), beams_value=options.num_beams)


def diverse_beam_rules(options: GenerationOptions):
    beam_rules(options)
    if options.num_beam_groups < 2 or options.num_beams % options.num_beam_groups:
        raise OptionError("{groups} must be at least 2 and divide {beams} ({n}), got {g}.", n=options.num_beams,
                          groups=NUM_BEAM_GROUPS.said(), beams=NUM_BEAMS.said(), g=options.num_beam_groups)


def contrastive_rules(options: GenerationOptions):
    if options.top_k is not None and options.top_k < 2:
        raise OptionError("{k} for contrastive search must be at least 2 (the candidates compared), got {value}.",
                          k=TOP_K.said(), value=options.top_k)


def speculative_rules(options: GenerationOptions):
    if options.draft_model is None:
        raise OptionError("speculative decoding needs {draft}: a smaller GPT-2 (a model, a name or a path).",
                          draft=DRAFT_MODEL.said())


@dataclass(frozen=True)
class Strategy:
    name: str
    loop: Callable  # strategies/: a generator over decoding steps, returning the Outcome
    footprint: Callable  # memory.py: (options, config, prompts, prompt length, trace_top) -> its peak
    does: Trait
    help: str  # one line, for --help
    own: tuple[Option, ...] = ()  # the options only this strategy (and those that list them too) uses
    rules: Callable[[GenerationOptions], None] = no_rules
    samples_on_request: bool = False  # it samples only with do_sample (speculative decoding)
    defaults: tuple[tuple[Option, object], ...] = ()  # (option, value): its own default, in place of the option's

    def accepts(self, option: Option) -> bool:
        return option in self.own or (option.used_by is not None and option.used_by in self.does)

    def samples(self, options: GenerationOptions) -> bool:
        """Whether this call draws its tokens: the warpers then join the chain, and the draw ends it."""
        return Trait.SAMPLES in self.does and (options.do_sample or not self.samples_on_request)


S, ST, B, C = Trait.SAMPLES, Trait.STREAMS, Trait.KEEPS_BEAMS, Trait.CHOOSES
BEAM_OWN = (NUM_RETURN_SEQUENCES,)
BEAMS = ((NUM_BEAMS, 4),)  # transformers' example settings for beam search
GROUPS = (*BEAMS, (NUM_BEAM_GROUPS, 2), (DIVERSITY_PENALTY, 1.0))  # and for diverse beam search
STRATEGIES = {s.name: s for s in (
    Strategy("greedy", tokenwise.token_by_token, memory.tokenwise, ST | C, "the most probable token at every step"),
    Strategy("sample", tokenwise.token_by_token, memory.tokenwise, S | ST | C, "draw each token from the distribution",
             own=(NUM_RETURN_SEQUENCES,)),
    Strategy("beam", beam.beam_search, memory.beam, B, "keep the num_beams most probable sequences", own=BEAM_OWN,
             rules=beam_rules, defaults=BEAMS),
    Strategy("beam-sample", beam.beam_search, memory.beam_sample, S | B, "beam search that draws its candidates",
             own=BEAM_OWN, rules=beam_rules, defaults=BEAMS),
    Strategy("diverse-beam", beam.beam_search, memory.beam, B, "beam groups kept from choosing the same tokens",
             own=(*BEAM_OWN, NUM_BEAM_GROUPS, DIVERSITY_PENALTY), rules=diverse_beam_rules, defaults=GROUPS),
    Strategy("contrastive", contrastive.contrastive_search, memory.contrastive, ST,
             "probable tokens unlike what was already said", own=(PENALTY_ALPHA, TOP_K), rules=contrastive_rules),
    Strategy("speculative", speculative.speculative_decoding, memory.speculative, S | ST,
             "a small draft model guesses, the model checks: the model's own text, faster",
             own=(DRAFT_MODEL, NUM_ASSISTANT_TOKENS, DO_SAMPLE), rules=speculative_rules, samples_on_request=True),
)}
ACCEPTS = {name: {o.name for o in REGISTRY if s.accepts(o)} for name, s in STRATEGIES.items()}
# What a strategy that samples only on request (speculative) uses only then: what every sampling strategy uses.
SAMPLING_ONLY = {o.name for o in REGISTRY if o.used_by is not None and Trait.SAMPLES in o.used_by}


def doing(trait: Trait) -> list[str]:
    """The strategies that do something, by name: doing(Trait.KEEPS_BEAMS) is beam, beam-sample, diverse-beam."""
    return [name for name, s in STRATEGIES.items() if trait in s.does]


def users(option: Option) -> list[str]:
    """The strategies that use an option, by name."""
    return [name for name, s in STRATEGIES.items() if s.accepts(option)]


def strategy_defaults(option: Option) -> str:
    """The strategies' own defaults of an option, in words: "4 for beam, beam-sample, diverse-beam" ("" if none)."""
    values = {}
    for name, record in STRATEGIES.items():
        for declared, value in record.defaults:
            if declared is option:
                values.setdefault(value, []).append(name)
    return "; ".join(f"{value:g} for {', '.join(names)}" for value, names in values.items())


def chosen_strategy(strategy: str | None, given: dict) -> str:
    """The strategy of a call: the one named; without one, sample when an option that only sampling uses is given
    (a temperature, a top-p: as llama.cpp, Ollama and OpenAI-style APIs read them), else greedy."""
    if strategy is not None:
        return strategy
    sampling = [n for n in given if n in BY_NAME and BY_NAME[n].used_by is not None and not
                STRATEGIES["greedy"].accepts(BY_NAME[n]) and STRATEGIES["sample"].accepts(BY_NAME[n])]
    return "sample" if sampling else "greedy"


def build_options(strategy: str | None = None, **given) -> GenerationOptions:
    """The options of a call from keyword arguments, each checked; see the module docstring for what is refused.
    strategy None: chosen_strategy's choice."""
    strategy = chosen_strategy(strategy, given)
    if not isinstance(strategy, str) or strategy not in STRATEGIES:
        raise OptionError("{s} must be one of {names}; got {value}.", s=STRATEGY, names=", ".join(STRATEGIES),
                          value=repr(strategy))
    record = STRATEGIES[strategy]
    for name in given:
        if name not in BY_NAME:
            close = difflib.get_close_matches(name, BY_NAME, n=1)
            raise OptionError("unknown generation option {name}; {fix}", name=repr(name),
                              fix=phrase("did you mean {o}?", o=BY_NAME[close[0]].said()) if close else
                              "the options are listed in docs/options.md.")
        if not record.accepts(BY_NAME[name]):
            using = users(BY_NAME[name])
            pick = next(s for s in ("greedy", "sample", *using) if s in using)  # the plainest that uses it
            raise OptionError("strategy {s} does not use {o}; it is an option of: {using}; to use it, add {pick}.",
                              s=repr(strategy), o=BY_NAME[name].said(), using=", ".join(using),
                              pick=replace(STRATEGY, value=pick))
    given = {option.name: value for option, value in record.defaults} | {k: v for k, v in given.items() if v is not None}
    if record.samples_on_request and not given.get("do_sample", False):
        for name in sorted(SAMPLING_ONLY & given.keys()):
            raise OptionError("speculative decoding uses {o} only when it samples; add {sample}, or drop {o} for "
                              "greedy speculative decoding.", o=BY_NAME[name].said(), sample=DO_SAMPLE.said(True))
    try:
        options = GenerationOptions(strategy=strategy, **{name: BY_NAME[name].check(value)
                                                          for name, value in given.items()})
        options.validate()
        record.rules(options)
    except OptionError:
        raise
    except ValueError as e:  # a link's own refusal that names no option
        raise OptionError("{why}", why=str(e)) from None
    return options
