"""The command line's text as values: argparse types that refuse in one line, and text from the OS; and what
it says on stderr while it works (a download's announcement, a progress bar).

What this module is not: the commands (main.py, plot.py, ...) or the options' declarations (core/link.py,
whose `Option.from_text` reads an option's flag; `argument_type` turns that into an argparse type).
"""

import argparse
import sys

from huggingface_hub.utils import tqdm

from ..core.link import read_number


def command_line_text(text: str) -> str:
    """Bytes the OS handed over that are not UTF-8 arrive as lone surrogates; make them U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def argument_type(parse, name: str):
    """parse(text) as an argparse type: its ValueError becomes argparse's one-line usage error; text it
    returns is cleaned of what the OS could not decode."""
    def convert(text: str):
        try:
            value = parse(command_line_text(text))
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        return command_line_text(value) if isinstance(value, str) else value

    convert.__name__ = name  # argparse names the type in its messages
    return convert


integer = argument_type(lambda text: read_number(text, int), "integer")
real = argument_type(read_number, "real")


def announce(line: str):
    """What the library reports before a long step (a download: what, how big, where), on stderr."""
    print(f"minigpt: {line}", file=sys.stderr, flush=True)


def progress_bar(unit: str, desc: str, total: int | None = None, quiet: bool = False):
    """A progress bar on stderr (huggingface_hub's tqdm), for a person watching: off when stderr is not a
    terminal, or quiet."""
    return tqdm(total=total, unit=unit, desc=desc, disable=quiet or not sys.stderr.isatty(), file=sys.stderr)
