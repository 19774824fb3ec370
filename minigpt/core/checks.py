"""Checking a value before it is used: each refusal is one sentence that names the value and what it takes.

Every layer above checks its input with these few functions, so that a bad number, a bad list of token
ids or an id outside the vocabulary is refused in the same words wherever it is given. They raise
ValueError; nothing here prints or exits. number() and plural() write a count or a bound the way every
message and view of the package writes it.

What this module is not: the declarations of the generation options (link.py holds `Option`, which uses these
checks), the checks of lists of token ids given as options (links/values.py) or of a checkpoint (weights/).
"""

import math
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np


def number(x: float) -> str:
    """1e+09 -> 1e9, 0.001 -> 0.001: a range bound as a person writes it."""
    return f"{x:g}".replace("e+0", "e").replace("e-0", "e-").replace("e+", "e")


def chance(p: float, digits: int = 4) -> str:
    """A probability as every view writes it: 0.3182, and a rare one as 3.2e-6 rather than 0.0000."""
    return f"{p:.1e}".replace("e-0", "e-") if 0 < abs(p) < 1e-3 else f"{p:.{digits}f}"


def plural(n: int, noun: str, grouped: bool = False) -> str:
    """ "1 token", "2 tokens"; grouped, the thousands marked: "12,345 tokens"."""
    return (f"{n:,}" if grouped else f"{n}") + f" {noun}" + ("" if n == 1 else "s")


UNSET = object()  # Named.value when a sentence names an option without a value


@dataclass(frozen=True)
class Named:
    """A setting as a sentence names it: by its Python name or by its command-line flag, with a value if given."""
    name: str
    flag: str
    value: object = UNSET

    def spelled(self, flags: bool) -> str:
        if self.value is UNSET:
            return self.flag if flags else self.name
        if flags:
            return self.flag if self.value is True else f"{self.flag} {self.value}"
        return f"{self.name}={self.value!r}"


@dataclass(frozen=True)
class Phrase:
    """Words that name settings: a template whose Named (or Phrase) fields are spelled for the reader."""
    template: str
    fields: dict

    def spelled(self, flags: bool) -> str:
        return self.template.format(**{key: spell(value, flags) for key, value in self.fields.items()})


def phrase(template: str, **fields) -> Phrase:
    return Phrase(template, fields)


def joined(items, separator: str = ", ") -> Phrase:
    """Named settings (or words) one after the other: "top_k, top_p" or "--top-k, --top-p"."""
    return Phrase(separator.join(f"{{w{i}}}" for i in range(len(items))), {f"w{i}": v for i, v in enumerate(items)})


def spell(value, flags: bool):
    """A field of a refusal: a Named setting or a Phrase spelled for its reader, a list of them as "a, b or c"."""
    if isinstance(value, (Named, Phrase)):
        return value.spelled(flags)
    if isinstance(value, list):
        words = [spell(v, flags) for v in value if v]
        return " or ".join(filter(None, [", ".join(words[:-1]), words[-1] if words else ""]))
    return value


class OptionError(ValueError):
    """A refusal that names settings. Its sentence reads in Python's words (str(error): "top_k", "strategy=
    'sample'") or in the command line's (error.in_flags(): "--top-k", "--strategy sample"): the command line
    prints the latter, and rewrites no sentence."""

    def __init__(self, template: str, **fields):
        self.phrase = Phrase(template, fields)
        super().__init__(self.phrase.spelled(flags=False))

    def in_flags(self) -> str:
        return self.phrase.spelled(flags=True)


def is_integer(value) -> bool:
    """A Python or NumPy integer, not a bool."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def check_real(parameter, value, ok, valid):
    """A real number for which ok(value) holds, as a Python float; otherwise OptionError naming the range.
    parameter: a name, or the Named setting (or Phrase) that the refusal names."""
    if not isinstance(value, Real) or isinstance(value, bool) or math.isnan(value) or not ok(value):
        raise OptionError("{parameter} must be {valid}, got {value}.", parameter=parameter, valid=valid,
                          value=repr(value))
    return float(value)


def check_int(parameter, value, minimum):
    """An integer >= minimum, as a Python int; otherwise OptionError."""
    if not is_integer(value) or value < minimum:
        raise OptionError("{parameter} must be an integer >= {minimum}, got {value}.", parameter=parameter,
                          minimum=minimum, value=repr(value))
    return int(value)


def check_vocabulary(ids, vocab_size: int):
    """Every token id must index the embedding matrix: 0 <= id < vocab_size."""
    ids = np.asarray(ids)
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        bad = ids[(ids < 0) | (ids >= vocab_size)][0]
        raise ValueError(f"token id {bad} is outside the model's vocabulary of vocab_size={vocab_size} (ids 0 to "
                         f"{vocab_size - 1}); give ids below {vocab_size}, or text to a model with GPT-2's full "
                         f"vocabulary of 50257 tokens.")
