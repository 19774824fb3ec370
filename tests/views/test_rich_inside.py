"""Rich display of inspection/inside's results: in a notebook an Attribution, a PatchResult, HeadScores and an
ActivationCache show themselves as well-formed, bounded, offline HTML that carries their own numbers (data-*),
positive quantities on viridis and signed ones on PuOr, centred on 0."""

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from test_rich import MAX_HTML_CHARS, MAX_REPR_CHARS, MAX_REPR_LINES

import minigpt
from minigpt.views.html import PUOR, colour, signed_colour
from minigpt.views.inside_html import BEST_ROWS, MAX_ARRAYS
from minigpt.views.notebook import HTML

PROMPT, CORRUPTED = "If the file is not found, an exception is", "If the file is not empty, an exception is"
tok = minigpt.Tokenizer()


@pytest.fixture(scope="module")
def objects():
    model, ids = minigpt.load("tiny"), tok.encode(PROMPT)
    return {"attribution": minigpt.attribute(model, ids, tok.encode(" raised")[0]),
            "patch": minigpt.patch(model, ids, tok.encode(CORRUPTED), "resid_pre"),
            "head_patch": minigpt.patch(model, ids, tok.encode(CORRUPTED), "head"),
            "heads": minigpt.head_scores(model, ids * 3, "induction"),
            "cache": minigpt.run_with_cache(model, ids)}


def parse(result) -> ET.Element:
    html = HTML[type(result)](result)
    assert len(html) <= MAX_HTML_CHARS and not re.search(r"https?:", html) and "<script" not in html
    return ET.fromstring(f"<root>{html}</root>")


@pytest.mark.parametrize("name", ["attribution", "patch", "head_patch", "heads", "cache"])
def test_each_result_has_a_short_repr_and_json(objects, name):
    text = repr(objects[name])
    assert len(text.splitlines()) <= MAX_REPR_LINES and len(text) <= MAX_REPR_CHARS, text
    assert isinstance(objects[name].to_json(), dict)
    parse(objects[name])


def test_the_attribution_lists_its_largest_parts_the_rest_the_leftover_and_their_sum_the_logit(objects):
    a = objects["attribution"]
    rows = parse(a).findall(".//tr[@data-v]")
    labels, values = [r.get("data-label") for r in rows], [float(r.get("data-v")) for r in rows]
    assert labels[:12] == [label for label, _ in a.top(12)] and values[:12] == [v for _, v in a.top(12)]
    assert labels[12:] == ["the other 11 parts", "leftover (ln_f bias)", "sum"]
    assert sum(values[:-1]) == pytest.approx(values[-1], abs=1e-4) and values[-1] == pytest.approx(a.logit, abs=1e-4)
    assert "logit[␣raised] after ␣is (position 9)" in "".join(parse(a).itertext())


@pytest.mark.parametrize("name", ["patch", "head_patch"])
def test_the_patch_heat_map_holds_every_metric_layer_0_at_the_bottom_on_a_diverging_scale(objects, name):
    result = objects[name]
    root = parse(result)
    rows = root.findall(".//tr")[1:]
    assert [r.find("th").text for r in rows] == [f"layer {l}" for l in reversed(range(len(result.values)))]
    grid = [[float(c.get("data-v")) for c in r.findall("td")] for r in rows]
    assert np.array_equal(np.array(grid[::-1], dtype=np.float32), result.values)
    top = max(abs(result.values).max(), abs(result.clean_metric), abs(result.corrupted_metric))
    first = rows[-1].find("td")  # layer 0, the first position or head
    assert signed_colour(result.values[0, 0] / top) in first.get("style")
    header = [th.text for th in root.findall(".//tr")[0].findall("th")][1:]
    if name == "patch":
        assert header[5] == "␣found → ␣empty" and header[0] == "If"  # both tokens where the prompts differ
    else:
        assert header == [f"head {h}" for h in range(4)]


def test_the_head_scores_show_the_grid_on_viridis_and_the_best_heads_attention_beside_the_pattern(objects):
    s = objects["heads"]
    root = parse(s)
    rows = root.findall(".//table")[0].findall("tr")[1:]
    grid = [[float(c.get("data-v")) for c in r.findall("td")] for r in rows]
    assert np.array_equal(np.array(grid[::-1], dtype=np.float32), s.scores)
    assert colour(s.scores[-1, 0]) in rows[0].find("td").get("style")
    name = s.top(1)[0][0]
    l, h = map(int, name[1:].split("H"))
    assert f"{name}'s attention" in "".join(root.itertext())
    queries = root.findall(".//tr[@data-query]")
    wanted = [q for q in range(len(s.tokens)) if s.detection[q].any()][-BEST_ROWS:]
    assert [int(r.get("data-query")) for r in queries] == wanted and len(wanted) == BEST_ROWS
    for row, q in zip(queries, wanted):
        assert int(row.get("data-key")) == int(s.patterns[l, h, q].argmax())
        assert float(row.get("data-share")) == pytest.approx(float((s.patterns[l, h, q] * s.detection[q]).sum()))
        looked = row.findall("td")[3].text
        assert all(f"({j})" in looked for j in np.flatnonzero(s.detection[q]))


def test_the_cache_lists_each_name_and_shape_up_to_a_bound(objects):
    cache = objects["cache"]
    cells = parse(cache).findall(".//td[@data-shape]")
    shown = list(cache.items())[:MAX_ARRAYS]
    assert [c.text for c in cells] == [str(list(a.shape)) for _, a in shown] and len(cache) > MAX_ARRAYS
    assert [r.get("data-name") for r in parse(cache).findall(".//tr")] == [name for name, _ in shown]
    assert f"and {len(cache) - MAX_ARRAYS} more" in "".join(parse(cache).itertext())


def test_the_diverging_scale_is_matplotlibs_puor_white_at_0():
    puor = pytest.importorskip("matplotlib").colormaps["PuOr"]
    for x, hex_ in zip(np.linspace(0, 1, 11), PUOR):
        assert np.allclose([255 * v for v in puor(x)[:3]], [int(hex_[k:k + 2], 16) for k in (1, 3, 5)], atol=2)  # its 256-colour table
    assert signed_colour(0) == "rgb(247, 247, 247)" and signed_colour(-5) == signed_colour(-1) != signed_colour(1)


def test_every_inside_result_registers_its_html():
    assert {minigpt.Attribution, minigpt.PatchResult, minigpt.HeadScores, minigpt.ActivationCache} <= set(HTML)
