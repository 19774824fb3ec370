"""Run a notebook of docs/ top to bottom in a real Jupyter kernel, offline, and save its outputs.

    pip install -e ".[notebook]"
    python -m scripts.docs.run_notebook                 # docs/decoding_strategies.ipynb, on the model it picks
    python -m scripts.docs.run_notebook --model tiny    # the model of the committed outputs
    python -m scripts.docs.run_notebook docs/inside_the_model.ipynb    # the second lesson (always on tiny)
    python -m scripts.docs.run_notebook --check         # run, and save nothing: exit 1 if a cell failed

The file is rewritten only when a cell's outputs differ from the committed ones by more than float32's
differences between machines (`same_text`): a rerun on another CPU leaves it as it is.

The kernel runs this checkout's minigpt (PYTHONPATH), in a clean environment: no MINIGPT_* or HF_* setting of
the caller's (so no other weights folder, no hub endpoint), HF_HUB_OFFLINE=1, and MINIGPT_NOTEBOOK_MODEL set to
--model when given. tests/views/test_notebook.py runs the notebook through `execute` below and compares the outputs
with the committed ones.
"""

import argparse
import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from .numbers import RELATIVE, same_text

ROOT = Path(__file__).resolve().parents[2]  # the checkout
NOTEBOOK = ROOT / "docs" / "decoding_strategies.ipynb"
NOTEBOOKS = (NOTEBOOK, ROOT / "docs" / "inside_the_model.ipynb")  # the lessons, in their order
CALLERS_SETTINGS = ("HF_", "HUGGINGFACE_", "MINIGPT_", "PYTHON", "MPL")  # what would change what the notebook does
TIMEOUT = 600  # seconds a cell may take



def clean_environment(model: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(CALLERS_SETTINGS)
           and not k.lower().endswith("_proxy")}
    env |= {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    return env | ({"MINIGPT_NOTEBOOK_MODEL": model} if model else {})


def execute(path: Path = NOTEBOOK, model: str | None = None, timeout: int = TIMEOUT):
    """The notebook at `path`, run in a fresh python3 kernel from its own folder; raises on a failing cell."""
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:  # a rerun on the same model changes nothing in the file: no timings kept
        cell.metadata.pop("execution", None)
    client = NotebookClient(notebook, kernel_name="python3", timeout=timeout, record_timing=False,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=clean_environment(model))
    return notebook


def outputs(notebook) -> list[list[tuple]]:
    """Each code cell's outputs as they read: (name, text) for stream text (consecutive pieces of one stream joined:
    the kernel chunks them by timing), text/plain and text/html; a picture as ("picture",), since its bytes depend
    on matplotlib's version and fonts. Counts and metadata are left out."""
    cells = []
    for cell in (c for c in notebook.cells if c.cell_type == "code"):
        shown = []
        for o in cell.outputs:
            if o.output_type == "stream" and shown and shown[-1][0] == o.name:  # one stream, however it was chunked
                shown[-1] = (o.name, shown[-1][1] + o.text)
            elif o.output_type == "stream":
                shown.append((o.name, o.text))
            elif "image/png" in o.get("data", {}):
                shown.append(("picture",))
            elif o.output_type in ("display_data", "execute_result"):
                shown += [(kind, text) for kind, text in sorted(o.data.items())]
            else:
                shown.append((o.output_type,))
        cells.append(shown)
    return cells


def differences(committed, fresh) -> list[str]:
    """The code cells whose outputs differ beyond same_text's tolerance, named by number (from 0)."""
    ours, theirs = outputs(committed), outputs(fresh)
    if len(ours) != len(theirs):
        return [f"{len(ours)} code cells against {len(theirs)}"]
    return [f"code cell {i}" for i, (a, b) in enumerate(zip(ours, theirs))
            if len(a) != len(b) or not all(x[0] == y[0] and same_text("".join(x[1:]), "".join(y[1:]))
                                           for x, y in zip(a, b))]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Run a notebook of docs/ and save its outputs.")
    p.add_argument("notebook", nargs="?", type=Path, default=NOTEBOOK,
                   help=f"the notebook (default {NOTEBOOK.relative_to(ROOT)}; the lessons: "
                        f"{', '.join(str(n.relative_to(ROOT)) for n in NOTEBOOKS)})")
    p.add_argument("--model", help="tiny or gpt2 (default: gpt2 if its weights are found, else tiny), for a notebook "
                                   "that reads MINIGPT_NOTEBOOK_MODEL")
    p.add_argument("--check", action="store_true", help="run it, save nothing")
    args = p.parse_args(argv)
    path = args.notebook.resolve()
    notebook = execute(path, args.model)
    if args.check:
        return 0
    changed = differences(nbformat.read(path, as_version=4), notebook)
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    if not changed:  # the same, within float32's differences between machines: leave the committed file alone
        print(f"{name} is unchanged: its outputs equal a fresh run's within {RELATIVE} and the last printed digit")
        return 0
    nbformat.write(notebook, path)
    print(f"wrote {name} ({', '.join(changed)} changed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
