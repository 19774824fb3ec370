"""Checking a value before it is used: each refusal is one sentence that names the value and what it takes.

Every layer above checks its input with these few functions, so that a bad number, a bad list of token
ids or an id outside the vocabulary is refused in the same words wherever it is given. They raise
ValueError; nothing here prints or exits. number() and plural() write a count or a bound the way every
message and view of the package writes it.

What this module is not: the declarations of the generation options (link.py holds `Option`, which uses these
checks), the checks of lists of token ids given as options (links/values.py) or of a checkpoint (weights/).
"""

import math
from numbers import Integral, Real

import numpy as np


def number(x: float) -> str:
    """1e+09 -> 1e9, 0.001 -> 0.001: a range bound as a person writes it."""
    return f"{x:g}".replace("e+0", "e").replace("e-0", "e-").replace("e+", "e")


def plural(n: int, noun: str, grouped: bool = False) -> str:
    """ "1 token", "2 tokens"; grouped, the thousands marked: "12,345 tokens"."""
    return (f"{n:,}" if grouped else f"{n}") + f" {noun}" + ("" if n == 1 else "s")


def is_integer(value) -> bool:
    """A Python or NumPy integer, not a bool."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def check_real(parameter, value, ok, valid):
    """A real number for which ok(value) holds, as a Python float; otherwise ValueError naming the range."""
    if not isinstance(value, Real) or isinstance(value, bool) or math.isnan(value) or not ok(value):
        raise ValueError(f"{parameter} must be {valid}, got {value!r}.")
    return float(value)


def check_int(parameter, value, minimum):
    """An integer >= minimum, as a Python int; otherwise ValueError."""
    if not is_integer(value) or value < minimum:
        raise ValueError(f"{parameter} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def check_vocabulary(ids, vocab_size: int):
    """Every token id must index the embedding matrix: 0 <= id < vocab_size."""
    ids = np.asarray(ids)
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        bad = ids[(ids < 0) | (ids >= vocab_size)][0]
        raise ValueError(f"token id {bad} is outside the model's vocabulary of vocab_size={vocab_size} (ids 0 to "
                         f"{vocab_size - 1}); give ids below {vocab_size}, or text to a model with GPT-2's full "
                         f"vocabulary of 50257 tokens.")
