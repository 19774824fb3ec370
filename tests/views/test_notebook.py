"""docs/decoding_strategies.ipynb runs top to bottom in a real Jupyter kernel (nbclient, ipykernel), offline, and
its committed outputs are what a fresh run on the same model gives.

The kernel is started by scripts/docs/run_notebook.py's `execute`, in a clean environment (no MINIGPT_* or HF_* setting
of the caller's, HF_HUB_OFFLINE=1), on this checkout's minigpt and on the model that wrote the committed outputs
(the first cell prints it). Without the `notebook` extra (nbclient, ipykernel, nbformat) and matplotlib these
tests are skipped, unless MINIGPT_REQUIRE_NOTEBOOK=1 (as in CI), when they fail instead.
"""

import importlib
import os
import re
import xml.etree.ElementTree as ET

import pytest
from helpers import CHECKOUT

import minigpt
from scripts.docs import numbers

REQUIRED = os.environ.get("MINIGPT_REQUIRE_NOTEBOOK") == "1"
NOTEBOOK = CHECKOUT / "docs" / "decoding_strategies.ipynb"
PROMPTS = {"tiny": "If the file is not found,", "gpt2": "I have a dream"}  # as the notebook's first cell picks
# Every generation the notebook shows, as (strategy, options): generate() called here must give the same texts.
SHOWN = [("greedy", {}), ("beam", {"num_beams": 4}), ("beam", {"num_beams": 4, "no_repeat_ngram_size": 2}),
         ("sample", {"seed": 0, "temperature": 0.7}), ("sample", {"seed": 0, "top_k": 20}),
         ("sample", {"seed": 0, "top_p": 0.9}), ("sample", {"seed": 0, "min_p": 0.1}),
         ("greedy", {"repetition_penalty": 1.3}), ("contrastive", {"penalty_alpha": 0.6, "top_k": 4}),
         ("sample", {"seed": 0, "temperature": 1.5}), ("sample", {"seed": 0, "temperature": 1.5, "top_n_sigma": 1.0})]


def need(module: str):
    return importlib.import_module(module) if REQUIRED else pytest.importorskip(module)


@pytest.fixture(scope="module")
def run_notebook():
    """scripts/docs/run_notebook.py, which runs the notebook and compares its outputs."""
    for module in ("nbclient", "ipykernel", "matplotlib", "matplotlib_inline", "nbformat"):
        need(module)
    return importlib.import_module("scripts.docs.run_notebook")  # it imports nbformat and nbclient: not at the top


@pytest.fixture(scope="module")
def notebooks(run_notebook):
    """(committed, fresh, model): the notebook as committed, and run afresh on the model of its outputs."""
    nbformat = need("nbformat")
    committed = nbformat.read(NOTEBOOK, as_version=4)
    model = recorded_model(committed) or "tiny"
    return committed, run_notebook.execute(NOTEBOOK, model), model


def code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def recorded_model(notebook) -> str | None:
    """The model the first cell says wrote the outputs ("model: tiny (...)"); None when they were cleared."""
    text = "".join(o.get("text", "") for o in code_cells(notebook)[0].outputs)
    found = re.search(r"^model: (\S+)", text, re.M)
    return found and found.group(1)


def stdout(notebook) -> str:
    return "".join(o.text for c in code_cells(notebook) for o in c.outputs if o.get("name") == "stdout")


def html_outputs(notebook) -> list[str]:
    return [o.data["text/html"] for c in code_cells(notebook) for o in c.outputs if "text/html" in o.get("data", {})]


def shown_texts(notebook) -> list[str]:
    """The text of every coloured generation the notebook displays: its tokens' spans, in order."""
    texts = []
    for html in html_outputs(notebook):
        for sequence in ET.fromstring(f"<root>{html}</root>").iter("div"):
            if sequence.get("data-sequence") is not None:
                texts.append("".join(s.text or "" for s in sequence.iter("span") if s.get("data-step") is not None))
    return texts


def test_every_cell_ran_without_error(notebooks):
    _, fresh, _ = notebooks
    cells = code_cells(fresh)
    assert all(cell.execution_count for cell in cells)
    assert not [o for cell in cells for o in cell.outputs if o.output_type == "error"]
    assert not [o.text for cell in cells for o in cell.outputs if o.get("name") == "stderr"]  # not even a warning


def test_the_outputs_hold_the_strategies_texts_as_generate_gives_them(notebooks):
    _, fresh, name = notebooks
    assert f"model: {name} (" in stdout(fresh)  # the notebook says which model wrote its outputs
    tok, model = minigpt.Tokenizer(), minigpt.load(name)
    ids, prompt = tok.encode(PROMPTS[name]), PROMPTS[name]
    shown, printed = shown_texts(fresh), stdout(fresh)
    for strategy, options in SHOWN:
        text = minigpt.generate(model, ids, strategy, max_new_tokens=40, **options).texts[0]
        assert text in shown, (strategy, options)  # drawn in its own cell, coloured token by token
        block = "\n".join("    " + line for line in (prompt + text).split("\n"))
        assert block in printed, (strategy, options)  # and printed again in the side-by-side comparison
    loop = minigpt.generate(model, ids, max_new_tokens=12).texts[0]
    assert repr(loop) in printed  # the hand-written loop


def test_no_html_output_references_a_url_or_a_script(notebooks):
    _, fresh, _ = notebooks
    htmls = html_outputs(fresh)
    assert len(htmls) >= 10
    for html in htmls:
        assert not re.search(r"https?:", html) and "<script" not in html
        ET.fromstring(f"<root>{html}</root>")  # well-formed


def test_the_committed_outputs_are_a_fresh_run_on_the_same_model(notebooks, run_notebook):
    """Compared as run_notebook.py compares them: the words and markup exactly, each number within one unit of its
    last printed digit plus a relative 1e-5, since another BLAS kernel's float32 sums differ in the 7th digit."""
    committed, fresh, _ = notebooks
    if committed.metadata.get("minigpt", {}).get("outputs") == "cleared":  # cleared on purpose: all of them
        assert not any(cell.outputs for cell in code_cells(committed))
        return
    assert recorded_model(committed), "the committed notebook has no outputs: run python -m scripts.docs.run_notebook"
    changed = run_notebook.differences(committed, fresh)
    assert not changed, (f"{', '.join(changed)} differ from a fresh run; run python -m scripts.docs.run_notebook "
                         f"--model {recorded_model(committed)} and commit the notebook")


def test_a_number_may_flip_in_its_last_printed_digit_but_no_more():
    same = numbers.same_text  # needs no notebook extra: the docs' printed examples use it too
    assert same("log p -2.4643 (id 262)", "log p -2.4644 (id 262)")  # float32 noise across a rounding boundary
    assert same("hsl(16, 75%, 82%)", "hsl(17, 75%, 82%)") and same("p 3e-06", "p 4e-06")
    assert not same("log p -2.4643", "log p -2.4646")  # three units: a real change
    assert not same("keeps 4 tokens", "keeps 4 token")  # the words must be the same
    assert not same("0.5 0.5", "0.5")
    assert same("part 0.0013655573", "part 0.0013654977")  # a small sum of large terms: 6e-8 across two kernels
    assert not same("part 0.0013655573", "part 0.0013675573")  # 2e-6: more than float32 across kernels
