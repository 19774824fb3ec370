"""Rich display: every result minigpt returns has a short repr, and a _repr_html_ that is well-formed, bounded,
makes no outside request and carries the object's own numbers (in data-* attributes, at full precision)."""

import math
import re
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from helpers import CHECKOUT

import minigpt
from minigpt import inspection
from minigpt.strategies.run import Candidate, Step
from minigpt.views.html import HOVER_TOP, MAX_TOKENS, VIRIDIS, colour, generation_html
from minigpt.views.labels import visible
from minigpt.views.notebook import HTML

PROMPT = "If the file is not found,"
MAX_REPR_LINES, MAX_REPR_CHARS = 12, 1000
MAX_HTML_CHARS = 60_000


@pytest.fixture(scope="module")
def model():
    return minigpt.load("tiny")


@pytest.fixture(scope="module")
def tok():
    return minigpt.Tokenizer()


@pytest.fixture(scope="module")
def objects(model, tok):
    """One of every displayable result, on the shipped tiny model."""
    ids = tok.encode(PROMPT)
    out = minigpt.generate(model, ids, "sample", seed=1, top_k=5, repetition_penalty=1.2, max_new_tokens=18)
    tree = inspection.beam_tree(model, ids, num_beams=3, max_new_tokens=4)
    return {"generation": out, "step": out.steps[0][3], "candidate": out.steps[0][3].candidates[1],
            "distribution": inspection.next_token_distribution(model, ids, temperatures=(0.7, 1.0), top_k=5, top=12,
                                                                seed=1),
            "lens": inspection.logit_lens(model, ids), "attention": inspection.attention_patterns(model, ids),
            "beam_tree": tree, "beam_node": tree.nodes[3]}


def html_of(result) -> str:
    """What a notebook shows for a result: the HTML views/notebook.py registers for its class."""
    return HTML[type(result)](result)


def parse(html: str) -> ET.Element:
    """The HTML as XML: it must be well-formed (every tag closed, every text and attribute escaped)."""
    return ET.fromstring(f"<root>{html}</root>")


def floats(elements, name: str) -> list[float]:
    return [float(e.get(name)) for e in elements]


@pytest.mark.parametrize("name", ["generation", "step", "candidate", "distribution", "lens", "attention", "beam_tree",
                                  "beam_node"])
def test_each_result_is_short_and_its_html_is_valid_and_offline(objects, name):
    obj = objects[name]
    text = repr(obj)
    assert len(text.splitlines()) <= MAX_REPR_LINES and len(text) <= MAX_REPR_CHARS, text
    html = html_of(obj)
    assert len(html) <= MAX_HTML_CHARS
    assert "http://" not in html and "https://" not in html and "<script" not in html
    parse(html)


def test_an_18_token_generation_reprs_in_a_few_lines(objects, tok):
    out = objects["generation"]
    text = repr(out)
    assert len(text.splitlines()) == 3 and "sample" in text and "top_k(k=5" in text and "18 tokens" in text
    assert repr(PROMPT) in text and repr(out.texts[0][:60])[:-1] in text


def test_the_generation_html_colours_each_token_by_its_probability(objects):
    out = objects["generation"]
    spans = parse(html_of(out)).findall(".//span[@data-step]")
    steps = out.steps[0]
    assert [int(s.get("data-id")) for s in spans] == out.sequences[0]
    assert floats(spans, "data-p") == [math.exp(s.logprob) for s in steps]
    assert "".join(s.text for s in spans) == out.texts[0]
    for span, step in zip(spans, steps):  # the hover: the candidates before and after the chain
        title = span.get("title")
        shown = step.raw_candidates[:HOVER_TOP] + step.candidates[:HOVER_TOP]
        assert all(visible(c.text) in title and f"{c.p:.4f}" in title for c in shown)


def test_a_step_and_a_candidate_show_their_numbers(objects):
    step, candidate = objects["step"], objects["candidate"]
    root = parse(html_of(step))
    assert floats(root.findall(".//span[@data-p]"), "data-p") == [math.exp(step.logprob)]
    rows = root.findall(".//tr[@data-p]")
    assert floats(rows, "data-p") == [c.p for c in step.raw_candidates + step.candidates]
    (span,) = parse(html_of(candidate)).iter("span")
    assert (int(span.get("data-id")), float(span.get("data-p")), span.text) == (candidate.id, candidate.p,
                                                                                 candidate.text)
    assert repr(Candidate(262, 0.5, " the")) == "Candidate(262 ' the' p=0.5000)"


def test_the_distribution_html_shows_each_temperatures_bars_and_cuts(objects):
    d = objects["distribution"]
    columns = parse(html_of(d)).findall(".//div[@data-temperature]")
    assert floats(columns, "data-temperature") == list(d.temperatures)
    for m, column in enumerate(columns):
        rows = column.findall(".//tr")
        assert floats(rows, "data-p") == d.probs[m].astype(float).tolist()
        assert [r.get("data-kept") == "true" for r in rows] == (d.final[m] > 0).tolist()
        assert [r.get("style") == "font-weight:bold" for r in rows] == (d.tokens == d.drawn[m]).tolist()


