"""A link of the sampler chain: the contract every processor keeps, and how it declares its options.

A processor maps (scores [B, V] float32, ids [B, t] int64) to a NEW float32 [B, V] array, never touching
its input; a token it rules out gets -inf. `ids` is every token so far: the left-padded prompt, then the
tokens generated since. Each processor names the options it reads (`options`) and builds itself from
them (`from_options`), returning None when they leave it neutral, so the chain lists only what acts.

An `Option` is declared once, beside the code that reads it: its name (transformers' GenerationConfig
name where there is one), default, type and range, the strategies that use it, the group it belongs to
and a one-line help. The options dataclass, its refusals, the command line's flags and --help, and the
README's list all derive from these declarations (options.py, cli.py, tests/test_options_registry.py).

What this module is not: any processor (processors.py, penalties.py, llama_samplers.py) or the chain.
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .checks import check_int, check_real, is_integer, number

NEG_INF = np.float32(-np.inf)

# The strategies by name; the functions behind them are looked up in generate.py.
STRATEGIES = ("greedy", "sample", "beam", "beam-sample", "diverse-beam", "contrastive", "speculative")
EVERY_STRATEGY = STRATEGIES
SAMPLING = ("sample", "beam-sample", "speculative")  # the strategies that draw (speculative with do_sample)
BEAMS = ("beam", "beam-sample", "diverse-beam")
LLAMA_SAMPLERS = "llama.cpp samplers"
GROUPS = {  # where --help and the README list an option, in this order, with what the group is for
    "strategy": "how the next token is chosen, and each strategy's own settings",
    "output": "how much to generate, when to stop, what to show",
    "penalties": "every strategy: penalise or ban tokens",
    "warpers": "sampling only: reshape the distribution a token is drawn from, in this order",
    LLAMA_SAMPLERS: "llama.cpp's samplers: DRY for every strategy, the others when sampling",
    "guidance and DoLa": "greedy and sample: what the chain starts from instead of the model's logits",
}


def parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"expected a whole number such as 40, got {text!r}") from None


def parse_real(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"expected a number such as 0.7, got {text!r}") from None


def parse_ids(text: str) -> list[int]:
    """ "12,345" -> [12, 345]."""
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"expected comma-separated token ids, got {text!r}") from None


def parse_bias(text: str) -> tuple[int, float]:
    """ "50256=-inf" -> (50256, -inf)."""
    token, _, bias = text.partition("=")
    try:
        return int(token), float(bias)
    except ValueError:
        raise ValueError(f"expected TOKEN=BIAS such as 50256=-100, got {text!r}") from None


@dataclass(frozen=True)
class Option:
    """One generation option, declared once. A value equal to the default is always accepted (it is what
    "off" means, even where it lies outside the range, as typical_p = 1); any other must be in range."""
    name: str
    default: object
    help: str  # one line, for --help and the README
    group: str  # one of GROUPS
    strategies: tuple[str, ...]  # the strategies that use it; the others refuse it
    kind: type = float  # int, float, bool, or object for a structured value (checked by `normalise`)
    low: float | None = None
    high: float | None = None
    ends: str = "[]"  # which bounds are included: "[]", "(]", "[)" or "()"
    note: str = ""  # said after the range in a refusal: "(0 turns it off)"
    valid: str = ""  # what the value takes, in words, where the range does not say it
    normalise: Callable | None = None  # kind object: (option, value as given) -> its canonical form, or ValueError
    parse: Callable | None = None  # the command line: one flag's text -> the value (default: by kind)
    metavar: str = ""
    repeat: bool = False  # the flag may be given several times, each adding to a list
    flag_name: str = ""  # the flag, when it is not --name-with-dashes
    encode: bool = False  # the flag takes text, which the command line encodes into token ids

    @property
    def flag(self) -> str:
        return self.flag_name or "--" + self.name.replace("_", "-")

    @property
    def accepts(self) -> str:
        """What the option takes, as its refusal says it."""
        if self.valid:
            text = self.valid
        elif self.kind is bool:
            text = "true or false"
        elif self.kind is int:
            text = f"an integer >= {self.low}" if self.high is None else f"an integer in [{self.low}, {self.high}]"
        elif self.high is None:
            text = f"a number {'>' if self.ends[0] == '(' else '>='} {number(self.low)}"
        else:
            text = f"a number in {self.ends[0]}{number(self.low)}, {number(self.high)}{self.ends[1]}"
        return f"{text} {self.note}" if self.note else text

    def within(self, v) -> bool:
        low_ok = self.low is None or (v > self.low if self.ends[0] == "(" else v >= self.low)
        return low_ok and (self.high is None or (v < self.high if self.ends[1] == ")" else v <= self.high))

    def check(self, value, default_ok: bool = True):
        """The value in its canonical form (a Python int or float, a tuple), or ValueError in one sentence."""
        if self.normalise is not None:
            return value if default_ok and value is self.default else self.normalise(self, value)
        if value is None and self.default is None and default_ok:
            return None
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ValueError(f"{self.name} must be {self.accepts}, got {value!r}.")
            return value
        if self.kind is int:
            if not is_integer(value) or not (default_ok and value == self.default or self.within(value)):
                raise ValueError(f"{self.name} must be {self.accepts}, got {value!r}.")
            return int(value)
        return check_real(self.name, value, lambda v: default_ok and v == self.default or self.within(v), self.accepts)

    def from_text(self, text: str):
        """The command line's text for this option -> its value (a ValueError says what was expected)."""
        if self.parse is not None:
            return self.parse(text)
        return parse_int(text) if self.kind is int else parse_real(text)


