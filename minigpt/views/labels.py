"""How every view writes a token: one label for the command line, the pictures, the notebook and the page.

    " the"  -> ␣the        a space, a newline, a tab made visible: ␣ ↵ ⇥ (all in DejaVu Sans, matplotlib's font)
    b"\xf0" -> <0xF0>      a byte that is part of a UTF-8 character, as llama.cpp writes a byte token
    50300   -> #50300      an id beyond the tokenizer's vocabulary (a test model's)

What this module is not: the tokenizer (core/tokenizer.py), whose Tokenizer.token_texts are the tokens' own texts.
"""

from ..core.tokenizer import Tokenizer

WIDTH = 16  # the widest a token is shown in a table; longer ones end in …


def visible(text: str) -> str:
    """A text with its spaces, newlines and tabs made visible: ␣, ↵, ⇥."""
    return text.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥")


def shown_bytes(data: bytes) -> str:
    """Bytes as visible text: whole UTF-8 characters as themselves, every other byte as <0xF0>."""
    text = data.decode("utf-8", errors="surrogateescape")  # a byte that is no character: U+DC80 + byte
    return visible("".join(f"<0x{ord(c) - 0xDC00:02X}>" if 0xDC80 <= ord(c) <= 0xDCFF else c for c in text))


def cut(text: str, width: int | None) -> str:
    """The text, or its first width - 1 characters and an ellipsis."""
    return text if width is None or len(text) <= width else text[: width - 1] + "…"


def token_label(tok: Tokenizer, token_id: int, width: int | None = None) -> str:
    """A token id as every view shows it (see the module docstring), cut to `width` characters."""
    return cut(shown_bytes(tok.token_bytes(token_id)) if token_id < tok.n_vocab else f"#{token_id}", width)
