"""The watermark (links/watermark.py) and its detector (inspection/watermark.py), equal to transformers'
WatermarkLogitsProcessor and WatermarkDetector, and the lesson of docs/strategies.md.

- recorded: scripts/reference/watermark.py's green lists (vocabularies of 20, 1000 and GPT-2's 50257), marks of
  random logits, the detector's counts, z-scores and p-values on texts, for both seeding schemes, and what
  transformers' greedy generate() wrote on tiny-hub with and without the watermark;
- live (when torch and transformers import): random contexts, logits and texts through both;
- transformers' own test of the processor (tests/generation/test_logits_process.py) replayed;
- the command line tells a marked text from a plain one, and the lesson's numbers are what the code prints.
"""

import contextlib
import io
import json
import re

import numpy as np
import pytest
from helpers import CHECKOUT, run_cli

import minigpt
from minigpt.core.checks import OptionError
from minigpt.links.watermark import GreenLists, Watermark, randperm_prefix
from scripts.docs.numbers import same_text

RECORD = json.loads((CHECKOUT / "tests" / "fixtures" / "processors" / "watermark.json").read_text())
DEFAULTS = {"greenlist_ratio": 0.25, "hashing_key": 15485863, "seeding_scheme": "lefthash", "context_width": 1}


def green_lists(vocab_size, setting) -> GreenLists:
    s = DEFAULTS | setting
    return GreenLists(vocab_size, s["greenlist_ratio"], s["hashing_key"], s["seeding_scheme"], s["context_width"])


def mark(setting, bias) -> Watermark:
    return Watermark(on=True, bias=bias, **(DEFAULTS | setting))


@pytest.mark.parametrize("case", RECORD["green_lists"], ids=lambda c: f"{c['vocab_size']}-{c['setting']}")
def test_recorded_green_lists(case):
    green = green_lists(case["vocab_size"], case["setting"]).green(case["context"]).tolist()
    assert len(green) == case["size"]
    if "green" in case:
        assert green == case["green"]
    else:  # GPT-2's vocabulary: the first 64, and the sum of all
        assert green[:64] == case["first"] and sum(green) == case["sum"]


@pytest.mark.parametrize("case", RECORD["marks"], ids=lambda c: f"{c['vocab_size']}-{c['setting']}")
def test_recorded_marks(case):
    logits = np.array(case["logits"], np.float32)
    expected = logits.copy()
    for row, marked in enumerate(case["marked"]):
        expected[row, marked] += np.float32(case["bias"])
    np.testing.assert_array_equal(mark(case["setting"], case["bias"])(logits, np.array(case["ids"])), expected)


@pytest.mark.parametrize("case", RECORD["scores"],
                         ids=lambda c: f"{c['text']}-{c['setting']}-{'once' if c['ignore_repeated_ngrams'] else 'all'}")
def test_recorded_scores(case):
    score = minigpt.watermark_score(RECORD["texts"][case["text"]], vocab_size=case["vocab_size"],
                                    bos_token_id=case["bos_token_id"],
                                    ignore_repeated_ngrams=case["ignore_repeated_ngrams"], **case["setting"])
    assert (score.num_tokens_scored, score.num_green_tokens) == (case["num_tokens_scored"], case["num_green_tokens"])
    assert score.z_score == pytest.approx(case["z_score"], rel=1e-12, abs=1e-12)
    assert score.p_value == pytest.approx(case["p_value"], rel=1e-9, abs=1e-300)


def test_generate_with_the_watermark_writes_what_transformers_wrote():
    """Greedy on tiny-hub: the marked text is transformers' token for token, and so is the plain one."""
    g = RECORD["generate"]
    model = minigpt.load(CHECKOUT / "tests" / "fixtures" / g["checkpoint"])
    for on, name in ((True, "tiny_hub_watermarked"), (False, "tiny_hub_plain")):
        out = minigpt.generate(model, g["prompt"], max_new_tokens=g["max_new_tokens"],
                               min_new_tokens=g["max_new_tokens"], eos_token_id=g["eos_token_id"], watermark=on,
                               watermark_bias=g["bias"])
        assert out.sequences[0] == RECORD["texts"][name]
    marked = minigpt.watermark_score(RECORD["texts"]["tiny_hub_watermarked"], vocab_size=1000, bos_token_id=999)
    plain = minigpt.watermark_score(RECORD["texts"]["tiny_hub_plain"], vocab_size=1000, bos_token_id=999)
    assert marked.prediction and not plain.prediction


