"""docs/inside_the_model.ipynb, the second lesson, runs top to bottom in a real Jupyter kernel (nbclient, ipykernel)
on tiny, offline, as test_notebook.py runs the first: its committed outputs are a fresh run's, and the numbers its
text relies on are the library's. Skipped without the notebook extra, unless MINIGPT_REQUIRE_NOTEBOOK=1 (CI)."""

import importlib
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from helpers import CHECKOUT
from test_notebook import code_cells, html_outputs, need, stdout

import minigpt

NOTEBOOK = CHECKOUT / "docs" / "inside_the_model.ipynb"


@pytest.fixture(scope="module")
def run_notebook():
    for module in ("nbclient", "ipykernel", "matplotlib", "matplotlib_inline", "nbformat"):
        need(module)
    return importlib.import_module("scripts.docs.run_notebook")


@pytest.fixture(scope="module")
def notebooks(run_notebook):
    """(committed, fresh): the notebook as committed, and run afresh."""
    committed = need("nbformat").read(NOTEBOOK, as_version=4)
    return committed, run_notebook.execute(NOTEBOOK)


def test_run_notebook_knows_both_lessons(run_notebook):
    assert NOTEBOOK in run_notebook.NOTEBOOKS and run_notebook.NOTEBOOK in run_notebook.NOTEBOOKS


def test_every_cell_ran_without_error_or_warning_and_shows_offline_html_and_pictures(notebooks):
    _, fresh = notebooks
    cells = code_cells(fresh)
    assert all(cell.execution_count for cell in cells)
    assert not [o for cell in cells for o in cell.outputs if o.output_type == "error" or o.get("name") == "stderr"]
    htmls = html_outputs(fresh)
    assert len(htmls) >= 6  # the cache, the lens, the attribution, two patching sweeps, the head scores
    for html in htmls:
        assert not re.search(r"https?:", html) and "<script" not in html
        ET.fromstring(f"<root>{html}</root>")
    pictures = [o for c in cells for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(pictures) == 3  # attribution, patching, heads


def test_the_numbers_the_text_relies_on_are_the_librarys(notebooks):
    _, fresh = notebooks
    printed = stdout(fresh)
    model, tok = minigpt.load("tiny"), minigpt.Tokenizer()
    ids, corrupted = tok.encode("If the key is missing, raise a"), tok.encode("If the type is missing, raise a")
    key, type_ = tok.encode(" Key")[0], tok.encode(" Type")[0]
    a = minigpt.attribute(model, ids, key, versus=type_)
    assert f"parts + leftover = {a.logit:.4f}; the model's own logit[Key] - logit[Type] = {a.logit:.4f}" in printed
    heads = sorted((v, label) for label, v in zip(a.labels, a.contributions) if label.startswith("L"))[::-1]
    assert "the heads that push Key over Type the most: " + ", ".join(f"{label} {v:+.3f}" for v, label in heads[:4]) \
        in printed
    patched = minigpt.patch(model, ids, corrupted, "resid_pre", key, type_)
    assert patched.values[0, 2] == pytest.approx(patched.clean_metric, abs=1e-5)  # the identities the text states
    assert np.allclose(patched.values[:, :2], patched.corrupted_metric, atol=1e-5)
    for l in range(4):
        assert (f"layer {l}: patching position 2 (key) recovers {patched.recovered[l, 2]:.2f}, the last position "
                f"{patched.recovered[l, -1]:.2f}") in printed
    _, inverse, counts = np.unique(model.params["wte"]["weight"], axis=0, return_inverse=True, return_counts=True)
    learned = np.flatnonzero(inverse.reshape(-1) != counts.argmax())  # not the one row the unseen tokens share
    assert len(learned) == 10_555  # tiny's README: the distinct tokens of its training text
    half = np.random.default_rng(0).choice(learned, 20, replace=False).tolist()
    scores = minigpt.head_scores(model, [tok.eot] + half + half, "induction")
    assert repr(scores) in printed
    T = 41
    uniform = (np.tril(np.ones((T, T))) / np.arange(1, T + 1)[:, None] * scores.detection).sum() / T
    assert f"would score {uniform:.3f}" in printed
    assert scores.top(1)[0][1] < 2 * uniform  # the text says tiny has no induction head: barely above even attention


def test_the_committed_outputs_are_a_fresh_run(notebooks, run_notebook):
    committed, fresh = notebooks
    assert stdout(committed).startswith("model: tiny ("), "run python -m scripts.docs.run_notebook " + str(NOTEBOOK)
    changed = run_notebook.differences(committed, fresh)
    assert not changed, (f"{', '.join(changed)} differ from a fresh run; run python -m scripts.docs.run_notebook "
                         "docs/inside_the_model.ipynb and commit the notebook")
