"""minigpt attribute | patch | heads on the shipped tiny model: --json is the library's result, the tables say what
the library computed (the attribution's sum line is the logit), and bad input ends in one sentence."""

import json
import re

import numpy as np
import pytest
from helpers import run_cli as run

import minigpt

PROMPT = "If the file is not found, an exception is"
CLEAN, CORRUPTED = PROMPT, "If the file is not empty, an exception is"  # equal lengths: 10 tokens each
REPEATED = "If the file is not found, an exception is raised. " * 2
tok = minigpt.Tokenizer()


@pytest.fixture(scope="module")
def model():
    return minigpt.load("tiny")


def library_json(result) -> dict:
    return json.loads(json.dumps(result.to_json()))  # the floats as JSON writes them


@pytest.mark.parametrize("flags, options", [
    ([], {}),
    (["--versus", " not", "--by", "layer"], {"versus": tok.encode(" not")[0], "by": "layer"}),
    (["--fold-value-biases", "--centered", "--position", "3"], {"fold_value_biases": True, "centered": True,
                                                                "position": 3}),
])
def test_attribute_json_is_the_librarys_result(capsys, model, flags, options):
    code, out, err = run(capsys, "attribute", PROMPT, "--token", " raised", "--model", "tiny", "--json", *flags)
    assert code == 0 and err == ""
    want = minigpt.attribute(model, tok.encode(PROMPT), tok.encode(" raised")[0], **options)
    assert json.loads(out) == library_json(want)


def test_attribute_without_a_token_explains_the_models_own_choice(capsys, model):
    code, out, _ = run(capsys, "attribute", PROMPT, "--model", "tiny", "--json")
    ids = tok.encode(PROMPT)
    assert code == 0 and json.loads(out)["token"] == int(model(ids)[-1].argmax())


@pytest.mark.parametrize("flags", [[], ["--versus", " not"], ["--by", "layer", "--top", "3"], ["--centered"]])
def test_the_attribution_tables_rows_add_up_to_its_sum_line_which_is_the_logit(capsys, model, flags):
    code, out, _ = run(capsys, "attribute", PROMPT, "--token", " raised", "--model", "tiny", *flags)
    lines = out.splitlines()
    rows = [float(line.split()[-1]) for line in lines[2:] if line.startswith("  ") and "sum" not in line]
    total = next(float(line.split()[-1]) for line in lines if line.startswith("  sum"))
    versus = tok.encode(" not")[0] if "--versus" in flags else None
    want = minigpt.attribute(model, tok.encode(PROMPT), tok.encode(" raised")[0], versus,
                             by="layer" if "layer" in flags else "head", centered="--centered" in flags)
    assert code == 0 and total == pytest.approx(want.logit, abs=1e-4)
    assert sum(rows) == pytest.approx(total, abs=1e-3)  # each row rounded to 4 decimals
    assert "the model's own logit[␣raised]" in out and f" is {want.logit:.4f}: " in out
    top = 3 if "--top" in flags else 10
    assert "leftover (ln_f bias)" in out and len(rows) == top + 1 + 1  # the top rows, the other parts, the leftover


def test_the_attribution_table_names_the_token_the_position_and_the_parts(capsys):
    code, out, _ = run(capsys, "attribute", PROMPT, "--token", " raised", "--versus", " not", "--model", "tiny")
    assert out.startswith("logit[␣raised] - logit[␣not] after ␣is (position 9), split by head: the 10 largest of "
                          "23 parts")
    assert "L1H2: layer 1's head 2" in out and re.search(r"^  L\dH\d ", out, re.M)


def test_patch_json_is_the_librarys_result(capsys, model):
    for where in ("resid_pre", "head"):
        code, out, _ = run(capsys, "patch", "--clean", CLEAN, "--corrupted", CORRUPTED, "--where", where,
                           "--answer", " raised", "--wrong", " not", "--model", "tiny", "--json")
        want = minigpt.patch(model, tok.encode(CLEAN), tok.encode(CORRUPTED), where, tok.encode(" raised")[0],
                             tok.encode(" not")[0])
        assert code == 0 and json.loads(out) == library_json(want)


def test_patch_draws_layers_by_positions_with_the_tokens_and_both_metrics(capsys, model):
    code, out, _ = run(capsys, "patch", "--clean", CLEAN, "--corrupted", CORRUPTED, "--model", "tiny")
    want = minigpt.patch(model, tok.encode(CLEAN), tok.encode(CORRUPTED), "resid_pre")
    lines = out.splitlines()
    assert code == 0 and f"clean {want.clean_metric:.4f}, corrupted {want.corrupted_metric:.4f}" in lines[1]
    assert lines[2].split()[-4:] == ["0", "layer", "1", "layer", "2", "layer", "3"][-4:] and "layer 0" in lines[2]
    row = next(line for line in lines if line.startswith("  5 "))
    assert "␣found → ␣empty" in row  # the position where the prompts differ shows both tokens
    cells = [float(c.rstrip(" ░▒▓█")) for c in re.findall(r"[+-]\d+\.\d{3}", row)]
    assert np.allclose(cells, want.values[:, 5], atol=5e-4)
    assert "▓" in out or "█" in out  # layer 0 at the corrupted position gives back the clean metric


def test_heads_json_and_table_are_the_librarys_scores(capsys, model):
    code, out, _ = run(capsys, "heads", REPEATED, "--kind", "induction", "--model", "tiny", "--json")
    want = minigpt.head_scores(model, tok.encode(REPEATED), "induction")
    assert code == 0 and json.loads(out) == library_json(want)
    code, out, _ = run(capsys, "heads", REPEATED, "--kind", "induction", "--model", "tiny", "--top", "2")
    grid = [[float(x) for x in line.split()[2:]] for line in out.splitlines() if line.startswith("layer ")]
    assert np.allclose(grid, want.scores, atol=5e-4)
    (a, s), (b, t) = want.top(2)
    assert f"top 2 heads: {a} {s:.3f}, {b} {t:.3f}" in out


@pytest.mark.parametrize("argv, sentence", [
    (["attribute", PROMPT, "--token", " Parisian"], "--token ' Parisian' is 2 tokens (␣Paris + ian), not one; give a "
                                                    "single token, such as ' Paris'"),
    (["attribute", PROMPT, "--versus", ""], "--versus '' is 0 tokens"),
    (["attribute", PROMPT, "--position", "10"], "--position takes a position of the prompt's 10 tokens, 0 to 9"),
    (["attribute", PROMPT, "--versus", " not", "--centered"], "give one of them"),
    (["attribute", PROMPT, "--top", "0"], "--top takes how many rows to show"),
    (["patch", "--clean", CLEAN, "--corrupted", "If the file is missing"], "--clean is 10 tokens and --corrupted 5 "
                                                                           "tokens; patching compares them position by "
                                                                           "position, so reword one"),
    (["patch", "--clean", CLEAN, "--corrupted", CORRUPTED, "--wrong", " raised", "--answer", " raised"],
     "answer and wrong are both token"),
    (["heads", "If", "--kind", "induction"], "at least 2 tokens"),
])
def test_bad_input_is_one_sentence(capsys, argv, sentence):
    code, out, err = run(capsys, *argv, "--model", "tiny")
    assert code == 1 and out == "" and "Traceback" not in err
    assert err.startswith("minigpt: error: ") and err.count("\n") == 1 and sentence in err
    assert err.rstrip().endswith(".") and err.count(". ") == 0  # one sentence
