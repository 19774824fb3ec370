"""The command line's text as values: argparse types that refuse in one line, and text from the OS; and what
it says on stderr while it works (a download's announcement, a progress bar).

What this module is not: the commands (main.py, plot.py, ...) or the options' declarations (core/link.py,
whose `Option.from_text` reads an option's flag; `argument_type` turns that into an argparse type).
"""

import argparse
import sys
from pathlib import Path

from huggingface_hub.utils import tqdm

from ..call.strategies import strategy_defaults
from ..core.checks import number
from ..core.link import Option, read_number
from ..core.model import GPT2
from ..weights import hub
from ..weights.checkpoint import load

MODEL_HELP = ("a name (gpt2, gpt2-medium, gpt2-large, gpt2-xl, distilgpt2; or tiny, a small model that ships with "
              "minigpt and needs no download), a hub repo id, a folder or a .safetensors file")


def add_option(group, option: Option, default=argparse.SUPPRESS):
    """One declared option as a flag, its help and range from the declaration: only what the user gives is passed
    on (argparse.SUPPRESS), unless a command gives a default of its own."""
    shown = option.default if default is argparse.SUPPRESS else default  # the library's, wherever it is used
    off = "0 = off" in option.help  # the help says what 0 means: no "default 0", no second "(0 turns it off)"
    said = shown is None or shown is False or isinstance(shown, tuple) or (off and shown == 0)  # in the help already
    text = number(shown) if isinstance(shown, float) else str(shown).lower() if isinstance(shown, bool) else shown
    ranged = [] if option.low is None else [option.accepts.removesuffix(f" {option.note}" if off else "")]
    facts = ([] if said else [f"default {text}"]) + ([own] if (own := strategy_defaults(option)) else []) + ranged
    help = option.help + (f" ({'; '.join(facts)})" if facts else "")
    if option.kind is bool:
        group.add_argument(option.flag, dest=option.name, action="store_true", default=default, help=help)
        return
    group.add_argument(option.flag, dest=option.name, type=argument_type(option.from_text, option.name),
                       action="append" if option.repeat else "store", default=default, help=help,
                       metavar=option.metavar or ("N" if option.kind is int else "X"))


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


def add_model(parser, default: str = "gpt2"):
    """--model and --verbose, which every command that reads a model takes."""
    parser.add_argument("--model", default=default, help=MODEL_HELP)
    parser.add_argument("--verbose", action="store_true", help="say on stderr which folder the weights are read from "
                                                               "(generate: and which strategy and seed it uses)")


def model_from(args, name: str | None = None) -> tuple[GPT2, Path]:
    """The model --model (or `name`) names, and the folder or file it was read from: a download is announced on
    stderr, and with --verbose the folder read."""
    path = hub.resolve(name or args.model, report=announce).absolute()
    if getattr(args, "verbose", False):
        announce(f"weights from {path}")
    return load(path), path


def announce(line: str):
    """What the library reports before a long step (a download: what, how big, where), on stderr."""
    print(f"minigpt: {line}", file=sys.stderr, flush=True)


def progress_bar(unit: str, desc: str, total: int | None = None, quiet: bool = False):
    """A progress bar on stderr (huggingface_hub's tqdm), for a person watching: off when stderr is not a
    terminal, or quiet."""
    return tqdm(total=total, unit=unit, desc=desc, disable=quiet or not sys.stderr.isatty(), file=sys.stderr)
