"""The registry of generation options, and the options of one call checked against it.

Every option is declared once as a link.Option: the chain's beside the processor that reads it
(chain.OPTIONS gathers them), the others below: the output's length and stop strings, each strategy's
own, and what guidance and DoLa read. REGISTRY holds them all, in the order --help groups them;
GenerationOptions is a frozen dataclass with one field per option, derived from it.

GenerationOptions.build refuses, in one sentence naming the option and what it takes and before any token
is generated: an unknown name, an option the chosen strategy does not use, a value of the wrong type or
out of range, and options that contradict each other.

What this module is not: the code that reads the options (the processors, the chain, the strategies).

Differences from transformers: min_new_tokens > max_new_tokens is refused (transformers never lets
end-of-text come); sample draws from the full distribution unless given top_k (transformers: top_k 50).
"""

import os
from dataclasses import field, make_dataclass

import numpy as np

from ..core.checks import is_integer, is_token_list
from ..core.model import GPT2
from ..links.chain import OPTIONS as CHAIN_OPTIONS
from ..links.chain import build_chain
from ..core.link import BEAMS, EVERY_STRATEGY, GROUPS, SAMPLING, STRATEGIES, Option, as_text_or_texts, refuse

STEP_BY_STEP = ("greedy", "sample", "contrastive", "speculative")  # one token per row per step: stop strings apply


def as_stop_strings(option: Option, value) -> tuple:
    texts = as_text_or_texts(option, value)
    if any(not isinstance(s, str) or not s for s in texts):
        raise ValueError(f"stop must be a list of non-empty strings, got {list(texts)!r}.")
    return texts


def as_early_stopping(option: Option, value):
    if not isinstance(value, (bool, str)) or value not in (True, False, "never"):
        raise ValueError(f"early_stopping must be {option.valid}, got {value!r}.")
    return value


def parse_early_stopping(text: str):
    choices = {"true": True, "false": False, "never": "never"}
    if text.lower() not in choices:
        raise ValueError(f"expected true, false or never, got {text!r}")
    return choices[text.lower()]


def as_draft_model(option: Option, value):
    if not isinstance(value, (GPT2, str, os.PathLike)):
        raise ValueError(f"draft_model must be a GPT2 model, a name or a path, got {type(value).__name__}.")
    return value