class LogitsProcessor:
    """Base of every processor: `name`, the `options` it reads, and a repr `name(param=value, ...)`."""

    name = "processor"
    options: tuple[Option, ...] = ()

    def params(self):
        return {}

    def __repr__(self):
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in self.params().items())})"


@dataclass
class ChainSetting:
    """What a chain is built for, besides the options: the prompt batch and the run."""
    prompt_length: int  # the width of the left-padded prompts: generated tokens start here
    eos_token_id: int
    vocab_size: int | None  # None: skip the vocabulary check of ids given in options (ranges are checked)
    pad_lengths: list[int] | None = None  # each row's left padding, which the penalties skip
    tokenizer: object = None  # turns DRY's sequence breakers into tokens (none given: DRY runs without them)
    rng: np.random.Generator | None = None  # the run's seeded generator: XTC and the draw take from it
    rows: int = 1  # the batch rows the chain serves (mirostat keeps a state per row)
    pad_token_id: int = 0  # what a finished row is fed: the draw gives it to a row with nothing left


def check_prompt_length(value) -> int:
    return check_int("prompt_length", value, 0)


# ----------------------------------------------------------------------------- structured values
# Each takes (option, value as given) and returns a tuple, or refuses in the words of option.valid.
# They check the shape only; the processor that reads the option checks what is inside.


def refuse(option: Option, value) -> ValueError:
    return ValueError(f"{option.name} must be {option.valid}; got {value!r:.80}.")


def is_list(value) -> bool:
    return isinstance(value, (list, tuple, range, np.ndarray)) or (
        hasattr(value, "__iter__") and not isinstance(value, (str, bytes, dict)))


def as_text_or_texts(option: Option, value) -> tuple:
    """One text, or a list of texts -> a tuple of them."""
    return (value,) if isinstance(value, str) else as_texts(option, value)


def as_texts(option: Option, value) -> tuple:
    """A list of texts -> a tuple of them."""
    if isinstance(value, (str, bytes, dict)) or not is_list(value):
        raise refuse(option, value)
    return tuple(value)


def as_token_tuple(option: Option, value) -> tuple:
    """A list of token ids -> a tuple (the processor checks the ids)."""
    if isinstance(value, (str, bytes, dict)) or not is_list(value):
        raise refuse(option, value)
    return tuple(value)


def as_token_tuples(option: Option, value) -> tuple:
    """A list of token-id lists -> a tuple of tuples."""
    if isinstance(value, (str, bytes, dict)) or not is_list(value):
        raise refuse(option, value)
    if not all(is_list(seq) and not isinstance(seq, (str, bytes, dict)) for seq in value):
        raise refuse(option, value)
    return tuple(tuple(seq) for seq in value)


def as_bias_pairs(option: Option, value) -> tuple:
    """A dict {token id: bias}, or (token id, bias) pairs -> a tuple of pairs, each token once."""
    try:
        items = value.items() if isinstance(value, dict) else value
        pairs = tuple((token, bias) for token, bias in items)
    except (TypeError, ValueError):
        raise refuse(option, value) from None
    if len(dict(pairs)) < len(pairs):  # a token given twice
        raise refuse(option, value)
    return pairs
