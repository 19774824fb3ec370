"""Generation options: their names (transformers' GenerationConfig's), defaults, valid ranges, and
which strategy uses which. A bad value (wrong type, NaN, out of range), an option the chosen strategy
cannot use, or options that contradict each other are refused with one sentence naming the parameter
and what it accepts, before any token is generated.

One decision where transformers is silent: min_new_tokens > max_new_tokens is refused (transformers
would just never let end-of-text come), since the call cannot give what it asks for."""

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from numbers import Real

from ..model import GPT2
from .dola import READ_OUTS, as_dola_layers
from .guidance import as_negative_prompts, check_guidance_scale
from .processors import build_chain, check_int, check_real, number

STRATEGIES = ("greedy", "sample", "beam", "beam-sample", "diverse-beam", "contrastive", "speculative")

# Options every strategy honours: lengths and the processors that penalise or constrain tokens.
COMMON = {"max_new_tokens", "min_new_tokens", "eos_token_id", "repetition_penalty", "frequency_penalty",
          "presence_penalty", "no_repeat_ngram_size", "bad_words_ids", "suppress_tokens", "logit_bias"}
# llama.cpp's DRY penalty: like the repetition penalty, it constrains tokens for every strategy.
COMMON |= {"dry_multiplier", "dry_base", "dry_allowed_length", "dry_penalty_last_n", "dry_sequence_breakers"}
# The processors that reshape the distribution a token is drawn from: only meaningful when sampling.
WARPERS = {"temperature", "top_k", "top_p", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff", "min_tokens_to_keep",
           "top_n_sigma", "xtc_probability", "xtc_threshold", "dynatemp_range", "dynatemp_exponent", "sampler_order"}
# Mirostat replaces the final draw of plain sampling (sampling/mirostat.py).
MIROSTAT = {"mirostat", "mirostat_tau", "mirostat_eta"}
# What the chain starts from instead of the model's logits: classifier-free guidance (sampling/guidance.py)
# or DoLa (sampling/dola.py); token-by-token greedy decoding and sampling only.
SCORES_FROM = {"guidance_scale", "negative_prompt_ids", "dola_layers", "dola_read_out"}
BEAM = {"num_beams", "length_penalty", "early_stopping", "num_return_sequences"}
ACCEPTS = {
    "greedy": COMMON | SCORES_FROM | {"stop"},
    "sample": COMMON | WARPERS | MIROSTAT | SCORES_FROM | {"stop", "seed", "num_return_sequences"},
    "beam": COMMON | BEAM,
    "beam-sample": COMMON | BEAM | WARPERS | {"seed"},
    "diverse-beam": COMMON | BEAM | {"num_beam_groups", "diversity_penalty"},
    "contrastive": COMMON | {"stop", "top_k", "penalty_alpha"},
    "speculative": COMMON | WARPERS | {"stop", "seed", "draft_model", "num_assistant_tokens", "do_sample"},
}


class OptionError(ValueError):
    """A generation option with a bad value, or one the chosen strategy does not use."""


# Whole-number options and the least value each accepts (None, where a field allows it, means "the default").
INTEGERS = {"max_new_tokens": 0, "min_new_tokens": 0, "top_k": 0, "min_tokens_to_keep": 1, "no_repeat_ngram_size": 0,
            "seed": 0, "num_return_sequences": 1, "num_beams": 1, "num_beam_groups": 1, "num_assistant_tokens": 1,
            "eos_token_id": 0, "mirostat": 0, "dry_allowed_length": 1, "dry_penalty_last_n": -1}
# Real-number options; their ranges are checked by the processor that uses them, or in validate().
REALS = ("temperature", "top_p", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff", "repetition_penalty",
         "frequency_penalty", "presence_penalty", "length_penalty", "diversity_penalty", "penalty_alpha",
         "top_n_sigma", "xtc_probability", "xtc_threshold", "dynatemp_range", "dynatemp_exponent", "dry_multiplier",
         "dry_base", "mirostat_tau", "mirostat_eta")