def as_negative_prompts(option: Option, value) -> tuple[tuple[int, ...], ...]:
    """negative_prompt_ids as given (one prompt, a list of ids, for every prompt; or one list of ids per
    prompt) -> a tuple of prompts. ValueError, in one sentence, for anything else."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise refuse(option, value)
    prompts = [value] if is_token_list(value) else list(value)
    if not all(is_token_list(p) and all(is_integer(t) and t >= 0 for t in p) for p in prompts):
        raise refuse(option, value)
    return tuple(tuple(int(t) for t in p) for p in prompts)


def as_dola_layers(option: Option, value):
    """dola_layers as given -> "low", "high" or a tuple of layer indices; ValueError for anything else."""
    if isinstance(value, str) and value in ("low", "high"):
        return value
    if isinstance(value, (list, tuple, range)) and value and all(is_integer(j) and j >= 0 for j in value):
        return tuple(int(j) for j in value)
    raise refuse(option, value)


def parse_dola_layers(text: str):
    """ "low", "high" or "2,4,6" -> "low", "high" or [2, 4, 6]."""
    if text in ("low", "high"):
        return text
    try:
        return [int(j) for j in text.split(",") if j.strip()]
    except ValueError:
        raise ValueError(f"expected low, high or comma-separated layer indices such as 2,4,6, got {text!r}") from None


def as_read_out(option: Option, value):
    if value not in ("raw", "lens"):
        raise refuse(option, value)
    return value


OUTPUT = (
    Option("max_new_tokens", 20, "how many tokens to generate at most", "output", EVERY_STRATEGY, kind=int, low=0,
           metavar="N"),
    Option("eos_token_id", None, "the end-of-text token id (default: the model's, 50256)", "output", EVERY_STRATEGY,
           kind=int, low=0, metavar="ID"),
    Option("stop", (), "stop once the text contains TEXT (repeatable)", "output", STEP_BY_STEP, kind=object,
           valid="a string or a list of strings, such as ['.', "
                 "'\\n']", normalise=as_stop_strings, parse=str, metavar="TEXT",
           repeat=True),
)
STRATEGY = (
    Option("seed", None, "the seed of every random draw: the same seed gives the same text", "strategy", SAMPLING,
           kind=int, low=0, metavar="N"),
    Option("num_return_sequences", 1, "how many sequences to return per prompt", "strategy", ("sample", *BEAMS),
           kind=int, low=1, metavar="N"),
    Option("num_beams", 1, "beam search: how many partial sequences to keep", "strategy", BEAMS, kind=int, low=1,
           metavar="N"),
    Option("length_penalty", 1.0, "beam search: divide a finished sequence's score by length^X", "strategy", BEAMS,
           low=-10, high=10, note="(1 divides the score by the length)", metavar="X"),
    Option("early_stopping", False, "beam search: stop when num_beams are finished (true), when none can improve "
           "(false), or 'never'", "strategy", BEAMS, kind=object, valid="true, false or 'never'",
           normalise=as_early_stopping, parse=parse_early_stopping, metavar="true|false|never"),
    Option("num_beam_groups", 1, "diverse beam search: the groups the beams are split into", "strategy",
           ("diverse-beam",), kind=int, low=1, metavar="N"),
    Option("diversity_penalty", 0.0, "diverse beam search: subtract X for a token an earlier group chose at this "
           "step", "strategy", ("diverse-beam",), low=0, high=1e9, metavar="X"),
    Option("penalty_alpha", 0.6, "contrastive search: the weight of the degeneration penalty (0 = greedy)",
           "strategy", ("contrastive",), low=0, high=1, metavar="X"),
    Option("draft_model", None, "speculative decoding: the small model that drafts tokens", "strategy",
           ("speculative",), kind=object, normalise=as_draft_model, parse=str, metavar="NAME_OR_PATH"),
    Option("num_assistant_tokens", 5, "speculative decoding: tokens drafted per round", "strategy",
           ("speculative",), kind=int, low=1, metavar="N"),
    Option("do_sample", False, "speculative decoding: sample (with the warpers) instead of greedy", "strategy",
           ("speculative",), kind=bool),
)
SCORES_FROM = (
    Option("guidance_scale", 1.0, "classifier-free guidance: above 1 follows the prompt (and avoids the negative "
           "prompt) more closely", "guidance and DoLa", ("greedy", "sample"), low=0, high=1e3,
           note="(1 is no guidance; the paper uses 1.25 to 3)", metavar="X"),
    Option("negative_prompt_ids", None, "classifier-free guidance: the text to steer away from (default: the "
           "prompt's last token)", "guidance and DoLa", ("greedy", "sample"), kind=object,
           valid="a list of token ids (one negative prompt for every prompt) or a list of such lists (one per "
           "prompt)", normalise=as_negative_prompts, parse=str, metavar="TEXT", flag_name="--negative-prompt",
           encode=True),
    Option("dola_layers", None, "DoLa: contrast the final layer with these premature layers", "guidance and DoLa",
           ("greedy", "sample"), kind=object, valid="'low', 'high' or a non-empty list of layer indices >= 0 (0 is "
           "the embeddings), such as [2, 4]", normalise=as_dola_layers, parse=parse_dola_layers,
           metavar="low|high|2,4,6"),
    Option("dola_read_out", None, "DoLa: read premature layers through ln_f (lens, the default) or without it "
           "(raw, as transformers 4.46)", "guidance and DoLa", ("greedy", "sample"), kind=object,
           valid="one of raw, lens", normalise=as_read_out, parse=str, metavar="lens|raw"),
)
REGISTRY = tuple(sorted((*OUTPUT, *STRATEGY, *CHAIN_OPTIONS, *SCORES_FROM), key=lambda o: list(GROUPS).index(o.group)))
BY_NAME = {option.name: option for option in REGISTRY}
ACCEPTS = {strategy: {o.name for o in REGISTRY if strategy in o.strategies} for strategy in STRATEGIES}
# What speculative decoding uses only with do_sample: what every sampling strategy uses, but not every strategy.
SAMPLING_ONLY = {o.name for o in REGISTRY if set(SAMPLING) <= set(o.strategies) < set(EVERY_STRATEGY)}


class OptionError(ValueError):
    """A generation option with a bad value, or one the chosen strategy does not use."""


class CheckedOptions:
    """The methods of GenerationOptions, whose fields come from REGISTRY."""

    @classmethod
    def build(cls, strategy: str = "greedy", **given):
        """Options from keyword arguments, each checked; see the module docstring for what is refused."""
        if not isinstance(strategy, str) or strategy not in STRATEGIES:
            raise OptionError(f"strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}.")
        for name in given:
            if name not in BY_NAME:
                raise OptionError(f"unknown generation option {name!r}; known options: {', '.join(sorted(BY_NAME))}.")
            if name not in ACCEPTS[strategy]:
                users = [s for s in STRATEGIES if name in ACCEPTS[s]]
                pick = "sample" if "sample" in users else users[0]  # transformers' greedy would ignore it silently
                raise OptionError(f"strategy {strategy!r} does not use {name}; it is an option of: {', '.join(users)}; "
                                  f"to use it, add strategy={pick!r} (--strategy {pick}).")
        given = {k: v for k, v in given.items() if v is not None}
        if strategy == "speculative" and not given.get("do_sample", False):
            for name in sorted(SAMPLING_ONLY & given.keys()):
                raise OptionError(f"speculative decoding uses {name} only when it samples; add do_sample=True "
                                  f"(--do-sample), or drop {name} for greedy speculative decoding.")
        try:
            options = cls(strategy=strategy, **{name: BY_NAME[name].check(value) for name, value in given.items()})
            options.validate()
        except OptionError:
            raise
        except ValueError as e:  # the declarations' and the processors' own refusals
            raise OptionError(str(e)) from None
        return options

    @property
    def sampling(self) -> bool:
        return self.strategy in ("sample", "beam-sample") or (self.strategy == "speculative" and self.do_sample)

    def chain_options(self) -> dict:
        """The values of the options the chain's links read (chain.build_chain's keyword arguments)."""
        return {option.name: getattr(self, option.name) for option in CHAIN_OPTIONS}

    def validate(self):
        """What no single option can say: the processors' contents (every link built once, ids unchecked
        against a vocabulary), and the rules between options."""
        build_chain(sampling=True, prompt_length=0, eos_token_id=0, vocab_size=None, **self.chain_options())
        if self.min_new_tokens > self.max_new_tokens:
            raise OptionError(f"min_new_tokens ({self.min_new_tokens}) exceeds max_new_tokens "
                              f"({self.max_new_tokens}), so "
                              "the call could not generate that many tokens; raise max_new_tokens or lower "
                              "min_new_tokens.")
        if self.strategy in BEAMS and self.num_return_sequences > self.num_beams:
            raise OptionError(f"num_return_sequences ({self.num_return_sequences}) must be at most num_beams "
                              f"({self.num_beams}).")
        if self.strategy == "diverse-beam" and (self.num_beam_groups < 2 or self.num_beams % self.num_beam_groups):
            raise OptionError(f"num_beam_groups must be at least 2 and divide num_beams ({self.num_beams}), "
                              f"got {self.num_beam_groups}.")
        if self.strategy == "contrastive" and self.top_k is not None and self.top_k < 2:
            raise OptionError(f"top_k for contrastive search must be at least 2 (the candidates compared), "
                              f"got {self.top_k}.")
        if self.strategy == "speculative" and self.draft_model is None:
            raise OptionError("speculative decoding needs draft_model: a smaller GPT-2 (a model, a name or a path).")
        self.validate_scores_from()

    def validate_scores_from(self):
        if self.negative_prompt_ids is not None and self.guidance_scale == 1:
            raise OptionError("negative_prompt_ids is used only with guidance_scale other than 1 (1 is no guidance); "
                              "set guidance_scale, such as 1.5, or drop the negative prompt.")
        if self.dola_read_out is not None and self.dola_layers is None:
            raise OptionError("dola_read_out is used only with dola_layers; set dola_layers ('low', 'high' or layer "
                              "indices).")
        if self.dola_layers is not None and self.guidance_scale != 1:
            raise OptionError("guidance_scale and dola_layers cannot be combined, since each replaces the model's "
                              "next-token scores; choose one.")


GenerationOptions = make_dataclass(
    "GenerationOptions", [("strategy", str, field(default="greedy"))]
    + [(o.name, o.kind, field(default=o.default)) for o in REGISTRY], bases=(CheckedOptions,), frozen=True,
    namespace={"__doc__": "The options of one generate() call, by transformers' GenerationConfig names where "
                          "they have one; one field per declaration in options.REGISTRY.",
               "__module__": __name__})