def test_the_lens_html_is_a_heat_map_of_each_layers_top_token(objects, tok):
    lens = objects["lens"]
    rows = parse(html_of(lens)).findall(".//tr")[1:]  # the header row holds the prompt's tokens
    assert [r.find("th").text for r in rows] == lens.row_labels[::-1]  # the model's prediction on top
    cells = [r.findall("td") for r in rows]
    assert [floats(row, "data-v") for row in cells] == lens.top_probs[::-1].astype(float).tolist()
    assert [[c.text for c in row] for row in cells] == [[visible(tok.decode([t])) for t in row]
                                                        for row in lens.top_tokens[::-1]]


def test_the_attention_html_shows_the_first_and_last_layer_causally(objects, model):
    maps = objects["attention"]
    np.testing.assert_array_equal(maps.weights, inspection.attention_patterns(model, maps.tokens).weights)
    layers = parse(html_of(maps)).findall(".//div[@data-layer]")
    assert [int(d.get("data-layer")) for d in layers] == [0, model.config.n_layer - 1]
    for div in layers:
        mean = maps.weights[int(div.get("data-layer"))].mean(axis=0)
        for q, row in enumerate(div.findall(".//tr")[1:]):
            cells = row.findall("td")
            assert floats(cells[: q + 1], "data-v") == mean[q, : q + 1].astype(float).tolist()
            assert all(c.get("data-v") is None for c in cells[q + 1:])  # after the query: nothing, causal


def test_the_beam_tree_html_draws_every_node_and_the_hypotheses(objects):
    tree = objects["beam_tree"]
    root = parse(html_of(tree))
    labels = root.findall(".//svg//text")
    assert [int(t.get("data-node")) for t in labels] == [n.id for n in tree.nodes[1:]]
    assert [t.find("title").text for t in labels] == [repr(n) for n in tree.nodes[1:]]
    assert floats(root.findall(".//div[@data-score]"), "data-score") == tree.scores
    node = objects["beam_node"]
    assert float(parse(html_of(node)).find("span").get("data-p")) == node.prob


def test_html_stays_bounded_for_a_long_text():
    class Out:  # a GenerationOutput's fields, with far more tokens than a display shows
        steps = [[Step(token=11, logprob=-0.5, candidates=[], text=",")] * (MAX_TOKENS + 50)]
        prompt_tokens, prompt_index, finish_reasons, scores = [[11]], [0], ["length"], [0.0]
        sequences, chain, strategy, prompt_texts = [[11] * (MAX_TOKENS + 50)], [], "greedy", [","]

    root = parse(generation_html(Out, 16))
    assert len(root.findall(".//span[@data-step]")) == MAX_TOKENS
    assert "50 more tokens" in "".join(root.itertext())


def test_the_colours_are_viridis_as_the_web_renderer_and_the_pictures_have_it():
    """One colour-blind-safe scale of probability everywhere: html.colour's stops are matplotlib's viridis (which the
    pictures use), and render.js (the page, the report) holds the same stops; the page's test checks its colour()."""
    source = (CHECKOUT / "minigpt" / "web" / "render.js").read_text()
    stops = re.search(r"const VIRIDIS = \[(.*?)\];", source, re.S).group(1)
    assert re.findall(r'"(#[0-9a-f]{6})"', stops) == list(VIRIDIS)
    viridis = pytest.importorskip("matplotlib").colormaps["viridis"]
    for x, hex_ in zip(np.linspace(0, 1, 11), VIRIDIS):
        assert tuple(round(255 * v) for v in viridis(x)[:3]) == tuple(int(hex_[k:k + 2], 16) for k in (1, 3, 5))
    rgb = ["rgb({}, {}, {})".format(*(int(h[k:k + 2], 16) for k in (1, 3, 5))) for h in VIRIDIS]
    assert [colour(k / 10) for k in range(11)] == rgb and colour(-1) == rgb[0] and colour(2) == rgb[-1]


def test_importing_minigpt_in_ipython_registers_each_results_html(monkeypatch):
    """In a notebook nothing is asked of the user: minigpt's import tells the running IPython's text/html
    formatter which function draws which result; without IPython it does nothing."""
    from minigpt.views.notebook import show_in_notebooks

    registered = {}
    formatter = type("Formatter", (), {"for_type": lambda self, cls, draw: registered.__setitem__(cls, draw)})()
    shell = type("Shell", (), {"display_formatter": type("Display", (), {"formatters": {"text/html": formatter}})})
    ipython = type(sys)("IPython")
    ipython.get_ipython = lambda: shell
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    assert show_in_notebooks() and registered == HTML
    assert set(HTML) >= {minigpt.GenerationOutput, Step, Candidate, inspection.NextTokenDistribution,
                         inspection.LogitLens, inspection.AttentionPatterns, inspection.BeamTree}
    ipython.get_ipython = lambda: None  # IPython imported, but no shell running (a plain script)
    assert not show_in_notebooks()
    monkeypatch.delitem(sys.modules, "IPython")
    assert not show_in_notebooks()