# What speculative decoding uses only when it samples (do_sample=True).
SAMPLING_ONLY = WARPERS | {"seed"}
MAX_LENGTH_PENALTY = 10.0  # n ** length_penalty for n up to a context's length stays a finite float
MAX_DIVERSITY_PENALTY = 1e9


@dataclass(frozen=True)
class GenerationOptions:
    strategy: str = "greedy"
    max_new_tokens: int = 20
    min_new_tokens: int = 0  # at most max_new_tokens: end-of-text is held back for this many tokens
    eos_token_id: int | None = None  # None: the model's (50256 for GPT-2)
    stop: tuple[str, ...] = ()  # stop strings, matched on the text
    # processors (transformers' names, neutral defaults)
    temperature: float = 1.0
    top_k: int | None = None  # None: 0 (off) when sampling, 4 for contrastive search
    top_p: float = 1.0
    min_p: float = 0.0
    typical_p: float = 1.0
    epsilon_cutoff: float = 0.0
    eta_cutoff: float = 0.0
    min_tokens_to_keep: int = 1
    repetition_penalty: float = 1.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    no_repeat_ngram_size: int = 0
    bad_words_ids: tuple[tuple[int, ...], ...] = ()
    suppress_tokens: tuple[int, ...] = ()
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token, bias) pairs; given as a dict
    # llama.cpp's processors (sampling/llama_samplers.py), off by default
    top_n_sigma: float = 0.0
    xtc_probability: float = 0.0
    xtc_threshold: float = 0.1
    dynatemp_range: float = 0.0
    dynatemp_exponent: float = 1.0
    dry_multiplier: float = 0.0
    dry_base: float = 1.75
    dry_allowed_length: int = 2
    dry_penalty_last_n: int = -1  # -1: the whole context
    dry_sequence_breakers: tuple[str, ...] = ("\n", ":", "\"", "*")
    sampler_order: tuple[str, ...] = ()  # warper names to apply first, in this order
    mirostat: int = 0  # 0 off, 1 or 2: the version (sampling/mirostat.py)
    mirostat_tau: float = 5.0
    mirostat_eta: float = 0.1
    # classifier-free guidance and DoLa (sampling/guidance.py, sampling/dola.py), off by default
    guidance_scale: float = 1.0  # 1: no guidance
    negative_prompt_ids: tuple[tuple[int, ...], ...] | None = None  # one, or one per prompt; None: each prompt's last token
    dola_layers: str | tuple[int, ...] | None = None  # "low", "high" or layer indices; None: no DoLa
    dola_read_out: str | None = None  # "lens" (through ln_f, the logit lens; None means this) or "raw" (lm_head on the residual stream, as transformers 4.46)
    # strategies
    seed: int | None = None
    num_return_sequences: int = 1
    num_beams: int = 1
    length_penalty: float = 1.0
    early_stopping: bool | str = False  # True, False or "never"
    num_beam_groups: int = 1
    diversity_penalty: float = 0.0
    penalty_alpha: float = 0.6
    draft_model: object = None  # a GPT2, or a name or path to load
    num_assistant_tokens: int = 5
    do_sample: bool = False

    @classmethod
    def build(cls, strategy: str = "greedy", **given) -> "GenerationOptions":
        """Options from keyword arguments: unknown names, options the strategy cannot use, values of the
        wrong type or out of range, and options that contradict each other are refused."""
        if not isinstance(strategy, str) or strategy not in STRATEGIES:
            raise OptionError(f"strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}.")
        known = {f.name for f in fields(cls)} - {"strategy"}
        for name in given:
            if name not in known:
                raise OptionError(f"unknown generation option {name!r}; known options: {', '.join(sorted(known))}.")
            if name not in ACCEPTS[strategy]:
                users = [s for s in STRATEGIES if name in ACCEPTS[s]]
                raise OptionError(f"strategy {strategy!r} does not use {name}; it is an option of: {', '.join(users)}.")
        given = {k: v for k, v in given.items() if v is not None}
        if strategy == "speculative" and not given.get("do_sample", False):
            for name in sorted(SAMPLING_ONLY & given.keys()):
                raise OptionError(f"speculative decoding uses {name} only when it samples; add do_sample=True "
                                  f"(--do-sample), or drop {name} for greedy speculative decoding.")
        for name in ("logit_bias", "stop", "bad_words_ids", "suppress_tokens", "dry_sequence_breakers", "sampler_order"):
            if name in given:
                given[name] = as_tuple(name, given[name])
        for name, normalise in (("negative_prompt_ids", as_negative_prompts), ("dola_layers", as_dola_layers)):
            if name in given:
                try:
                    given[name] = normalise(given[name])
                except ValueError as e:
                    raise OptionError(str(e)) from None
        options = cls(strategy=strategy, **given)
        try:
            options.validate()
        except OptionError:
            raise
        except ValueError as e:  # the processors' and check_int's own refusals
            raise OptionError(str(e)) from None
        return options

    @property
    def sampling(self) -> bool:
        return self.strategy in ("sample", "beam-sample") or (self.strategy == "speculative" and self.do_sample)

    def processor_options(self) -> dict:
        """The keyword arguments of processors.build_chain that come from these options."""
        names = ("temperature", "top_p", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff", "repetition_penalty",
                 "frequency_penalty", "presence_penalty", "no_repeat_ngram_size", "min_new_tokens", "min_tokens_to_keep",
                 "top_n_sigma", "xtc_probability", "xtc_threshold", "dynatemp_range", "dynatemp_exponent", "dry_multiplier",
                 "dry_base", "dry_allowed_length", "dry_penalty_last_n", "dry_sequence_breakers")
        return {name: getattr(self, name) for name in names} | {"order": self.sampler_order} | {
            "top_k": 0 if self.strategy == "contrastive" else (self.top_k or 0),  # contrastive's top_k counts candidates
            "bad_words_ids": [list(s) for s in self.bad_words_ids] or None,
            "suppress_tokens": list(self.suppress_tokens) or None,
            "logit_bias": dict(self.logit_bias) or None,
        }

    def validate(self):
        """Types first (a bool, a string or a float where a whole number belongs is refused), then ranges:
        the processors' parameters by building every processor once, the strategies' own here."""
        for name, minimum in INTEGERS.items():
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), minimum)
        for name in REALS:
            value = getattr(self, name)
            if not isinstance(value, Real) or isinstance(value, bool):
                raise OptionError(f"{name} must be a number, got {value!r}.")
        build_chain(sampling=True, prompt_length=0, eos_token_id=0, vocab_size=None, **self.processor_options())
        if self.mirostat != 0:
            from .mirostat import Mirostat  # here: mirostat.py imports decoding.py, which imports this module

            Mirostat(self.mirostat, self.mirostat_tau, self.mirostat_eta)  # refuses a bad version, tau or eta
        check_real("length_penalty", self.length_penalty, lambda v: abs(v) <= MAX_LENGTH_PENALTY,
                   f"a number in [-{number(MAX_LENGTH_PENALTY)}, {number(MAX_LENGTH_PENALTY)}] "
                   f"(1 divides the score by the length)")
        check_real("diversity_penalty", self.diversity_penalty, lambda v: 0 <= v <= MAX_DIVERSITY_PENALTY,
                   f"a number in [0, {number(MAX_DIVERSITY_PENALTY)}]")
        check_real("penalty_alpha", self.penalty_alpha, lambda v: 0 <= v <= 1, "in [0, 1]")
        if not isinstance(self.early_stopping, (bool, str)) or self.early_stopping not in (True, False, "never"):
            raise OptionError(f"early_stopping must be true, false or 'never', got {self.early_stopping!r}.")
        if not isinstance(self.do_sample, bool):
            raise OptionError(f"do_sample must be true or false, got {self.do_sample!r}.")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise OptionError(f"stop must be a list of non-empty strings, got {list(self.stop)!r}.")
        if self.min_new_tokens > self.max_new_tokens:
            raise OptionError(f"min_new_tokens ({self.min_new_tokens}) exceeds max_new_tokens ({self.max_new_tokens}), so "
                              f"the call could not generate that many tokens; raise max_new_tokens or lower min_new_tokens.")
        if self.draft_model is not None and not isinstance(self.draft_model, (GPT2, str, os.PathLike)):
            raise OptionError(f"draft_model must be a GPT2 model, a name or a path, got {type(self.draft_model).__name__}.")
        self.validate_beams()
        self.validate_scores_from()

    def validate_scores_from(self):
        check_guidance_scale(self.guidance_scale)
        if self.negative_prompt_ids is not None and self.guidance_scale == 1:
            raise OptionError("negative_prompt_ids is used only with guidance_scale other than 1 (1 is no guidance); "
                              "set guidance_scale, such as 1.5, or drop the negative prompt.")
        if self.dola_read_out is not None and self.dola_read_out not in READ_OUTS:
            raise OptionError(f"dola_read_out must be one of {', '.join(READ_OUTS)}; got {self.dola_read_out!r}.")
        if self.dola_read_out is not None and self.dola_layers is None:
            raise OptionError("dola_read_out is used only with dola_layers; set dola_layers ('low', 'high' or layer indices).")
        if self.dola_layers is not None and self.guidance_scale != 1:
            raise OptionError("guidance_scale and dola_layers cannot be combined, since each replaces the model's "
                              "next-token scores; choose one.")

    def validate_beams(self):
        if self.strategy in ("beam", "beam-sample", "diverse-beam"):
            if self.num_return_sequences > self.num_beams:
                raise OptionError(f"num_return_sequences ({self.num_return_sequences}) must be at most num_beams ({self.num_beams}).")
        if self.strategy == "diverse-beam":
            if self.num_beam_groups < 2 or self.num_beams % self.num_beam_groups:
                raise OptionError(f"num_beam_groups must be at least 2 and divide num_beams ({self.num_beams}), got {self.num_beam_groups}.")
        if self.strategy == "contrastive" and self.top_k is not None and self.top_k < 2:
            raise OptionError(f"top_k for contrastive search must be at least 2 (the candidates compared), got {self.top_k}.")
        if self.strategy == "speculative" and self.draft_model is None:
            raise OptionError("speculative decoding needs draft_model: a smaller GPT-2 (a model, a name or a path).")


