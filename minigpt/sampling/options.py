"""Generation options: their names (transformers' GenerationConfig's), defaults, valid ranges, and
which strategy uses which. A bad value or an option the chosen strategy cannot use is refused with
one sentence naming the parameter and what it accepts."""

import math
from dataclasses import dataclass, fields

from .processors import check_int, check_real

STRATEGIES = ("greedy", "sample", "beam", "beam-sample", "diverse-beam", "contrastive", "speculative")

# Options every strategy honours: lengths and the processors that penalise or constrain tokens.
COMMON = {"max_new_tokens", "min_new_tokens", "eos_token_id", "repetition_penalty", "frequency_penalty",
          "presence_penalty", "no_repeat_ngram_size", "bad_words_ids", "suppress_tokens", "logit_bias"}
# The processors that reshape the distribution a token is drawn from: only meaningful when sampling.
WARPERS = {"temperature", "top_k", "top_p", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff", "min_tokens_to_keep"}
BEAM = {"num_beams", "length_penalty", "early_stopping", "num_return_sequences"}
ACCEPTS = {
    "greedy": COMMON | {"stop"},
    "sample": COMMON | WARPERS | {"stop", "seed", "num_return_sequences"},
    "beam": COMMON | BEAM,
    "beam-sample": COMMON | BEAM | WARPERS | {"seed"},
    "diverse-beam": COMMON | BEAM | {"num_beam_groups", "diversity_penalty"},
    "contrastive": COMMON | {"stop", "top_k", "penalty_alpha"},
    "speculative": COMMON | WARPERS | {"stop", "seed", "draft_model", "num_assistant_tokens", "do_sample"},
}


class OptionError(ValueError):
    """A generation option with a bad value, or one the chosen strategy does not use."""


@dataclass(frozen=True)
class GenerationOptions:
    strategy: str = "greedy"
    max_new_tokens: int = 20
    min_new_tokens: int = 0
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
        """Options from keyword arguments: unknown names, options the strategy cannot use and
        values out of range are refused."""
        if strategy not in STRATEGIES:
            raise OptionError(f"strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}.")
        known = {f.name for f in fields(cls)} - {"strategy"}
        for name in given:
            if name not in known:
                raise OptionError(f"unknown generation option {name!r}; known options: {', '.join(sorted(known))}.")
            if name not in ACCEPTS[strategy]:
                users = [s for s in STRATEGIES if name in ACCEPTS[s]]
                raise OptionError(f"strategy {strategy!r} does not use {name}; it is an option of: {', '.join(users)}.")
        if "logit_bias" in given and given["logit_bias"] is not None:
            given["logit_bias"] = tuple(dict(given["logit_bias"]).items())
        for name in ("stop", "bad_words_ids", "suppress_tokens"):
            if isinstance(given.get(name), str):
                given[name] = (given[name],)
            if given.get(name) is not None:
                given[name] = tuple(tuple(x) if name == "bad_words_ids" else x for x in given[name])
        given = {k: v for k, v in given.items() if v is not None}
        options = cls(strategy=strategy, **given)
        options.validate()
        return options

    @property
    def sampling(self) -> bool:
        return self.strategy in ("sample", "beam-sample") or (self.strategy == "speculative" and self.do_sample)

    def validate(self):
        """The ranges of the strategy's own options. The processors' parameters (temperature, top_p,
        penalties, bans, ...) are checked where they are used, by the processors themselves."""
        for name in ("max_new_tokens", "min_new_tokens"):
            check_int(name, getattr(self, name), 0)
        for name in ("num_return_sequences", "num_beams", "num_beam_groups", "num_assistant_tokens", "min_tokens_to_keep"):
            check_int(name, getattr(self, name), 1)
        if self.seed is not None:
            check_int("seed", self.seed, 0)
        if self.eos_token_id is not None:
            check_int("eos_token_id", self.eos_token_id, 0)
        check_real("length_penalty", self.length_penalty, math.isfinite, "a finite number")
        check_real("diversity_penalty", self.diversity_penalty, lambda v: 0 <= v < math.inf, "a number >= 0")
        check_real("penalty_alpha", self.penalty_alpha, lambda v: 0 <= v <= 1, "in [0, 1]")
        if self.early_stopping not in (True, False, "never"):
            raise OptionError(f"early_stopping must be true, false or 'never', got {self.early_stopping!r}.")
        if not isinstance(self.do_sample, bool):
            raise OptionError(f"do_sample must be true or false, got {self.do_sample!r}.")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise OptionError("stop must be a list of non-empty strings.")
        self.validate_beams()

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

