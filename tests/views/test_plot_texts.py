"""Every picture explains itself: rendered on a fixture, its title, subtitle, legend and axes say what is
drawn, with the settings that matter and nothing that is noise (matplotlib's Figure, read before it is saved)."""

import numpy as np
import pytest
from conftest import load_model

from minigpt.core.tokenizer import Tokenizer
from minigpt.inspection import attention_patterns, beam_tree, logit_lens, next_token_distribution
from minigpt.views.plots import plot_attention, plot_beam_tree, plot_lens, plot_probs

pytest.importorskip("matplotlib")
tok = Tokenizer()
PROMPT = tok.encode("The quick brown fox jumps")


def texts(fig) -> str:
    """Every text of a figure: titles, axis labels, tick labels, legends, free text, colour bar labels."""
    found = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]
    return "\n".join(t for t in found if t)


def legend(fig) -> str:
    return "\n".join(t.get_text() for lg in fig.legends for t in lg.get_texts())


@pytest.fixture(scope="module")
def model():
    return load_model("fullvocab")


def test_a_greedy_distribution_says_nothing_of_sampling(model, tmp_path):
    data = next_token_distribution(model, PROMPT, top=12)
    fig = plot_probs(data, "a title", tmp_path / "p.png", tok)
    ax = fig.axes[0]
    subtitle = ax.get_title()
    assert "sampling" not in subtitle and "keeps" not in subtitle and "token(s)" not in subtitle
    assert f"the 12 tokens shown hold {1 - data.rest[0]:.1%} of the probability" in subtitle
    assert "greedy search chooses the most probable token: " + tok.decode([data.selected]).replace(" ", "␣") in subtitle
    assert ax.get_xlabel().startswith("next token: the 12 most probable") and ax.get_ylabel().startswith("probability")
    assert "red outline: greedy's choice" in legend(fig) and "faded" not in legend(fig)
    assert fig.get_suptitle() == "a title"


def test_temperatures_state_each_draw_and_mark_it(model, tmp_path):
    data = next_token_distribution(model, PROMPT, temperatures=(0.5, 1.0, 2.0), top_p=0.9, top=12, seed=4)
    fig = plot_probs(data, "t", tmp_path / "t.png", tok)
    subtitle = fig.axes[0].get_title()
    for t, token in zip((0.5, 1, 2), data.drawn):
        assert f"{tok.decode([int(token)]).replace(' ', '␣')[:12]}" in subtitle and f"at T = {t:g}" in subtitle
    assert subtitle.count("seed 4 draws") == 1 and "after the cut-offs, sampling draws from" in subtitle
    shown = [m for m, token in enumerate(data.drawn) if token in data.tokens]
    triangles = [line for line in fig.axes[0].get_lines() if line.get_marker() == "v"]
    assert len(triangles) == len(shown)  # one above the bar of each temperature whose draw is shown
    assert "drawn with seed 4, at the T\nof the bar below" in legend(fig)
    assert all(f"T = {t:g}" in legend(fig) for t in (0.5, 1, 2))
    assert "top-p = 0.9 (T=" in texts(fig)


def test_the_cut_offs_and_their_marks_are_named(model, tmp_path):
    data = next_token_distribution(model, PROMPT, top_k=5, min_p=0.05, top=12, seed=1)
    fig = plot_probs(data, "c", tmp_path / "c.png", tok)
    words = legend(fig)
    assert "faded: cut (not drawn from)" in words and "min-p's threshold" in words and "red outline: drawn" in words
    assert "top-k = 5: keeps 5" in texts(fig) and "min-p = 0.05: keeps" in texts(fig)


def test_the_lens_names_its_rows_and_marks(model, tmp_path):
    fig = plot_lens(logit_lens(model, PROMPT), tok, "lens", tmp_path / "l.png")
    ax = fig.axes[0]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert rows[0] == "embeddings" and rows[1] == "after layer 0" and rows[-1].endswith("(the model's prediction)")
    assert not any(" out" in row or row.startswith("h") for row in rows)  # not transformers' names
    assert ax.get_xlabel() == "input token, by position" and ax.get_ylabel() == "residual stream read out"
    assert "red outline: the prediction is the true next token" in legend(fig)
    assert "p(top token)" in texts(fig) and "true next token" in texts(fig)


@pytest.mark.parametrize("head", [0, None])
def test_attention_labels_query_and_key_in_both_views(model, tmp_path, head):
    ids = PROMPT[:4]
    fig = plot_attention(attention_patterns(model, ids).weights, 0, head, [tok.decode([i]) for i in ids], "a", tmp_path / "a.png")
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>" and ax.get_images()]
    assert {ax.get_xlabel() for ax in panels} - {""} == {"key: the token looked at"}
    assert {ax.get_ylabel() for ax in panels} - {""} == {"query: the token looking"}
    assert "blank: the future" in legend(fig) and "each row sums to 1" in legend(fig)
    assert "attention weight" in texts(fig)


@pytest.mark.parametrize("strategy", ["beam", "beam-sample"])
def test_the_beam_tree_says_what_it_draws(model, tmp_path, strategy):
    tree = beam_tree(model, PROMPT, num_beams=3, max_new_tokens=3, strategy=strategy,
                     **({"seed": 0} if strategy == "beam-sample" else {}))
    fig = plot_beam_tree(tree, "b", tmp_path / "b.png", tok)
    caption = fig.axes[0].get_title()
    assert "6 (2 × 3 beams) candidates over all beams" in caption and "only those are drawn" in caption
    words = legend(fig)
    for mark in ("best hypothesis", "other returned hypotheses", "beam dropped", "candidate pruned", "✓ finished",
                 "grey box: the prompt"):
        assert mark in words
    assert "box colour: p(token | beam)" in texts(fig) and "step 3" in texts(fig)
    assert np.isfinite([n.prob for n in tree.nodes]).all()


def test_without_a_file_a_picture_is_drawn_and_nothing_written(model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fig = plot_probs(next_token_distribution(model, PROMPT, top=5), "in a notebook", None, tok)
    assert fig.axes and "in a notebook" in texts(fig) and not list(tmp_path.iterdir())
