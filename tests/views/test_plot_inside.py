"""The pictures of attribution, patching and head detectors: written, and explaining themselves (every axis labelled,
layers from 0, the tokens on the axis, the colour bar named by its metric, the sum marked), as test_plot_texts.py
checks the other pictures; and `minigpt plot attribute | patch | heads` writes them."""

import numpy as np
import pytest
from helpers import run_cli as run

import minigpt
from minigpt.views.plots import plot_attribution, plot_heads, plot_patch

pytest.importorskip("matplotlib")
tok = minigpt.Tokenizer()
CLEAN, CORRUPTED = "If the key is missing, raise a", "If the type is missing, raise a"


@pytest.fixture(scope="module")
def model():
    return minigpt.load("tiny")


def texts(fig) -> str:
    return "\n".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")) if t.get_text())


def legend(fig) -> str:
    return "\n".join(t.get_text() for lg in fig.legends for t in lg.get_texts())


def test_the_attribution_draws_signed_bars_and_marks_their_sum_the_logit(model, tmp_path):
    a = minigpt.attribute(model, tok.encode(CLEAN), tok.encode(" Key")[0], tok.encode(" Type")[0])
    fig = plot_attribution(a, tok, "a title", tmp_path / "a.png", top=6)
    assert (tmp_path / "a.png").stat().st_size > 0
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [label for label, _ in a.top(6)] + ["the other 17 parts", "leftover (ln_f bias)",
                                                         "sum = the logit"]
    widths = [bar.get_width() for bar in ax.patches]
    assert np.allclose(widths[:6], [v for _, v in a.top(6)]) and widths[-1] == pytest.approx(a.logit, abs=1e-5)
    assert sum(widths[:-1]) == pytest.approx(a.logit, abs=1e-4)  # the bars above the sum add up to it
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and dashed[0].get_xdata()[0] == pytest.approx(a.logit, abs=1e-5)
    assert ax.get_xlabel() == "contribution to logit[␣Key] - logit[␣Type] (in logits)"
    assert ax.get_ylabel() == "part of the model (layers and heads from 0)"
    assert f"parts + leftover = the model's own {a.logit:.3f}" in ax.get_title()
    assert "purple: pushes the logit up" in legend(fig) and "orange: pushes it down" in legend(fig)
    assert "the dashed line: the sum" in legend(fig) and fig.get_suptitle() == "a title"


@pytest.mark.parametrize("where", ["resid_pre", "head"])
def test_the_patch_heat_map_has_the_tokens_layers_from_0_and_a_colour_bar_named_by_its_metric(model, tmp_path, where):
    result = minigpt.patch(model, tok.encode(CLEAN), tok.encode(CORRUPTED), where, tok.encode(" Key")[0],
                           tok.encode(" Type")[0])
    fig = plot_patch(result, tok, "p", tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 0
    ax, bar = fig.axes
    image = ax.get_images()[0]
    assert np.array_equal(image.get_array(), result.values) and image.cmap.name == "PuOr"
    low, high = image.get_clim()
    assert low == -high and high >= max(abs(result.values).max(), abs(result.corrupted_metric))  # centred on 0
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "1", "2", "3"] and ax.get_ylabel() == "layer (from 0)"
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    if where == "head":
        assert ticks == [f"head {h}" for h in range(4)] and ax.get_xlabel().startswith("head patched")
    else:
        assert ticks[:3] == ["If", "␣the", "␣key\n→ ␣type"] and ax.get_xlabel().startswith("position patched")
    assert bar.get_ylabel() == "logit[␣Key] - logit[␣Type]\nafter the patch"
    marks = sorted(line.get_ydata()[0] for line in bar.get_lines())
    assert np.allclose(marks, sorted([result.clean_metric, result.corrupted_metric]))
    assert "clean" in texts(fig) and "corrupted" in texts(fig) and "centred on 0" in legend(fig)


def test_the_heads_picture_shows_the_grid_and_the_best_heads_attention_beside_the_pattern(model, tmp_path):
    scores = minigpt.head_scores(model, tok.encode(CLEAN) * 2, "induction")
    fig = plot_heads(scores, tok, "h", tmp_path / "h.png")
    assert (tmp_path / "h.png").stat().st_size > 0
    grid, attention, detection = fig.axes[:3]
    assert np.array_equal(grid.get_images()[0].get_array(), scores.scores)
    assert grid.get_xlabel() == "head (from 0)" and grid.get_ylabel() == "layer (from 0)"
    name, best = scores.top(1)[0]
    l, h = map(int, name[1:].split("H"))
    assert attention.get_title() == f"{name}'s attention (score {best:.3f})"
    assert np.allclose(attention.get_images()[0].get_array().filled(0), np.tril(scores.patterns[l, h]))
    assert np.array_equal(detection.get_images()[0].get_array().filled(0), scores.detection)
    assert detection.get_title() == "where an induction head looks"
    for ax in (attention, detection):
        assert ax.get_xlabel() == "key: the token looked at" and ax.get_ylabel() == "query: the token looking"
        assert [t.get_text() for t in ax.get_xticklabels()][:2] == ["If", "␣the"]
    assert "red outline: the best head" in legend(fig) and "share of attention on the pattern" in texts(fig)


@pytest.mark.parametrize("argv", [
    ["attribute", CLEAN, "--token", " Key", "--top", "5"],
    ["patch", "--clean", CLEAN, "--corrupted", CORRUPTED, "--where", "mlp_out"],
    ["heads", CLEAN + CLEAN, "--kind", "previous_token"],
])
def test_minigpt_plot_writes_each_picture_and_refuses_bad_input_first(capsys, tmp_path, argv):
    out = tmp_path / f"{argv[0]}.png"
    code, printed, err = run(capsys, "plot", *argv, "--model", "tiny", "--out", out)
    assert code == 0 and printed == f"{out}\n" and err == "" and out.stat().st_size > 0
    code, _, err = run(capsys, "plot", *argv, "--model", "tiny", "--out", tmp_path / "no" / "x.png")
    assert code == 1 and err.count("\n") == 1 and "does not exist" in err
