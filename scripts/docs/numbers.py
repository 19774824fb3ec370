"""Recorded outputs compared as numbers, not as text: two texts are the same when their words are, and each of their
numbers differs by no more than float32's differences between machines (another BLAS kernel sums in another
order). The notebooks (run_notebook.py), the docs' printed examples and the tests use it; it needs nothing but
Python, so a test can use it without the notebook extra.
"""

import re

# A number as a text prints it: -2.4643, 0.0001, 3e-06, 50 (a count, a colour's hue, a percentage).
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
RELATIVE = 1e-5  # float32 results of another BLAS kernel differ by far less than this (~1e-6)
ABSOLUTE = 1e-6  # and a small result of large terms (a part of a logit near 0) by a few ulps of the terms: ~1e-7


def last_digit(text: str) -> float:
    """The value of one unit in the last printed digit of a number: "-2.4643" -> 1e-4, "3e-06" -> 1e-6, "50" -> 1."""
    mantissa, _, exponent = text.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def same_text(ours: str, theirs: str) -> bool:
    """Equal texts, but that each number may differ by one unit in its last printed digit, plus RELATIVE of its
    size, plus ABSOLUTE: float32 sums run in another order by another BLAS kernel differ in the 7th digit, which can
    flip a number rounded for display ("log p -2.4643" / "-2.4644"), and a small number summed from large terms
    keeps the terms' rounding (a part of a logit: 0.0013655573 / 0.0013654977 from terms near 0.5)."""
    if NUMBER.split(ours) != NUMBER.split(theirs):  # the words, the markup: everything but the numbers
        return False
    pairs = zip(NUMBER.findall(ours), NUMBER.findall(theirs))
    return all(abs(float(a) - float(b)) <= max(last_digit(a), last_digit(b)) * 1.000001
               + RELATIVE * max(abs(float(a)), abs(float(b))) + ABSOLUTE for a, b in pairs)
