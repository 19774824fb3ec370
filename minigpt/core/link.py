"""A link of the sampler chain: the contract every processor keeps, and how it declares its options.

A processor maps (scores [B, V] float32, ids [B, t] int64) to a NEW float32 [B, V] array, never touching
its input; a token it rules out gets -inf. `ids` is every token so far: the left-padded prompt, then the
tokens generated since. A processor is a dataclass: a docstring with its formula and its reference, its
fields, and `__call__` with the arithmetic. A field that holds an option says so (`p: float = reads(TOP_P)`);
the others come, by name, from the ChainSetting the chain is built for (core/chain.py). `from_options`
builds any link the same way, None when its options leave it neutral.

An `Option` is declared once, beside the code that reads it: its name (transformers' GenerationConfig name
where there is one), default, type and range, the group --help lists it in, a one-line help, and which
strategies use it, by what they do (`Trait`; each strategy's record says what it does). The options of a
call, the command line's flags and --help, and the docs' table of options all derive from the declarations.

What this module is not: any processor (links.py, and the links/ ring), or the chain (chain.py).
"""

import math
from dataclasses import MISSING, Field, dataclass, field, fields
from enum import Flag
from numbers import Real
from typing import Callable, ClassVar

import numpy as np

from .checks import UNSET, Named, OptionError, is_integer, number

NEG_INF = np.float32(-np.inf)


class Trait(Flag):
    """What a strategy does, as far as its options care. An option used by strategies that SAMPLE is refused
    by one that does not; EVERY (no trait) is every strategy's."""
    EVERY = 0
    SAMPLES = 1  # draws its tokens: sample, beam-sample, speculative with do_sample
    STREAMS = 2  # one token per row per step, so stop strings apply: greedy, sample, contrastive, speculative
    KEEPS_BEAMS = 4  # beam, beam-sample, diverse-beam
    CHOOSES = 8  # the chain's own chooser picks each token from a score source: greedy and sample


GROUPS = {  # where --help and the docs list an option, in this order, with what the group is for
    "strategy": "how the next token is chosen, and each strategy's own settings",
    "output": "how much to generate, when to stop, what to show",
    "penalties": "every strategy: penalise or ban tokens",
    "warpers": "sampling only: reshape the distribution a token is drawn from, in this order",
    "llama.cpp samplers": "llama.cpp's samplers: DRY for every strategy, the others when sampling",
    "the chain's end": "every strategy, after every other link: the watermark, then renormalisation",
    "guidance and DoLa": "greedy and sample: what the chain starts from instead of the model's logits"}


@dataclass(frozen=True)
class Option:
    """One generation option, declared once. A value equal to the default is always accepted (it is what
    "off" means, even where it lies outside the range, as typical_p = 1); any other must be in range."""
    name: str
    default: object
    help: str  # one line, for --help and the docs
    group: str  # one of GROUPS
    used_by: Trait | None = Trait.EVERY  # the strategies that do this use it; None: those that list it as their own
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
    python_only: bool = False  # no flag: a value only Python can give (a function)

    @property
    def flag(self) -> str:
        return self.flag_name or "--" + self.name.replace("_", "-")

    def said(self, value=UNSET) -> Named:
        """The option as a refusal names it (with a value: as a setting to make)."""
        return Named(self.name, self.flag, value)

    def refusal(self, value, accepts: str = "") -> OptionError:
        """ "top_p must be a number in (0, 1], got 2.": what the option takes, and what it was given."""
        return OptionError("{option} must be {accepts}, got {value}.", option=self.said(),
                           accepts=accepts or self.accepts, value=repr(value)[:80])

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
        ok = (default_ok and value == self.default) or self.within(value) if isinstance(value, Real) else False
        if self.kind is bool:
            ok = isinstance(value, bool)
        elif self.kind is int:
            ok = ok and is_integer(value)
        else:
            ok = ok and not isinstance(value, bool) and not math.isnan(value)
        if not ok:
            raise self.refusal(value)
        return value if self.kind is bool else self.kind(value)

    def from_text(self, text: str):
        """The command line's text for this option -> its value (a ValueError says what was expected)."""
        return self.parse(text) if self.parse is not None else read_number(text, self.kind)


def read_number(text: str, kind: type = float):
    """A number as the command line gives it: "40" -> 40 (kind int), "0.7" -> 0.7; else ValueError."""
    try:
        return int(text) if kind is int else float(text)
    except ValueError:
        raise ValueError(f"expected {'a whole number such as 40' if kind is int else 'a number such as 0.7'}, "
                         f"got {text!r}") from None


def reads(option: Option, default=MISSING, kw_only: bool = False):
    """A link's field that holds an option's value, `p: float = reads(TOP_P)`: the one place that ties them."""
    return field(default=default, kw_only=kw_only, metadata={"option": option})


@dataclass(repr=False)
class Link:
    """Every processor's base: its `name`; the options it reads, found in its fields (`reads`), its own first
    and then those of its bases; the generic construction from a call's options (`from_options`), the check of
    each option field, and a repr `name(field=value, ...)`."""

    name: ClassVar[str] = "link"
    options: ClassVar[tuple[Option, ...]] = ()  # derived: the options of the fields that read one
    option_fields: ClassVar[dict[str, Option]] = {}  # field name -> the option it holds, in that order

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own = {name: value.metadata["option"] for name, value in vars(cls).items()
               if isinstance(value, Field) and "option" in value.metadata}
        cls.option_fields = own | {name: o for name, o in cls.option_fields.items() if name not in own}
        cls.options = tuple(cls.option_fields.values())

    @classmethod
    def acts(cls, values: dict, setting) -> bool:
        """Whether the options turn it on: by default, its first option is not at its default."""
        return values[cls.options[0].name] != cls.options[0].default

    @classmethod
    def from_options(cls, values: dict, setting) -> "Link | None":
        """The link for a call's option values (by name) and its ChainSetting, whose attributes fill the other
        fields of the same names; None when it would not act."""
        if not cls.acts(values, setting):
            return None
        given = {f.name: getattr(setting, f.name) for f in fields(cls) if f.init and hasattr(setting, f.name)}
        return cls(**given | {name: values[option.name] for name, option in cls.option_fields.items()})

    def __post_init__(self):
        for i, (name, option) in enumerate(self.option_fields.items()):  # the first option must be in range
            setattr(self, name, option.check(getattr(self, name), default_ok=i > 0))

    def params(self) -> dict:
        """The option fields by name (but those left at a default of None): what the chain's description shows."""
        return {name: getattr(self, name) for name, o in self.option_fields.items()
                if not (getattr(self, name) is None and o.default is None)}

    def __repr__(self):
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in self.params().items())})"
