"""The links added after the first record: sequence_bias, encoder_repetition_penalty, encoder_no_repeat_ngram_size,
prefix_allowed_tokens_fn and allowed_tokens_regex, forced_eos_token_id, exponential_decay_length_penalty, top_h and
renormalize_logits; equal to transformers' processors, and true to what each promises.

- recorded: the cases scripts/reference/processors.py ran through transformers 5.25 after its first ones (each
  link alone, and whole chains with the added options), replayed with NumPy;
- live (when torch and transformers import): hypothesis draws cases and runs our link and transformers' class side
  by side, and whole chains against transformers' own _get_logits_processor, in its order;
- transformers' own tests of these processors (tests/generation/test_logits_process.py) replayed as they stand;
- what minigpt adds: a padded row's prompt without its padding, texts as sequences, the decay's cap, and every
  option through generate() and the command line, refused where a strategy does not use it.
"""

import json
import math
import os

import numpy as np
import pytest
from helpers import CHECKOUT, P, fixture_model, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import load_file
from test_processors import HF_CLASS, assert_same, cases, has_finite_ties, params_for

import minigpt
from minigpt.core.checks import OptionError
from minigpt.links.constraints import AllowedTokens, ExponentialDecayLength, ForcedEOS, Renormalize
from minigpt.links.penalties import SequenceBias
from minigpt.links.prompt import EncoderNoRepeatNGram, EncoderRepetitionPenalty
from minigpt.links.warpers import TopH
from minigpt.web.explore import Explorer, RequestError

FIXTURES = CHECKOUT / "tests" / "fixtures" / "processors"
NEW = {"sequence_bias": "SequenceBiasLogitsProcessor", "encoder_repetition_penalty":
       "EncoderRepetitionPenaltyLogitsProcessor", "encoder_no_repeat_ngram": "EncoderNoRepeatNGramLogitsProcessor",
       "allowed_tokens": "PrefixConstrainedLogitsProcessor", "forced_eos": "ForcedEOSTokenLogitsProcessor",
       "exponential_decay_length_penalty": "ExponentialDecayLengthPenalty", "top_h": "TopHLogitsWarper",
       "renormalize": "LogitNormalization"}
CLASS = HF_CLASS | NEW
BOUNDED = settings(max_examples=int(os.environ.get("PROCESSOR_EXAMPLES", "50")), deadline=None)
RECORDED = json.loads((FIXTURES / "cases.json").read_text())
LATER = [case for case in RECORDED["cases"] if case.get("processor") in NEW or case["key"].startswith("chain_more.")]
ARRAYS = load_file(str(FIXTURES / "cases.safetensors"))
NO_IDS = np.zeros((1, 0), np.int64)


def allowed_fn(table):
    """scripts/reference/processors.py's allowed_fn: a case's table of allowed tokens as prefix_allowed_tokens_fn."""
    return lambda batch_id, ids: list(table[batch_id]) + ([int(ids[-1])] if len(ids) else [])


def link(name, params):
    return P.LINKS[name](**({"fn": allowed_fn(params["allowed"])} if name == "allowed_tokens" else params))


def chain_of(options):
    o = dict(options)
    table = o.pop("allowed", None)
    return P.build_chain(**o, **({"prefix_allowed_tokens_fn": allowed_fn(table)} if table is not None else {}))


def tie_sensitive(processors, logits):
    """top-h on tied logits: which of equal tokens it keeps is torch.topk's choice."""
    return any(p.name == "top_h" for p in processors) and has_finite_ties(logits)


def run(processors, logits, ids):
    sensitive = tie_sensitive(processors, logits)
    for p in processors:
        logits = p(logits, ids)
    return logits, sensitive


def test_the_later_cases_were_recorded_with_every_added_link():
    names = {case.get("processor") for case in LATER}
    assert names - {None} == set(NEW) and sum(case["key"].startswith("chain_more.") for case in LATER) >= 10


