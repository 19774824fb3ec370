"""Run docs/decoding_strategies.ipynb top to bottom in a real Jupyter kernel, offline, and save its outputs.

    pip install -e ".[notebook]"
    python scripts/run_notebook.py                 # the model the notebook picks (gpt2 if found, else tiny)
    python scripts/run_notebook.py --model tiny    # the model of the committed outputs
    python scripts/run_notebook.py --check         # run, and save nothing: exit 1 if a cell failed

The kernel runs this checkout's minigpt (PYTHONPATH), in a clean environment: no MINIGPT_* or HF_* setting of
the caller's (so no other weights folder, no hub endpoint), HF_HUB_OFFLINE=1, and MINIGPT_NOTEBOOK_MODEL set to
--model when given. tests/test_notebook.py runs the notebook through `execute` below and compares the outputs
with the committed ones.
"""

import argparse
import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "docs" / "decoding_strategies.ipynb"
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Run the decoding-strategies notebook and save its outputs.")
    p.add_argument("--model", help="tiny or gpt2 (default: gpt2 if its weights are found, else tiny)")
    p.add_argument("--check", action="store_true", help="run it, save nothing")
    args = p.parse_args(argv)
    notebook = execute(NOTEBOOK, args.model)
    if not args.check:
        nbformat.write(notebook, NOTEBOOK)
        print(f"wrote {NOTEBOOK.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
