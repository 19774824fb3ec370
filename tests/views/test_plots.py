"""`minigpt plot ...`: each picture is written as a valid PNG on a fixture checkpoint with GPT-2's full
vocabulary (so real text prompts work), with no glyph missing from the font; bad input and a missing
matplotlib end in one line."""

import sys

import pytest
from conftest import load_model, reference
from helpers import png_size

from minigpt.cli.main import main

pytest.importorskip("matplotlib")

CHECKPOINT = str(reference("fullvocab").folder)
PROMPT = "The quick brown fox\njumps over the lazy dog"

COMMANDS = {
    "probs": ["probs", PROMPT],
    "probs-cutoffs": ["probs", PROMPT, "--temperature", "0.7", "--temperature", "1", "--temperature", "1.5", "--top-k", "5", "--top-p", "0.9",
                      "--min-p", "0.05", "--top", "12", "--seed", "1"],
    "beam-tree": ["beam-tree", PROMPT, "--num-beams", "3", "--max-new-tokens", "4"],
    "beam-tree-score": ["beam-tree", PROMPT, "--color-by", "score", "--length-penalty", "2", "--no-repeat-ngram-size", "2"],
    "lens": ["lens", PROMPT],
    "attention-head": ["attention", PROMPT, "--layer", "1", "--head", "0"],
    "attention-grid": ["attention", PROMPT, "--layer", "0"],
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_plot_writes_a_png(name, tmp_path, capsys):
    out = tmp_path / f"{name}.png"
    code = main(["plot", *COMMANDS[name], "--model", CHECKPOINT, "--out", str(out)])
    printed, err = capsys.readouterr()
    assert code == 0, err
    assert printed.strip() == str(out)
    assert "missing from" not in err, err  # every label's glyph (␣, ↵, ✓ ...) is in the font
    width, height = png_size(out)
    assert width > 300 and height > 200 and out.stat().st_size > 5000


@pytest.mark.parametrize("out, says", [
    ("{tmp}/no/such/folder/x.png", "the folder {tmp}/no/such/folder does not exist; create it first (mkdir -p "),
    ("{tmp}/x.txt", "matplotlib writes pictures as .eps, "),
    ("{tmp}/x", "not a file without an extension; end the name in .png, .svg or .pdf."),
    ("{tmp}", "{tmp} is a folder; give the picture a file name, such as {tmp}/picture.png."),
])
def test_a_picture_that_cannot_be_written_is_refused_before_any_work(out, says, tmp_path, capsys):
    out, says = out.format(tmp=tmp_path), says.format(tmp=tmp_path)
    code = main(["plot", "lens", "hi", "--model", str(tmp_path / "no-model"), "--out", out])  # no model is loaded
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and says in err and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([] if out != str(tmp_path) else [])


def test_a_file_that_cannot_be_written_is_named(capsys, monkeypatch, tmp_path):
    locked = tmp_path / "locked.png"

    def refuse(path, mode="r", *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("builtins.open", refuse)  # as a read-only disk would; root may write anywhere else
    code = main(["plot", "lens", "hi", "--model", str(tmp_path / "no-model"), "--out", str(locked)])
    err = capsys.readouterr().err
    assert code == 1 and err == f"minigpt: error: cannot write {locked}: permission denied; write the picture " \
                                "somewhere you may write to.\n"
    assert not locked.exists()


def test_library_functions_return_the_figure(tmp_path):
    from matplotlib.figure import Figure

    from minigpt.inspection import attention_patterns
    from minigpt.views.plots import plot_attention

    model = load_model("tiny-hub")
    maps = attention_patterns(model, [1, 2, 3]).weights
    fig = plot_attention(maps, 1, None, ["a", " b", "\n"], "a title", tmp_path / "grid.png")
    assert isinstance(fig, Figure) and len(fig.axes) == 4 + 1  # four heads and the colour bar
    assert fig.axes[0].get_yticklabels()[1].get_text() == "␣b"
    assert fig.axes[0].get_yticklabels()[2].get_text() == "↵"
    png_size(tmp_path / "grid.png")


@pytest.mark.parametrize("argv, message", [
    (["attention", "Hello", "--layer", "2"], "layer must be a whole number from 0 to 1 (the model has 2 layers"),
    (["attention", "Hello", "--layer", "0", "--head", "-1"], "head must be a whole number from 0 to 1"),
    (["probs", "Hello", "--top-p", "1.5"], "--top-p must be a number in (0, 1]"),
    (["beam-tree", "Hello", "--num-beams", "0"], "--num-beams"),
])
def test_bad_settings_are_one_line(argv, message, tmp_path, capsys):
    out = tmp_path / "never.png"
    code = main(["plot", *argv, "--model", CHECKPOINT, "--out", str(out)])
    _, err = capsys.readouterr()
    assert code == 1 and message in err and err.count("\n") == 1, err
    assert not out.exists()


def test_missing_matplotlib_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    code = main(["plot", "lens", "Hello", "--model", CHECKPOINT, "--out", str(tmp_path / "lens.png")])
    _, err = capsys.readouterr()
    assert code == 1 and err == 'minigpt: error: plotting needs matplotlib, an optional extra: install it with pip install -e ".[plots]".\n'