@pytest.mark.parametrize("case", LATER, ids=lambda case: case["key"])
def test_recorded_transformers_cases(case):
    key = case["key"]
    logits, ids, expected = (ARRAYS[f"{key}.{part}"] for part in ("logits", "ids", "expected"))
    processors = chain_of(case["options"]).processors if "options" in case else [link(case["processor"],
                                                                                      case["params"])]
    ours, sensitive = run(processors, logits, ids)
    assert_same(ours, expected, exact_positions=not sensitive)


# ----------------------------------------------------------------------------- live against transformers


@pytest.fixture(scope="module")
def reference():
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from scripts.reference import processors
    return processors


@pytest.mark.parametrize("name", [n for n in NEW if n != "allowed_tokens"])
@BOUNDED
@given(data=st.data())
def test_processor_matches_transformers(reference, name, data):
    logits, ids = data.draw(cases(max_vocab=data.draw(st.sampled_from([60, 140]))))
    params = params_for(name, data.draw, ids, logits.shape[1])
    if name.startswith("encoder"):
        params["prompt_ignore_length"] = None  # transformers counts a padded prompt's pad tokens
    if name == "sequence_bias":
        params["bias"] = [[list(s), b] for s, b in params["bias"].items()]
    if name == "forced_eos" and params["max_new_tokens"] is None:
        params["max_new_tokens"] = ids.shape[1] - params["prompt_length"] + 1
    theirs = reference.run_reference(reference.reference_processor(name, params, ids), logits, ids)
    ours, sensitive = run([link(name, params)], logits, ids)
    assert_same(ours, theirs, exact_positions=not sensitive)


@BOUNDED
@given(data=st.data())
def test_allowed_tokens_match_transformers(reference, data):
    logits, ids = data.draw(cases())
    table = [data.draw(st.lists(st.integers(0, logits.shape[1] - 1), min_size=1, max_size=4)) for _ in ids]
    theirs = reference.run_reference(reference.reference_processor("allowed_tokens", {"allowed": table}), logits, ids)
    assert_same(link("allowed_tokens", {"allowed": table})(logits, ids), theirs)


def merged(names: list[str]) -> list[str]:
    """Our class names with logit_bias and sequence_bias as the one SequenceBiasLogitsProcessor transformers makes."""
    return [n for i, n in enumerate(names) if not (i and n == names[i - 1] == "SequenceBiasLogitsProcessor")]


@BOUNDED
@given(data=st.data())
def test_chain_matches_transformers(reference, data):
    logits, ids = data.draw(cases(max_vocab=40, last_token_free=True))
    options = reference.random_new_options(np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))), ids,
                                           logits.shape[1])
    theirs = reference.reference_chain(options, options["prompt_length"], logits.shape[1], ids)
    ours_chain = chain_of(options)
    assert merged([CLASS[p.name] for p in ours_chain.processors]) == [type(p).__name__ for p in theirs]
    ours, sensitive = run(ours_chain.processors, logits, ids)
    expected = reference.run_reference(theirs, logits, ids)
    if np.isnan(expected).any():  # everything banned: transformers' renormalisation makes NaN, ours -inf
        return
    assert_same(ours, expected, exact_positions=not sensitive)


def test_chain_order_is_transformers_order(reference):
    options = {"sampling": True, "prompt_length": 2, "vocab_size": 10, "eos_token_id": 9, "max_new_tokens": 4,
               "logit_bias": [[3, -1.0]], "sequence_bias": [[[1, 2], 1.0]], "encoder_repetition_penalty": 1.3,
               "repetition_penalty": 1.3, "no_repeat_ngram_size": 2, "encoder_no_repeat_ngram_size": 2,
               "bad_words_ids": [[1, 2]], "min_new_tokens": 3, "allowed": [list(range(8))], "forced_eos_token_id": 9,
               "exponential_decay_length_penalty": [1, 1.5], "suppress_tokens": [4], "temperature": 0.7,
               "top_h": 0.9, "top_k": 5, "top_p": 0.9, "renormalize_logits": True}
    ids = np.array([[1, 2, 3]])
    theirs = [type(p).__name__ for p in reference.reference_chain(options, 2, 10, ids)]
    assert merged([CLASS[p.name] for p in chain_of(options).processors]) == theirs
    assert len(theirs) == 16 and theirs[-1] == "LogitNormalization"


