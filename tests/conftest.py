"""Shared test helpers: the reference checkpoints in tests/fixtures/ and what transformers computed on them.

Each folder tests/fixtures/<name>/ (written by scripts/reference/logits.py) holds a checkpoint
(config.json + model.safetensors) and transformers' outputs on it (reference.json + reference.safetensors).
`reference(name)` reads one; `assert_close` is the parity criterion every comparison uses.
"""

import json
import os
import signal
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings
from safetensors.numpy import load_file

# Property tests draw the same examples on every run and keep no database between runs: a test that fails
# fails every time, on any machine, whatever an earlier run left behind.
settings.register_profile("minigpt", derandomize=True, database=None, print_blob=True)
settings.load_profile("minigpt")



@pytest.fixture(autouse=True)
def a_terminal_100_columns_wide(monkeypatch):
    """argparse wraps --help to the terminal's width (COLUMNS, else the real terminal's): fix it, so that no
    test of the help text depends on the window pytest runs in."""
    monkeypatch.setenv("COLUMNS", "100")


@pytest.fixture
def ctrl_c_raises():
    """Python's own Ctrl-C handler, whatever the caller left: a job started in the background ignores SIGINT."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


FIXTURES = Path(__file__).parent / "fixtures"
REFERENCE_FIXTURES = ("tiny-hub", "tiny-pretrained", "odd-f16", "fullvocab")
RTOL = 1e-5


@dataclass(frozen=True)
class Reference:
    folder: Path  # the checkpoint, for minigpt.load
    meta: dict  # reference.json: prompts, generations, settings
    arrays: dict  # reference.safetensors: float32 arrays named in meta["arrays"]


@lru_cache(maxsize=None)
def reference(name: str) -> Reference:
    folder = FIXTURES / name
    if not (folder / "reference.json").is_file():
        pytest.fail(f"{folder} has no reference.json; run `python -m scripts.reference.logits` to write it.")
    meta = json.loads((folder / "reference.json").read_text(encoding="utf-8"))
    return Reference(folder, meta, load_file(str(folder / "reference.safetensors")))


@lru_cache(maxsize=None)
def load_model(name: str):
    """minigpt's model for a fixture, loaded once per test session."""
    import minigpt

    return minigpt.load(str(reference(name).folder))


def assert_close(ours, ref, rtol=RTOL, what="logits"):
    """Parity: float32 output, and max |ours - ref| <= rtol * max |ref| (relative to the largest magnitude)."""
    ours = np.asarray(ours)
    assert ours.dtype == np.float32, f"{what} are {ours.dtype}, not float32"
    assert ours.shape == ref.shape, f"{what} have shape {ours.shape}, reference {ref.shape}"
    err, scale = float(np.max(np.abs(ours - ref))), float(np.max(np.abs(ref)))
    assert err <= rtol * scale, f"{what} differ by {err:.3g}, more than {rtol} x max |reference| = {rtol * scale:.3g}"


def require_reference():
    """(torch, transformers) for the live tests; skipped when missing, unless MINIGPT_REQUIRE_REFERENCE=1 (CI)."""
    if os.environ.get("MINIGPT_REQUIRE_REFERENCE") == "1":
        import torch
        import transformers
    else:
        torch = pytest.importorskip("torch")
        transformers = pytest.importorskip("transformers")
    return torch, transformers


@pytest.fixture(params=REFERENCE_FIXTURES)
def fixture_name(request):
    return request.param