def test_the_shuffle_is_torchs_randperm():
    """randperm_prefix replays torch.randperm's Fisher-Yates from the Mersenne Twister's raw outputs."""
    torch = pytest.importorskip("torch")
    for seed, n, k in ((0, 20, 20), (15485863 * 7, 1000, 250), (2**40 + 3, 50257, 300)):
        torch.manual_seed(seed)
        assert randperm_prefix(seed, n, k).tolist() == torch.randperm(n)[:k].tolist()


# ----------------------------------------------------------------------------- live against transformers


@pytest.fixture(scope="module")
def transformers():
    pytest.importorskip("torch")
    return pytest.importorskip("transformers")


SETTINGS = [{}, {"seeding_scheme": "selfhash"}, {"hashing_key": 3, "greenlist_ratio": 0.6},
            {"seeding_scheme": "selfhash", "context_width": 2, "greenlist_ratio": 0.1}]


@pytest.mark.parametrize("setting", SETTINGS, ids=str)
def test_marks_and_scores_match_transformers(transformers, setting):
    import torch
    from transformers.generation.logits_process import WatermarkLogitsProcessor
    rng = np.random.default_rng(sum(map(ord, str(setting))))
    for vocab in (50, 257):
        theirs = WatermarkLogitsProcessor(vocab_size=vocab, device="cpu", bias=2.5, **setting)
        ids, logits = rng.integers(0, vocab, size=(3, 5)), rng.normal(0, 2, size=(3, vocab)).astype(np.float32)
        expected = theirs(torch.from_numpy(ids), torch.from_numpy(logits.copy())).numpy()
        np.testing.assert_array_equal(mark(setting, 2.5)(logits, ids), expected)
        context = ids[0, :3]
        assert green_lists(vocab, setting).green(context).tolist() == theirs._get_greenlist_ids(
            torch.from_numpy(context)).tolist()
        text = rng.integers(0, vocab, size=40)
        detector = transformers.WatermarkDetector(transformers.GPT2Config(vocab_size=vocab, bos_token_id=vocab - 1),
                                                  "cpu", transformers.WatermarkingConfig(**setting))
        out = detector(torch.from_numpy(text[None]), return_dict=True)
        score = minigpt.watermark_score(text, vocab_size=vocab, bos_token_id=vocab - 1, **setting)
        assert (score.num_tokens_scored, score.num_green_tokens) == (out.num_tokens_scored[0], out.num_green_tokens[0])
        assert score.z_score == pytest.approx(float(out.z_score[0]), rel=1e-12, abs=1e-12)


def test_the_watermark_runs_where_transformers_puts_it(transformers):
    """After the warpers, before renormalisation: transformers' _get_logits_processor with both."""
    from scripts.reference.processors import decoder_only_model
    config = transformers.GenerationConfig(do_sample=True, top_k=5, temperature=0.7, renormalize_logits=True,
                                           watermarking_config=transformers.WatermarkingConfig())
    theirs = [type(p).__name__ for p in decoder_only_model()._get_logits_processor(config, input_ids_seq_length=2)]
    ours = minigpt.generate(minigpt.load("tiny"), [464, 2163], "sample", seed=0, max_new_tokens=1, top_k=5,
                            temperature=0.7, renormalize_logits=True, watermark=True).chain
    assert [name.split("(")[0] for name in ours] == ["temperature", "top_k", "watermark", "renormalize"]
    assert theirs[-2:] == ["WatermarkLogitsProcessor", "LogitNormalization"]
    assert theirs.index("TopKLogitsWarper") < theirs.index("WatermarkLogitsProcessor")


# ----------------------------------------------------------------------------- transformers' own test, replayed


