"""Where a picture is drawn and written: matplotlib (an optional extra, imported only when a picture is drawn),
a Figure, and the file it goes to, checked before any work.

Figures are built with matplotlib's object API (Figure, rendered by Agg when saved), never through pyplot:
nothing global changes, no window opens, and nothing needs closing. What this module is not: what the
pictures show (plots.py).
"""

from pathlib import Path


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
    fig.savefig(check_out(out), dpi=dpi)
    return fig
