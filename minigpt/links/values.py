"""Option values with a structure: lists of texts, lists of token ids, token -> bias maps, as given from Python or
the command line, checked for their shape before any link reads them.

Each `as_*` takes (option, value as given) and returns a tuple (hashable, so that the options of a call are), or
refuses in the words of option.valid; the link that reads the option checks what is inside (ids in range,
finite biases). The `parse_*` read one command-line flag's text.

What this module is not: the declarations of the options (beside the links that read them) or their ranges
(core/link.py's Option checks numbers itself).
"""


import numpy as np

from ..core.checks import OptionError, check_int, is_integer
from ..core.link import Option


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


def parse_sequence_bias(text: str) -> tuple[str, float]:
    """ " New York=-5" -> (" New York", -5.0): the text is what comes before the last '='."""
    sequence, _, bias = text.rpartition("=")
    try:
        if not sequence:
            raise ValueError
        return sequence, float(bias)
    except ValueError:
        raise ValueError(f"expected TEXT=BIAS such as ' New York=-5', got {text!r}") from None


def as_token_ids(parameter, token_ids) -> list[int]:
    """One list of token ids (a list, tuple, range or 1-D array of integers >= 0) as Python ints; otherwise
    OptionError naming `parameter` (a name or a Named setting). The one test of "is this a list of token ids"
    that every caller uses."""
    if isinstance(token_ids, np.ndarray):
        if token_ids.ndim != 1:
            raise OptionError("{p} must be a list of integer token ids, got an array of shape {shape}.", p=parameter,
                              shape=token_ids.shape)
        token_ids = token_ids.tolist()
    if isinstance(token_ids, (str, bytes, dict)) or not hasattr(token_ids, "__iter__"):
        raise OptionError("{p} must be a list of integer token ids, got {value}.", p=parameter,
                          value=repr(token_ids)[:80])
    token_ids = list(token_ids)
    if not all(is_integer(i) and i >= 0 for i in token_ids):
        raise OptionError("{p} must hold integer token ids >= 0, got {value}.", p=parameter, value=repr(token_ids)[:80])
    return [int(i) for i in token_ids]


def is_token_list(value) -> bool:
    """Whether a value is shaped like one list of token ids (as opposed to a list of such lists)."""
    return isinstance(value, (list, tuple, range, np.ndarray)) and not any(
        isinstance(v, (list, tuple, range, np.ndarray)) for v in value)


def check_token_ids(parameter, token_ids, vocab_size):
    """Raise ValueError naming the ids outside [0, vocab_size)."""
    outside = sorted({int(i) for i in token_ids if not 0 <= i < vocab_size})
    if outside:
        raise OptionError("{p} has token ids outside [0, {vocab}): {outside}.", p=parameter, vocab=vocab_size,
                          outside=repr(outside))


def refuse(option: Option, value) -> ValueError:
    """ "suppress_tokens must be a list of token ids, such as [198, 50256], got 'x'."  """
    return option.refusal(value, option.valid)


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


def as_sequence_bias(option: Option, value) -> tuple:
    """A dict {token sequence or text: bias}, or (sequence or text, bias) pairs -> a tuple of pairs, a sequence
    as a tuple of ids (or as its text), each once: given twice, its last bias counts."""
    try:
        items = value.items() if isinstance(value, dict) else value
        pairs = [(key if isinstance(key, str) else tuple(key), bias) for key, bias in items]
    except (TypeError, ValueError):
        raise refuse(option, value) from None
    if not pairs or any(not isinstance(key, str) and not is_token_list(key) or not key for key, _ in pairs):
        raise refuse(option, value)
    return tuple(dict(pairs).items())


def check_prompt_length(value) -> int:
    return check_int("prompt_length", value, 0)