def test_transformers_watermarking_processor():
    """test_watermarking_processor: the refusals, and with 10 as the last token, token 1 is green for the default key
    over 20 tokens (the uniform scores of any ids before it gain the bias)."""
    with pytest.raises(OptionError, match="watermark_seeding_scheme must be"):
        minigpt.generate(minigpt.load("tiny"), [464], watermark=True, watermark_seeding_scheme="hash")
    with pytest.raises(OptionError, match="watermark_greenlist_ratio must be"):
        minigpt.generate(minigpt.load("tiny"), [464], watermark=True, watermark_greenlist_ratio=1.2)
    ids = np.random.default_rng(0).integers(0, 20, size=(3, 5))
    ids[:, -1] = 10
    scores = np.full((3, 20), 1 / 20, np.float32)
    out = Watermark(on=True)(scores, ids)
    assert (out[:, 1] == scores[:, -1] + np.float32(2.0)).all()


# ----------------------------------------------------------------------------- the command line and the lesson


def test_detect_watermark_tells_a_marked_text_from_a_plain_one(capsys, tmp_path):
    model, tok = minigpt.load("tiny"), minigpt.Tokenizer()
    prompt = tok.encode("A file object")
    texts = {on: tok.decode(minigpt.generate(model, prompt, "sample", seed=5, max_new_tokens=50,
                                             watermark=on).sequences[0]) for on in (False, True)}
    code, out, err = run_cli(capsys, "detect-watermark", texts[True])
    assert code == 0 and not err and out.rstrip().endswith("(watermarked above z = 4)") and ": watermarked" in out
    (tmp_path / "plain.txt").write_text(texts[False])
    code, out, err = run_cli(capsys, "detect-watermark", "--file", tmp_path / "plain.txt", "--json")
    answer = json.loads(out)
    assert code == 0 and answer["prediction"] is False and answer["z_score"] < 4 and answer["num_tokens_scored"] > 30
    code, out, err = run_cli(capsys, "detect-watermark", texts[True], "--watermark-hashing-key", "7")
    assert code == 0 and "no watermark found" in out  # another key: the green lists are others


@pytest.mark.parametrize("argv, refusal", [
    ((), "give either a text to check or --file FILE"),
    (("Hello",), "the text has 1 token, too few to score"),
    (("Hello world",), None),
    (("Hello world", "--watermark-greenlist-ratio", "1"), "--watermark-greenlist-ratio must be a number in (0, 1)"),
    (("Hello world", "--watermark-seeding-scheme", "hash"), "--watermark-seeding-scheme must be 'lefthash' or"),
    (("--file", "/no/such/file.txt"), "cannot read --file /no/such/file.txt"),
])
def test_detect_watermark_refuses_in_one_sentence(capsys, argv, refusal):
    code, out, err = run_cli(capsys, "detect-watermark", *argv)
    if refusal is None:
        assert code == 0 and not err
        return
    assert code != 0 and not out and err.startswith("minigpt: error: " + refusal) and err.count("\n") == 1


def test_a_refusal_in_python_names_the_keyword():
    with pytest.raises(OptionError, match=r"^greenlist_ratio must be a number in \(0, 1\), got 2\.$"):
        minigpt.watermark_score("Hello world", greenlist_ratio=2)
    with pytest.raises(OptionError, match="the text has 2 tokens, too few to score: each token scored needs the 2 "
                                          "tokens before it"):
        minigpt.watermark_score([1, 2], seeding_scheme="selfhash", context_width=2)


def test_the_lesson_of_the_strategies_page_is_what_the_code_prints():
    """docs/strategies.md's watermark section: its Python block, run here, prints its text block; the plain text
    is not found watermarked and the marked one is."""
    page = (CHECKOUT / "docs" / "strategies.md").read_text()
    section = page[page.index("## The watermark") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    shown = re.search(r"```text\n(.*?)```", section, re.S).group(1)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(code, {})
    assert same_text(printed.getvalue(), shown), printed.getvalue()  # numbers to float32's rounding across kernels
    plain, marked = shown.splitlines()
    assert plain.endswith("no watermark found)") and marked.endswith(": watermarked)")
    z = [float(re.search(r"z=(-?[\d.]+)", line).group(1)) for line in (plain, marked)]
    assert z[0] < 4 < z[1]