# What each list-valued option takes, for the message that refuses anything else.
LIST_OPTIONS = {
    "stop": "a string or a list of strings, such as ['.', '\\n']",
    "suppress_tokens": "a list of token ids, such as [198, 50256]",
    "bad_words_ids": "a list of token-id lists, such as [[3290], [1310, 3290]]",
    "logit_bias": "a dict of token id -> bias, such as {50256: -100.0} (-inf bans the token)",
    "dry_sequence_breakers": "a list of texts, such as ['\\n', ':'] (an empty list for none)",
    "sampler_order": "a list of warper names, such as ['top_k', 'top_p', 'temperature']",
}


def as_tuple(name: str, value) -> tuple:
    """A list-valued option as a tuple (nested lists as tuples too; logit_bias as (id, bias) pairs,
    from a dict or from pairs), or OptionError saying what the option takes (LIST_OPTIONS)."""
    if name == "stop" and isinstance(value, str):
        return (value,)
    try:
        if name == "logit_bias":
            items = value.items() if isinstance(value, Mapping) else value
            pairs = tuple((token, bias) for token, bias in items)
            if len(dict(pairs)) < len(pairs):
                raise ValueError  # a token given twice
            return pairs
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
            raise TypeError
        if name == "bad_words_ids":
            return tuple(as_tuple("suppress_tokens", seq) for seq in value)
        return tuple(value)
    except (TypeError, ValueError):
        raise OptionError(f"{name} must be {LIST_OPTIONS[name]}; got {value!r}.") from None
