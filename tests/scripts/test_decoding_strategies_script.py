"""scripts/docs/decoding_strategies.py, the walkthrough of the classic study, on the full-vocabulary fixture."""

import pytest
from conftest import reference
from helpers import png_size

from scripts.docs import decoding_strategies

HEADINGS = ["Greedy search", "Beam search", "Beam search, no repeated bigram", "Sampling", "Temperature",
            "Top-k sampling", "Top-p (nucleus) sampling"]
FIGURES = ["next_token.png", "beam_tree.png", "temperature.png", "top_k.png", "top_p.png", "logit_lens.png", "attention.png"]


def test_prints_every_strategy(capsys, tmp_path):
    code = decoding_strategies.main(["--model", str(reference("fullvocab").folder), "--max-new-tokens", "6",
                                     "--no-figures", "--out-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0 and list(tmp_path.iterdir()) == []
    for heading in HEADINGS:
        assert f"\n{heading}: " in out
    assert out.count("\n=== ") == len(HEADINGS)
    table = out[out.index("\nrun ") :].strip().splitlines()
    assert len(table) == 1 + len(HEADINGS)


def test_writes_every_figure(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    code = decoding_strategies.main(["--model", str(reference("fullvocab").folder), "--max-new-tokens", "3",
                                     "--out-dir", str(tmp_path / "figures")])
    out = capsys.readouterr().out
    assert code == 0
    for name in FIGURES:
        path = tmp_path / "figures" / name
        assert f"wrote {path}" in out
        width, height = png_size(path)
        assert width > 0 and height > 0


def test_missing_weights_end_in_one_line(capsys, tmp_path):
    code = decoding_strategies.main(["--model", str(tmp_path / "no-such-model")])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("decoding_strategies: error: ") and err.count("\n") == 1