# ----------------------------------------------------------------------------- transformers' own tests, replayed


def uniform(batch, vocab):
    return np.full((batch, vocab), 1 / vocab, dtype=np.float32)


def test_transformers_bias_dist_processor():
    ids = np.array([[0, 1, 3, 1], [0, 1, 0, 1]])
    bias = {(1,): 100.0, (4,): 100.0, (1, 0): -100.0, (0, 1, 2): -100.0, (1, 3, 1, 3): -100.0,
            (1, 3, 1, 3, 1, 3): -100.0}
    out = SequenceBias(bias)(np.zeros((2, 5), np.float32), ids)
    assert out.tolist() == [[-100.0, 100.0, 0.0, -100.0, 100.0], [-100.0, 100.0, -100.0, 0.0, 100.0]]


def test_transformers_encoder_repetition_penalty_dist_process():
    ids = np.array([[0, 1], [5, 0]])  # the prompt, and the ids so far
    scores = uniform(2, 10)
    scores[0, 0], scores[1, 5] = -1 / 10, 4 / 10
    out = EncoderRepetitionPenalty(2.0, prompt_length=2)(scores, ids)
    np.testing.assert_allclose([out[0, 0], out[0, 1], out[1, 0], out[1, 5]], [-1 / 10 / 2, 1 / 10 * 2, 1 / 10 * 2,
                                                                              4 / 10 * 2], rtol=1e-6)
    np.testing.assert_allclose([out[0, 2], out[1, 2]], [1 / 10, 1 / 10], rtol=1e-6)
    assert not (scores == out).all()


def test_transformers_encoder_no_repeat_ngram_dist_processor():
    """transformers gives the prompt apart (encoder_input_ids); here each row is its prompt, then its own ids."""
    def banned(n, prompts, rows):
        ids = np.array([p + r for p, r in zip(prompts, rows)])
        return np.isinf(EncoderNoRepeatNGram(n, prompt_length=len(prompts[0]))(uniform(len(rows), 3), ids)).tolist()

    prompts, rows = [[1, 2, 1, 1]] * 2, [[1, 2, 1], [8, 0, 2]]  # one prompt, two beams
    assert banned(2, prompts, rows) == [[False, True, True], [False, True, False]]
    assert banned(3, prompts, rows) == [[False, True, False], [False, False, False]]
    prompts = [[1, 2, 1, 1]] * 2 + [[0, 0, 2, 1]] * 2  # two prompts, two beams each
    rows = [[1, 2, 1], [1, 0, 2], [0, 0, 0], [0, 2, 2]]
    assert banned(2, prompts, rows) == [[False, True, True], [False, True, False], [True, False, True],
                                        [False, True, False]]
    assert banned(3, prompts, rows) == [[False, True, False], [False, False, False], [False, False, True],
                                        [False, False, False]]


def test_transformers_prefix_constrained_logits_processor():
    ids = np.array([[0, 1, 3, 1], [0, 1, 0, 1]])
    out = AllowedTokens(lambda batch_id, row: [[0, 1], [2, 3]][batch_id])(uniform(2, 5), ids)
    assert np.isinf(out).tolist() == [[False, False, True, True, True], [True, True, False, False, True]]
    with pytest.raises(ValueError, match="prefix_allowed_tokens_fn allowed no token for prompt 0"):
        AllowedTokens(lambda batch_id, row: [])(uniform(2, 5), ids)


def test_transformers_forced_eos_token_logits_processor():
    forced = ForcedEOS(0, prompt_length=0, max_new_tokens=5)  # max_length 5
    out = forced(uniform(4, 20), np.random.default_rng(0).integers(0, 20, (4, 4)))
    assert np.isneginf(out[:, 1:]).all() and out[:, 0].tolist() == [0] * 4
    assert not np.isinf(forced(uniform(4, 20), np.zeros((4, 3), np.int64))).any()


