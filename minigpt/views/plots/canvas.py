"""Where a picture is drawn and written: matplotlib (an optional extra, imported only when a picture is drawn),
a Figure, and the file it goes to, checked before any work; and what every picture shares: tokens as labels,
text that reads on any cell, the legend that names every mark.

Figures are built with matplotlib's object API (Figure, rendered by Agg when saved), never through pyplot:
nothing global changes, no window opens, and nothing needs closing. What this module is not: what the
pictures show (plots.py and the modules it gathers).
"""

from pathlib import Path

import numpy as np

from ...core.tokenizer import Tokenizer
from ..labels import token_label


class PlotsUnavailable(ImportError, ValueError):
    """matplotlib is missing. An ImportError for Python callers; a ValueError too, so that the command line
    reports it in one line like every other refusal."""


def require_matplotlib():
    """Import matplotlib, or say in one sentence how to install it."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PlotsUnavailable("plotting needs matplotlib, an optional extra: "
                               'install it with pip install -e ".[plots]".') from None


def check_out(out) -> Path:
    """The picture's path, refused in one sentence before any work if matplotlib could not write it there:
    a folder, a folder that does not exist, a format matplotlib cannot write, a file that cannot be written."""
    require_matplotlib()
    from matplotlib.backend_bases import FigureCanvasBase

    path, formats = Path(out), FigureCanvasBase.get_supported_filetypes()
    if path.is_dir():
        raise ValueError(f"{out} is a folder; give the picture a file name, such as {path / 'picture.png'}.")
    if not path.parent.is_dir():
        raise ValueError(f"cannot write {out}: the folder {path.parent} does not exist; create it first "
                         f"(mkdir -p {path.parent}) or write the picture elsewhere.")
    if path.suffix.lower().lstrip(".") not in formats:
        raise ValueError(f"cannot write {out}: matplotlib writes pictures as {', '.join('.' + f for f in formats)}, "
                         f"not {path.suffix or 'a file without an extension'}; end the name in .png, .svg or .pdf.")
    existed = path.exists()
    try:
        with open(path, "ab"):  # what savefig will do, tried now: nothing is written
            pass
    except OSError as e:
        raise ValueError(f"cannot write {out}: {e.strerror.lower()}; write the picture somewhere you may write "
                         "to.") from None
    if not existed:
        path.unlink()
    return path


def figure(width: float, height: float):
    """A new matplotlib Figure of width x height inches, laid out by the constrained layout engine."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def save(fig, out, dpi=100):
    """Write the figure to `out` and return it; out=None writes nothing (a notebook shows the returned Figure)."""
    if out is not None:
        fig.savefig(check_out(out), dpi=dpi)
    return fig


def token_text(tokenizer: Tokenizer, token: int, width: int = 12) -> str:
    """A token as a label, as the command line shows it (labels.token_label): its text made visible, bytes
    that are not whole UTF-8 as <hex>, an id outside GPT-2's vocabulary as #id, cut to `width` characters."""
    return token_label(tokenizer, token, width)


def text_colour(rgba) -> str:
    """Black or white, whichever reads better on a background colour (by its relative luminance)."""
    r, g, b = rgba[:3]
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "white"


def annotate_cells(ax, image, texts, fontsize):
    """Write texts [R, C] into the cells of an imshow image, black or white by the cell's colour."""
    values = image.get_array()
    for (r, c), text in np.ndenumerate(np.asarray(texts, dtype=object)):
        if text is None or np.ma.is_masked(values[r, c]):
            continue
        ax.text(c, r, text, ha="center", va="center", fontsize=fontsize,
                color=text_colour(image.cmap(image.norm(values[r, c]))))


def note(label: str):
    """A legend entry of text alone, no mark: a sentence that says how to read the picture."""
    from matplotlib.lines import Line2D

    return Line2D([], [], color="none", label=label)


def legend_outside(fig, handles, where: str = "lower center", columns: int = 1):
    """The legend that names every mark of the picture, outside the axes (the layout makes room for it)."""
    return fig.legend(handles=handles, loc=f"outside {where}", ncols=columns, fontsize=8, frameon=False,
                      handlelength=2.2, alignment="left")
