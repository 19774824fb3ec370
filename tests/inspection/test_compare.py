"""compare: one prompt through many strategies. Its log p is checked against model(ids) computed afresh,
its distinct-n against counts done by hand, its runs against generate() called directly."""

import json

import numpy as np
import pytest
from conftest import load_model, reference

import minigpt
import minigpt.inspection.compare as compare_module
from minigpt.cli.main import main
from minigpt.inspection.compare import CLASSIC, RunSpec, compare, distinct_n, parse_run

tok = minigpt.Tokenizer()
PROMPT = "I have a dream"


def test_distinct_n_by_hand():
    tokens = [1, 2, 1, 2, 3]
    assert distinct_n(tokens, 1) == 3 / 5  # {1, 2, 3} of 5 unigrams
    assert distinct_n(tokens, 2) == 3 / 4  # (1,2) (2,1) (1,2) (2,3): 3 distinct of 4
    assert distinct_n(tokens, 3) == 3 / 3  # (1,2,1) (2,1,2) (1,2,3)
    assert distinct_n([7, 7, 7, 7], 2) == 1 / 3
    assert distinct_n([5], 2) is None and distinct_n([], 1) is None
    with pytest.raises(ValueError, match="n must be"):
        distinct_n(tokens, 0)


def test_parse_run():
    spec = parse_run("sample top-p=0.9 temperature=0.8")
    assert spec == RunSpec("sample", {"top_p": 0.9, "temperature": 0.8}) and spec.name == "sample top_p=0.9 temperature=0.8"
    assert parse_run("top-p") is CLASSIC["top-p"] and parse_run("beam") is CLASSIC["beam"]
    assert parse_run("beam num-beams=3 early_stopping=never").options == {"num_beams": 3, "early_stopping": "never"}
    assert parse_run("greedy suppress_tokens=198,50256 min_new_tokens=2").options == {
        "suppress_tokens": [198, 50256], "min_new_tokens": 2}
    for bad, words in (("", "name a strategy"), ("samples", "starts with a strategy"), ("sample top_p", "NAME=VALUE"),
                       ("sample top_p =0.9", "NAME=VALUE")):
        with pytest.raises(ValueError, match=words):
            parse_run(bad)


def independent_logprob(model, prompt, tokens) -> float:
    """sum_t log p(tokens[t] | prompt + tokens[:t]) from one forward pass over everything, in float64."""
    logits = model(np.array(prompt + tokens)).astype(np.float64)  # [T, V]
    rows = logits[len(prompt) - 1 : len(prompt) - 1 + len(tokens)]  # the distributions the tokens were drawn from
    logp = rows - rows.max(axis=-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=-1, keepdims=True))
    return float(logp[np.arange(len(tokens)), tokens].sum())


def test_classic_runs_measured_independently():
    model, prompt = load_model("fullvocab"), tok.encode(PROMPT)
    results = compare(model, prompt, max_new_tokens=12, seed=3)
    assert [r.spec.label for r in results] == list(CLASSIC)
    for r in results:
        direct = minigpt.generate(model, prompt, r.spec.strategy, **r.options)
        assert r.tokens == direct.sequences[0] and r.text == direct.texts[0]
        assert r.logprob == pytest.approx(independent_logprob(model, prompt, r.tokens), rel=1e-4, abs=1e-4)
        if r.spec.strategy == "beam":  # the beam score is processed and length-normalised; log p is not
            assert r.logprob != pytest.approx(direct.scores[0])
        text = [t for t in r.tokens if t != tok.eot]  # distinct-n counts the text's tokens, not end-of-text
        for n in (1, 2, 3):
            grams = [tuple(text[i : i + n]) for i in range(len(text) - n + 1)]
            assert r.distinct[n] == len(set(grams)) / len(grams)
    assert results[2].options == {"max_new_tokens": 12, "seed": 3, "top_k": 50}
    assert results[0].options == {"max_new_tokens": 12}  # greedy takes no seed


def test_a_bad_run_is_refused_before_anything_is_generated(monkeypatch):
    calls = []
    monkeypatch.setattr(compare_module, "generate", lambda *a, **k: calls.append(a))
    with pytest.raises(ValueError, match="run 'sample top_p=2': top_p"):
        compare(load_model("fullvocab"), tok.encode(PROMPT), ["greedy", "sample top_p=2"])
    assert calls == []


def test_cli_compare(capsys):
    folder, model = reference("fullvocab").folder, load_model("fullvocab")
    argv = ["compare", PROMPT, "--model", str(folder), "--max-new-tokens", "6", "--run", "greedy",
            "--run", "sample top-p=0.9 temperature=0.8", "--seed", "1"]
    assert main(argv + ["--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    want = compare(model, tok.encode(PROMPT), ["greedy", "sample top-p=0.9 temperature=0.8"], max_new_tokens=6, seed=1)
    assert result["prompt_tokens"] == tok.encode(PROMPT)
    assert [(r["label"], r["tokens"], r["logprob"], r["distinct"]["2"]) for r in result["runs"]] == \
        [(w.spec.name, w.tokens, w.logprob, w.distinct[2]) for w in want]
    assert result["runs"][1]["options"] == {"max_new_tokens": 6, "seed": 1, "top_p": 0.9, "temperature": 0.8}

    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "=== greedy" and lines[1] == "    " + PROMPT + want[0].text  # each run named once
    assert "=== sample top_p=0.9 temperature=0.8 (seed=1)" in lines
    table = lines[lines.index(next(line for line in lines if line.startswith("run "))):]
    assert table[0].split() == ["run", "log", "p", "per", "token", "distinct-1", "distinct-2", "distinct-3"]
    assert float(table[1].split()[1]) == pytest.approx(want[0].logprob, abs=1e-3)


def test_cli_compare_refuses_a_bad_run(capsys):
    assert main(["compare", PROMPT, "--model", str(reference("fullvocab").folder), "--run", "greedy top_k=3"]) == 1
    err = capsys.readouterr().err
    assert "run 'greedy top_k=3'" in err and "does not use top_k" in err and err.count("\n") == 1