def test_transformers_exponential_decay_length_penalty():
    rng = np.random.default_rng(0)
    decay = ExponentialDecayLength((5, 1.1), eos_token_id=0, prompt_length=2)
    scores = uniform(4, 20)
    assert (decay(scores, rng.integers(0, 20, (4, 2)))[:, 0] == scores[:, 0]).all()  # before the start
    assert (decay(scores, rng.integers(0, 20, (4, 20)))[:, 0] > scores[:, 0]).all()
    assert (decay(-scores, rng.integers(0, 20, (4, 20)))[:, 0] > -scores[:, 0]).all()  # negative scores rise too


def test_transformers_normalization():
    scores = np.array([[-23.18, -29.96, -43.54, 47.77], [-33.58, -26.87, -32.96, 22.51]], np.float32)
    out = np.exp(Renormalize(True)(scores, NO_IDS))
    np.testing.assert_allclose(out.sum(axis=-1), 1, rtol=1e-5)
    np.testing.assert_allclose(out, P.softmax(scores), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("probs, h, expected", [
    ([0.97, 0.01, 0.01, 0.01], 0.3, [0.97, 0, 0, 0]),
    ([0.4, 0.3, 0.2, 0.1], 0.7, [0.4, 0.3, 0, 0]),
    ([0.25, 0.25, 0.25, 0.25], 1.0, [0.25, 0.25, 0.25, 0.25]),
    ([0.75, 0.25, 0.0, 0.0], 0.4, [0.75, 0, 0, 0]),
])
def test_transformers_top_h_dist_warper(probs, h, expected):
    with np.errstate(divide="ignore"):
        logits = np.log(np.array([probs], np.float32))
    np.testing.assert_allclose(np.exp(TopH(h)(logits, NO_IDS))[0], expected, rtol=1e-3, atol=1e-3)


# ----------------------------------------------------------------------------- definitions, and generate()


def test_the_prompt_penalties_skip_each_rows_padding():
    ids = np.array([[9, 9, 1, 2, 3], [4, 1, 2, 3, 5]])  # row 0: two pad tokens (9), then its prompt 1 2 3
    logits = np.ones((2, 10), np.float32)
    favoured = EncoderRepetitionPenalty(2.0, prompt_length=4, prompt_ignore_length=[2, 0])(logits, ids)
    assert np.flatnonzero(favoured[0] == 2).tolist() == [1, 2] and np.flatnonzero(favoured[1] == 2).tolist() == [
        1, 2, 3, 4]
    banned = EncoderNoRepeatNGram(1, prompt_length=4, prompt_ignore_length=[2, 0])(logits, ids)
    assert np.isinf(banned[0]).nonzero()[0].tolist() == [1, 2]


def test_the_decay_bonus_stops_at_a_billion():
    out = ExponentialDecayLength((0, 1000.0), eos_token_id=1, prompt_length=0)(np.full((1, 3), 5, np.float32),
                                                                             np.zeros((1, 400), np.int64))
    assert out[0].tolist() == [5, np.float32(5) + np.float32(1e9), 5]


def test_top_h_keeps_no_token_past_the_hundredth():
    logits = -np.arange(300, dtype=np.float32)[None] * np.float32(1e-3)  # almost flat: h = 1 would keep all
    assert np.isfinite(TopH(1.0)(logits, NO_IDS)).sum() <= 100


def test_options_through_generate_and_the_cli(capsys):
    model, tok = minigpt.load("tiny"), minigpt.Tokenizer()
    ids = tok.encode("The function returns the value of the")
    free = minigpt.generate(model, ids, max_new_tokens=6)
    first = tok.decode(free.sequences[0][:2])
    biased = minigpt.generate(model, ids, max_new_tokens=6, sequence_bias={first: -100.0})
    assert tok.decode(biased.sequences[0][:2]) != first and biased.chain[0].startswith("sequence_bias")
    assert minigpt.generate(model, ids, max_new_tokens=6, forced_eos_token_id=50256).sequences[0][-1] == 50256
    beams = minigpt.generate(model, ids, "beam", num_beams=3, num_return_sequences=3, max_new_tokens=4,
                             forced_eos_token_id=50256)
    assert all(s[-1] == 50256 for s in beams.sequences)
    digits = minigpt.generate(model, ids, "sample", seed=0, max_new_tokens=6, allowed_tokens_regex="[ 0-9]+")
    assert all(t == 50256 or tok.token_texts[t].strip().isdigit() or not tok.token_texts[t].strip()
               for t in digits.sequences[0])
    code, out, err = run_cli(capsys, "generate", "The function returns the value of the", "--model", "tiny",
                             "--sequence-bias", f"{first}=-100", "--max-new-tokens", "6", "--show-candidates", "1")
    assert code == 0 and not out.startswith("The function returns the value of the" + first)


def test_the_prefix_function_sees_each_prompt_and_its_rows():
    seen = []

    def fn(batch_id, ids):
        seen.append((batch_id, len(ids)))
        return [5, 6] if batch_id == 0 else [7]

    model = fixture_model("tiny-hub")
    out = minigpt.generate(model, [[1, 2, 3], [4, 5]], "beam", num_beams=2, num_return_sequences=2, max_new_tokens=3,
                           prefix_allowed_tokens_fn=fn)
    assert {b for b, _ in seen} == {0, 1}
    assert all(set(s) <= {5, 6} for s, i in zip(out.sequences, out.prompt_index) if i == 0)
    assert all(set(s) <= {7} for s, i in zip(out.sequences, out.prompt_index) if i == 1)


@pytest.mark.parametrize("options, refusal", [
    ({"prefix_allowed_tokens_fn": lambda b, ids: [1], "allowed_tokens_regex": "x"}, "cannot be combined"),
    ({"allowed_tokens_regex": "("}, "allowed_tokens_regex is not a regular expression Python reads"),
    ({"exponential_decay_length_penalty": (1, 0.0)}, r"exponential_decay_length_penalty must be a pair"),
    ({"exponential_decay_length_penalty": 3}, r"exponential_decay_length_penalty must be a pair"),
    ({"sequence_bias": {(1, 2): math.nan}}, r"sequence_bias for \(1, 2\) must be a number"),
    ({"sequence_bias": {"": 1.0}}, "sequence_bias must be a dict of token sequences"),
    ({"encoder_repetition_penalty": 0.0}, r"encoder_repetition_penalty must be a number in \[0.001, 1000\]"),
    ({"forced_eos_token_id": -1}, "forced_eos_token_id must be an integer >= 0"),
    ({"prefix_allowed_tokens_fn": 3}, "prefix_allowed_tokens_fn must be a function"),
    ({"strategy": "greedy", "top_h": 0.5}, "strategy 'greedy' does not use top_h"),
    ({"strategy": "sample", "top_h": 1.5}, r"top_h must be a number in \(0, 1\]"),
])
def test_bad_values_are_refused_naming_the_option(options, refusal):
    options = dict(options)
    with pytest.raises(OptionError, match=refusal):
        minigpt.generate(fixture_model("tiny-hub"), [1, 2], options.pop("strategy", None), max_new_tokens=2,
                         **options)


def test_the_function_has_no_flag_and_the_page_refuses_it(capsys):
    with pytest.raises(SystemExit):
        run_cli(capsys, "generate", "--help")
    out = capsys.readouterr().out
    assert "--prefix-allowed-tokens-fn" not in out and "--allowed-tokens-regex" in out
    docs = (CHECKOUT / "docs" / "options.md").read_text()
    assert "| penalties | (Python only) | `prefix_allowed_tokens_fn` |" in docs
    explorer = Explorer(fixture_model("tiny-hub"), minigpt.Tokenizer())
    assert next(o for o in explorer.options()["options"] if o["name"] == "prefix_allowed_tokens_fn")["python_only"]
    with pytest.raises(RequestError, match="prefix_allowed_tokens_fn cannot be given in a request: it is a function"):
        explorer.generation_options({"options": {"prefix_allowed_tokens_fn": "lambda b, ids: [1]"}})
