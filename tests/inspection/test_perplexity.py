"""The perplexity of a whole text with a sliding window (minigpt/perplexity.py, `minigpt score --file`):
the same windows and the same NLL, window by window, as transformers' guide computes them (recorded by
scripts/reference/perplexity.py, and recomputed live when torch is here)."""

import json
import math
import re
import sys

import numpy as np
import pytest
from conftest import load_model, require_reference
from helpers import CHECKOUT, Terminal, log_softmax64, run_cli

import minigpt
from minigpt import inspection
from minigpt.cli.main import main
from minigpt.inspection import scoring
from minigpt.inspection.scoring import cross_entropy, score_text, windows

RECORDED = json.loads((CHECKOUT / "tests" / "fixtures" / "perplexity" / "reference.json").read_text())["cases"]


def case_id(case):
    return f"{case['fixture']}-{len(case['ids'])}-L{case['max_length']}-S{case['stride']}"


def assert_same_windows(ours, theirs):
    assert [(w.begin, w.end, w.scored) for w in ours.windows] == [(t["begin"], t["end"], t["scored"]) for t in theirs]
    np.testing.assert_allclose([w.nll for w in ours.windows], [t["nll"] for t in theirs], rtol=1e-5)
    assert ours.nll == pytest.approx(sum(t["nll"] for t in theirs), rel=1e-5)
    assert ours.tokens == sum(t["scored"] for t in theirs)


@pytest.mark.parametrize("case", RECORDED, ids=case_id)
def test_every_window_equals_transformers_recorded(case):
    ours = score_text(load_model(case["fixture"]), case["ids"], case["stride"], case["max_length"])
    assert_same_windows(ours, case["windows"])
    assert ours.perplexity == pytest.approx(math.exp(ours.nll / ours.tokens))


@pytest.mark.parametrize("case", RECORDED, ids=case_id)
def test_every_window_equals_transformers_live(case):
    torch, transformers = require_reference()
    from scripts.reference import perplexity  # it imports torch: not at the top
    folder = CHECKOUT / "tests" / "fixtures" / case["fixture"]
    model = transformers.GPT2LMHeadModel.from_pretrained(folder, dtype=torch.float32).eval()
    ids = np.random.default_rng(7).integers(0, model.config.vocab_size, len(case["ids"])).tolist()  # fresh text
    theirs = perplexity.window_nlls(model, ids, case["max_length"], case["stride"])
    assert_same_windows(score_text(load_model(case["fixture"]), ids, case["stride"], case["max_length"]), theirs)


@pytest.mark.parametrize("n, max_length, stride", [(300, 64, 24), (300, 64, 64), (65, 64, 1), (2, 2, 1)])
def test_windows_score_each_token_once(n, max_length, stride):
    plan = windows(n, max_length, stride)
    scored = [t for w in plan for t in range(w.first_scored, w.end)]
    assert len(scored) == len(set(scored)) and plan[-1].end == n
    assert all(w.end - w.begin <= max_length and w.first_scored > w.begin for w in plan)
    if stride < max_length:  # every token but the first
        assert scored == list(range(1, n))
    else:  # no overlap: each window's first token has no context
        assert set(range(n)) - set(scored) == {w.begin for w in plan}


def test_one_window_is_the_texts_own_perplexity():
    model, ids = load_model("fullvocab"), list(range(100, 140))
    assert score_text(model, ids).perplexity == pytest.approx(inspection.perplexity_of(inspection.token_logprobs(model,
                                                                                                            ids)))


def test_windows_give_the_same_numbers_in_batches_of_any_size(monkeypatch):
    model, ids = load_model("fullvocab"), np.random.default_rng(3).integers(0, 50257, 400).tolist()
    together = score_text(model, ids, stride=16, max_length=48)
    monkeypatch.setattr(scoring, "BATCH_BYTES", 1)  # one window at a time
    alone = score_text(model, ids, stride=16, max_length=48)
    np.testing.assert_allclose([w.nll for w in alone.windows], [w.nll for w in together.windows], rtol=1e-6)


def test_bits_per_byte_counts_the_scored_tokens_bytes():
    tok = minigpt.Tokenizer()
    ids = tok.encode("The quick brown fox jumps over the lazy dog. " * 3)
    result = score_text(load_model("fullvocab"), ids, stride=8, max_length=16)
    assert result.bytes == len(tok.decode(ids[1:]).encode())
    assert result.bits_per_byte == pytest.approx(result.nll / math.log(2) / result.bytes)


@pytest.mark.parametrize("options, says", [
    (dict(stride=30, max_length=20), "stride (30) exceeds max_length (20)"),
    (dict(max_length=2000), "max_length (2000) exceeds the model's context of n_positions=1024"),
    (dict(max_length=1), "max_length must be an integer >= 2"),
    (dict(stride=0), "stride must be an integer >= 1"),
])
def test_a_window_that_cannot_work_is_refused(options, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        score_text(load_model("fullvocab"), list(range(50)), **options)


def test_score_file_reports_documents_and_the_whole(tmp_path, capsys, monkeypatch):
    docs = tmp_path / "docs.jsonl"
    texts = ["The quick brown fox jumps over the lazy dog. " * 4, "A second, shorter document."]
    docs.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    model_dir = str(CHECKOUT / "tests" / "fixtures" / "fullvocab")
    code, out, err = run_cli(capsys, "score", "--file", docs, "--model", model_dir, "--max-length", "16",
                             "--stride", "8", "--json")
    assert code == 0 and err == ""
    report, model, tok = json.loads(out), load_model("fullvocab"), minigpt.Tokenizer()
    each = [score_text(model, tok.encode(t), stride=8, max_length=16) for t in texts]
    assert [d["perplexity"] for d in report["documents"]] == pytest.approx([r.perplexity for r in each])
    assert report["tokens"] == sum(r.tokens for r in each)
    assert report["perplexity"] == pytest.approx(math.exp(sum(r.nll for r in each) / report["tokens"]))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\nnot json\n')
    code, _, err = run_cli(capsys, "score", "--file", bad, "--model", model_dir)
    assert code == 1 and err.count("\n") == 1 and "line 2 of " in err
    code, _, err = run_cli(capsys, "score", "text", "--stride", "4", "--model", model_dir)
    assert code == 1 and "give --file FILE as well" in err
    bars = sys.modules["huggingface_hub.utils.tqdm"]  # as a terminal shows it, whatever the caller's settings
    monkeypatch.setattr(bars, "HF_HUB_DISABLE_PROGRESS_BARS", None)
    monkeypatch.setattr(bars, "progress_bar_states", {})
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    for quiet, shown in ((["--quiet"], False), ([], True)):
        monkeypatch.setattr(sys, "stderr", Terminal())
        assert main(["score", "--file", str(docs), "--model", model_dir, "--max-length", "16", "--stride", "8",
                     *quiet]) == 0
        assert ("scoring: 100%" in sys.stderr.getvalue()) == shown


def test_cross_entropy_is_minus_log_softmax_at_the_target():
    logits = np.random.default_rng(5).normal(0, 8, (7, 300)).astype(np.float32)
    targets = np.array([0, 299, 5, 5, 17, 150, 3])
    want = -log_softmax64(logits)[np.arange(7), targets]
    np.testing.assert_allclose(cross_entropy(logits, targets), want, rtol=1e-5)
