"""Rich display of the looking-inside results (inspection/inside/): a short repr, and a _repr_html_ that is
well-formed, bounded, offline and carries the result's own numbers, as test_rich.py asks of every result."""

import numpy as np
import pytest
from test_rich import MAX_HTML_CHARS, MAX_REPR_CHARS, MAX_REPR_LINES, floats, html_of, parse

import minigpt
from minigpt.views.inside_html import MAX_PARTS

PROMPT = "If the file is not found, the file is not"


@pytest.fixture(scope="module")
def objects():
    model, tok = minigpt.load("tiny"), minigpt.Tokenizer()
    ids = tok.encode(PROMPT)
    corrupted = tok.encode(PROMPT.replace("file", "page", 1))
    return {"cache": minigpt.run_with_cache(model, ids), "attribution": minigpt.attribute(model, ids, ids[2]),
            "patch": minigpt.patch(model, ids, corrupted, "resid_pre"),
            "head_patch": minigpt.patch(model, ids, corrupted, "head"),
            "heads": minigpt.head_scores(model, ids, "induction")}


@pytest.mark.parametrize("name", ["cache", "attribution", "patch", "head_patch", "heads"])
def test_each_result_is_short_and_its_html_is_valid_and_offline(objects, name):
    obj = objects[name]
    text = repr(obj)
    assert len(text.splitlines()) <= MAX_REPR_LINES and len(text) <= MAX_REPR_CHARS, text
    html = html_of(obj)
    assert len(html) <= MAX_HTML_CHARS
    assert "http://" not in html and "https://" not in html and "<script" not in html
    parse(html)
    assert isinstance(obj.to_json(), dict)


def test_the_html_carries_the_results_numbers(objects):
    a = objects["attribution"]
    bars = parse(html_of(a)).findall(".//tr[@data-v]")
    assert len(bars) == min(MAX_PARTS, len(a.labels))
    assert floats(bars, "data-v") == [value for _, value in a.top(MAX_PARTS)]
    patched = objects["patch"]
    cells = parse(html_of(patched)).findall(".//td[@data-v]")
    np.testing.assert_allclose(floats(cells, "data-v"), np.clip(patched.recovered, 0, 1).ravel(), rtol=1e-6)
    heads = objects["heads"]
    cells = parse(html_of(heads)).findall(".//td[@data-v]")
    np.testing.assert_allclose(floats(cells, "data-v"), heads.scores.ravel(), rtol=1e-6)
    cache = objects["cache"]
    assert [r.get("data-name") for r in parse(html_of(cache)).findall(".//tr")] == list(cache)[:40]
