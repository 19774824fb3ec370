"""minigpt.sampling.processors: equal to transformers' logits processors, and true to what each promises.

- recorded: cases that scripts/reference/processors.py ran through transformers, replayed with NumPy;
- live (when torch and transformers import): hypothesis draws logits with ties and -inf entries, id
  histories and parameters, and runs our processor and transformers' class side by side; likewise for
  whole chains, against transformers' own GenerationMixin._get_logits_processor;
- invariants (NumPy only): the nucleus of top-p, the k of top-k, min_tokens_to_keep, never an empty
  distribution, no mutation, float32 out, the frequency/presence formula, errors that name the parameter.

"Equal" means the same -inf positions and finite values within float32 rounding. One exception: where
transformers' answer depends on how torch orders equal values (torch.sort is stable only up to 16
entries; torch.topk breaks ties arbitrarily), we require the same kept values per row, not positions.
"""

import json
import math
import os
from collections import Counter

import numpy as np
import pytest
from helpers import CHECKOUT, P
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import load_file

from minigpt.links.watermark import SCHEMES

FIXTURES = CHECKOUT / "tests" / "fixtures" / "processors"
HF_CLASS = {
    "temperature": "TemperatureLogitsWarper", "top_k": "TopKLogitsWarper", "top_p": "TopPLogitsWarper",
    "min_p": "MinPLogitsWarper", "typical_p": "TypicalLogitsWarper", "epsilon_cutoff": "EpsilonLogitsWarper",
    "eta_cutoff": "EtaLogitsWarper", "repetition_penalty": "RepetitionPenaltyLogitsProcessor",
    "no_repeat_ngram": "NoRepeatNGramLogitsProcessor", "bad_words": "NoBadWordsLogitsProcessor",
    "logit_bias": "SequenceBiasLogitsProcessor", "min_new_tokens": "MinNewTokensLengthLogitsProcessor",
    "suppress_tokens": "SuppressTokensLogitsProcessor",
}
WITH_REFERENCE = list(HF_CLASS)  # the links added since are checked in test_more_processors.py
WARPERS = ["top_k", "top_p", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff"]
# PROCESSOR_EXAMPLES=2000 hunts for rare disagreements; the default keeps the file near 20 s of CPU.
BOUNDED = settings(max_examples=int(os.environ.get("PROCESSOR_EXAMPLES", "50")), deadline=None)


# ----------------------------------------------------------------------------- comparing


def has_finite_ties(x):
    return any(np.unique(row[np.isfinite(row)]).size < np.isfinite(row).sum() for row in x)


def tie_sensitive(name, params, x):
    """Whether transformers' result on x depends on torch's order among equal values."""
    if not has_finite_ties(x):
        return False
    keep = params.get("min_tokens_to_keep", 1)
    return {"top_p": x.shape[1] > 16, "typical_p": keep > 1 and x.shape[1] > 16, "min_p": keep > 1}.get(name, False)


def run_ours(processors, logits, ids):
    """Apply our processors one by one; also say whether a tie-sensitive one met tied values."""
    sensitive = False
    for p in processors:
        sensitive |= tie_sensitive(p.name, p.params(), logits)
        logits = p(logits, ids)
    return logits, sensitive


def assert_same(ours, theirs, exact_positions=True):
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    assert not np.isnan(ours).any()
    if exact_positions:
        np.testing.assert_array_equal(np.isneginf(ours), np.isneginf(theirs), err_msg="different -inf mask")
        kept = ~np.isneginf(theirs)
        np.testing.assert_allclose(ours[kept], theirs[kept], rtol=1e-6, atol=1e-6)
    else:  # same kept values per row; which of several equal logits is kept may differ
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(np.sort(a[np.isfinite(a)]), np.sort(b[np.isfinite(b)]), rtol=1e-6, atol=1e-6)


def build(name, params):
    return P.LINKS[name](**params)


# ----------------------------------------------------------------------------- drawing cases

GRID = [k / 4 for k in range(-12, 13)]  # a coarse grid: many tied logits


@st.composite
def cases(draw, max_vocab=60, last_token_free=False):
    """(logits [B, V] float32 with ties and -inf, every row with a finite entry; ids [B, t] int64).

    Hypothesis draws the shape and the kind of case; a seeded NumPy generator fills in the values
    (far faster than drawing each element, which matters for a file that should run in seconds).
    last_token_free: token V-1 is finite and never occurs in ids (for the never-empty invariant).
    """
    batch, vocab, t = draw(st.integers(1, 3)), draw(st.integers(5, max_vocab)), draw(st.integers(0, 12))
    tied, neg_inf_rate = draw(st.booleans()), draw(st.sampled_from([0.0, 0.1, 0.4]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.choice(GRID, size=(batch, vocab)) if tied else rng.normal(0, 4, size=(batch, vocab))
    x = x.astype(np.float32)
    x[rng.random((batch, vocab)) < neg_inf_rate] = -np.inf
    for row in np.flatnonzero(np.isneginf(x).all(axis=1)):
        x[row, rng.integers(vocab)] = 0.0
    if last_token_free:
        x[:, -1] = np.where(np.isneginf(x[:, -1]), 0.0, x[:, -1])
    alphabet = draw(st.integers(1, vocab - 1 if last_token_free else vocab))  # small alphabets repeat
    ids = rng.integers(0, alphabet, size=(batch, t), dtype=np.int64)
    return x, ids


def params_for(name, draw, ids, vocab, token_limit=None):
    """Random constructor parameters for LINKS[name]; banned tokens are < token_limit."""
    batch, t = ids.shape
    limit = token_limit or vocab
    keep = st.sampled_from([1, 1, 2, 3, 7])
    tokens = st.lists(st.integers(0, limit - 1), min_size=1, max_size=5, unique=True)
    if name == "bad_words":  # some sequences continue the end of a row, so that prefixes match
        sequences = draw(st.lists(st.lists(st.integers(0, limit - 1), min_size=1, max_size=3), min_size=1, max_size=4))
        if t and draw(st.booleans()):
            row, k = draw(st.integers(0, batch - 1)), draw(st.integers(1, min(t, 3)))
            sequences.append([int(i) for i in ids[row, t - k :]] + [draw(st.integers(0, limit - 1))])
        return {"sequences": sequences, "eos_token_id": draw(st.none() | st.integers(0, limit - 1))}
    strategies = {
        "temperature": {"t": st.floats(0.05, 5)},
        "top_k": {"k": st.integers(1, vocab + 2), "min_tokens_to_keep": keep},
        "top_p": {"p": st.floats(0.01, 1) | st.sampled_from([0.5, 0.9, 1.0]), "min_tokens_to_keep": keep},
        "min_p": {"p": st.floats(0, 1) | st.sampled_from([0.1, 0.5, 1.0]), "min_tokens_to_keep": keep},
        "typical_p": {"p": st.floats(0.01, 0.99) | st.sampled_from([0.2, 0.5, 0.9]), "min_tokens_to_keep": keep},
        "epsilon_cutoff": {"epsilon": st.floats(1e-4, 0.9), "min_tokens_to_keep": keep},
        "eta_cutoff": {"epsilon": st.floats(1e-4, 0.9), "min_tokens_to_keep": keep},
        "repetition_penalty": {"penalty": st.floats(0.1, 5), "prompt_ignore_length": st.none() | st.integers(0, t)
                               | st.lists(st.integers(0, t), min_size=batch, max_size=batch)},
        "frequency_presence_penalty": {"frequency": st.floats(-2, 2), "presence": st.floats(-2, 2),
                                       "prompt_length": st.integers(0, t)},
        "no_repeat_ngram": {"n": st.integers(1, 5)},
        "logit_bias": {"bias": st.dictionaries(st.integers(0, limit - 1), st.floats(-10, 10) | st.just(-math.inf),
                                               min_size=1, max_size=5)},
        "min_new_tokens": {"eos_token_id": st.integers(0, limit - 1), "prompt_length": st.integers(0, t),
                           "min_new_tokens": st.integers(0, 6)},
        "suppress_tokens": {"token_ids": tokens},
        "sequence_bias": {"bias": st.dictionaries(st.lists(st.integers(0, limit - 1), min_size=1, max_size=3).map(tuple),
                                                  st.floats(-10, 10) | st.just(-math.inf), min_size=1, max_size=4)},
        "encoder_repetition_penalty": {"penalty": st.floats(0.1, 5), "prompt_length": st.integers(0, t),
                                       "prompt_ignore_length": st.none() | st.integers(0, t)},
        "encoder_no_repeat_ngram": {"n": st.integers(1, 4), "prompt_length": st.integers(0, t),
                                    "prompt_ignore_length": st.none() | st.integers(0, t)},
        "allowed_tokens": {"fn": tokens.map(lambda allowed: lambda b, ids: allowed)},
        "forced_eos": {"token_id": st.integers(0, vocab - 1), "prompt_length": st.integers(0, t),
                       "max_new_tokens": st.none() | st.integers(1, 8)},
        "exponential_decay_length_penalty": {"decay": st.tuples(st.integers(0, 4), st.floats(0.1, 3)),
                                             "eos_token_id": st.integers(0, vocab - 1),
                                             "prompt_length": st.integers(0, t)},
        "top_h": {"h": st.floats(0.01, 1)},
        "renormalize": {"on": st.just(True)},
        "watermark": {"on": st.just(True), "bias": st.floats(0.1, 10), "greenlist_ratio": st.floats(0.05, 0.95),
                      "hashing_key": st.integers(0, 2**63 - 1), "seeding_scheme": st.sampled_from(SCHEMES),
                      "context_width": st.integers(1, 3)},
    }
    return draw(st.fixed_dictionaries(strategies[name]))


def options_for(draw, ids, vocab, token_limit=None, frequency=True):
    """Random build_chain options, each neutral about half of the time."""
    batch, t = ids.shape
    limit = token_limit or vocab

    def maybe(strategy, neutral):
        return draw(st.just(neutral) | strategy)

    tokens = st.lists(st.integers(0, limit - 1), min_size=1, max_size=3, unique=True)
    prompt_length = draw(st.integers(0, t))
    return {
        "sampling": draw(st.booleans()), "prompt_length": prompt_length, "vocab_size": vocab,
        "eos_token_id": draw(st.integers(0, limit - 1)),
        "temperature": maybe(st.floats(0.2, 3), 1.0), "top_k": maybe(st.integers(1, vocab + 2), 0),
        "top_p": maybe(st.floats(0.05, 1), 1.0), "min_p": maybe(st.floats(0.01, 1), 0.0),
        "typical_p": maybe(st.floats(0.05, 0.99), 1.0), "epsilon_cutoff": maybe(st.floats(1e-4, 0.2), 0.0),
        "eta_cutoff": maybe(st.floats(1e-4, 0.2), 0.0), "repetition_penalty": maybe(st.floats(0.3, 3), 1.0),
        "frequency_penalty": maybe(st.floats(-2, 2), 0.0) if frequency else 0.0,
        "presence_penalty": maybe(st.floats(-2, 2), 0.0) if frequency else 0.0,
        "no_repeat_ngram_size": maybe(st.integers(1, 4), 0),
        "bad_words_ids": maybe(st.lists(tokens, min_size=1, max_size=3), None),
        "logit_bias": maybe(st.dictionaries(st.integers(0, limit - 1), st.floats(-5, 5), min_size=1, max_size=3), None),
        "min_new_tokens": maybe(st.integers(1, 5), 0), "suppress_tokens": maybe(tokens, None),
        "min_tokens_to_keep": draw(st.sampled_from([1, 1, 2, 3])),
        "pad_lengths": maybe(st.lists(st.integers(0, prompt_length), min_size=batch, max_size=batch), None),
    }


# ----------------------------------------------------------------------------- recorded cases

RECORDED = json.loads((FIXTURES / "cases.json").read_text())
RECORDED_ARRAYS = load_file(str(FIXTURES / "cases.safetensors"))


FIRST = [case for case in RECORDED["cases"] if case.get("processor", "chain") in WITH_REFERENCE
         or case["key"].startswith("chain.")]  # the first record's cases; the later ones: test_more_processors.py


@pytest.mark.parametrize("case", FIRST, ids=lambda case: case["key"])
def test_recorded_transformers_cases(case):
    key = case["key"]
    logits, ids, expected = (RECORDED_ARRAYS[f"{key}.{part}"] for part in ("logits", "ids", "expected"))
    if "options" in case:
        chain = P.build_chain(**case["options"])
    else:
        chain = P.Chain([build(case["processor"], case["params"])])
    ours, sensitive = run_ours(chain.processors, logits, ids)
    assert_same(ours, expected, exact_positions=not sensitive)


def test_recorded_fixtures_are_small():
    assert sum(f.stat().st_size for f in FIXTURES.iterdir()) < 300_000


# ----------------------------------------------------------------------------- live against transformers


@pytest.fixture(scope="module")
def reference():
    """scripts/reference/processors.py, which needs torch and transformers (hence imported here, not at the top)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from scripts.reference import processors
    return processors


@pytest.mark.parametrize("name", WITH_REFERENCE)
@BOUNDED
@given(data=st.data())
def test_processor_matches_transformers(reference, name, data):
    logits, ids = data.draw(cases())
    params = params_for(name, data.draw, ids, logits.shape[1])
    theirs = reference.run_reference(reference.reference_processor(name, params), logits, ids)
    ours, sensitive = run_ours([build(name, params)], logits, ids)
    assert_same(ours, theirs, exact_positions=not sensitive)


@BOUNDED
@given(data=st.data())
def test_chain_matches_transformers(reference, data):
    logits, ids = data.draw(cases(max_vocab=40, last_token_free=True))  # bans that empty a row make NaNs
    options = options_for(data.draw, ids, logits.shape[1], token_limit=logits.shape[1] - 1, frequency=False)
    chain = P.build_chain(**options)
    theirs_chain = reference.reference_chain(options, options["prompt_length"], logits.shape[1])
    assert [HF_CLASS[p.name] for p in chain.processors] == [type(p).__name__ for p in theirs_chain]
    ours, sensitive = run_ours(chain.processors, logits, ids)
    assert_same(ours, reference.run_reference(theirs_chain, logits, ids), exact_positions=not sensitive)


def test_chain_order_is_transformers_order(reference):
    options = {"sampling": True, "prompt_length": 2, "vocab_size": 10, "eos_token_id": 9, "temperature": 0.7,
               "top_k": 5, "top_p": 0.9, "min_p": 0.05, "typical_p": 0.9, "epsilon_cutoff": 0.01,
               "eta_cutoff": 0.01, "repetition_penalty": 1.3, "no_repeat_ngram_size": 2, "bad_words_ids": [[1, 2]],
               "logit_bias": {3: -1.0}, "min_new_tokens": 3, "suppress_tokens": [4]}
    theirs = [type(p).__name__ for p in reference.reference_chain(options, 2, 10)]
    assert [HF_CLASS[p.name] for p in P.build_chain(**options).processors] == theirs
    assert len(theirs) == 13


# ----------------------------------------------------------------------------- invariants


def probabilities(x):
    """float64 softmax of float32 logits, for checking promises about mass."""
    x = x.astype(np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@BOUNDED
@given(data=st.data())
def test_top_p_keeps_the_smallest_nucleus(data):
    logits, ids = data.draw(cases())
    p, keep = data.draw(st.floats(0.01, 1)), data.draw(st.integers(1, 4))
    out = P.TopP(p, min_tokens_to_keep=keep)(logits, ids)
    for x, y in zip(logits, out):
        probs, kept = probabilities(x[None])[0], np.isfinite(y)
        assert probs[kept].min() >= probs[~kept].max(initial=0)  # the most probable tokens
        mass = np.sort(probs[kept])[::-1].cumsum()
        assert mass[-1] >= p - 1e-5  # reaches p ...
        assert kept.sum() <= keep or mass[-2] < p + 1e-5  # ... and one token fewer would not


@BOUNDED
@given(data=st.data())
def test_top_k_keeps_k(data):
    logits, ids = data.draw(cases())
    k, keep = data.draw(st.integers(0, 70)), data.draw(st.integers(1, 4))
    out = P.TopK(k, min_tokens_to_keep=keep)(logits, ids)
    for x, y in zip(logits, out):
        finite = np.isfinite(x).sum()
        expected = finite if k == 0 else min(max(k, keep), finite)
        kept = np.isfinite(y).sum()
        assert kept == expected if not has_finite_ties(x[None]) else kept >= expected
        assert y[np.isfinite(y)].min() >= x[~np.isfinite(y)].max(initial=-np.inf)


@pytest.mark.parametrize("name", P.TESTED)
@BOUNDED
@given(data=st.data())
def test_processor_contract(name, data):
    """float32 out, input untouched, never an empty row (token V-1 is never banned nor repeated here)."""
    logits, ids = data.draw(cases(last_token_free=True))
    vocab = logits.shape[1]
    processor = build(name, params_for(name, data.draw, ids, vocab, token_limit=vocab - 1))
    logits_before, ids_before = logits.copy(), ids.copy()
    out = processor(logits, ids)
    np.testing.assert_array_equal(logits, logits_before)
    np.testing.assert_array_equal(ids, ids_before)
    assert out is not logits and out.dtype == np.float32 and out.shape == logits.shape
    assert np.isfinite(out).any(axis=1).all()
    assert not np.isnan(out).any()
    assert repr(processor).startswith(f"{name}(")


@pytest.mark.parametrize("name", WARPERS)
@BOUNDED
@given(data=st.data())
def test_min_tokens_to_keep(name, data):
    logits, ids = data.draw(cases())
    params = params_for(name, data.draw, ids, logits.shape[1])
    params["min_tokens_to_keep"] = data.draw(st.integers(1, 8))
    out = build(name, params)(logits, ids)
    expected = np.minimum(params["min_tokens_to_keep"], np.isfinite(logits).sum(axis=1))
    assert (np.isfinite(out).sum(axis=1) >= expected).all()


@BOUNDED
@given(data=st.data())
def test_random_chains_never_empty(data):
    logits, ids = data.draw(cases(last_token_free=True))
    vocab = logits.shape[1]
    chain = P.build_chain(**options_for(data.draw, ids, vocab, token_limit=vocab - 1))
    logits_before = logits.copy()
    out = chain(logits, ids)
    np.testing.assert_array_equal(logits, logits_before)
    assert out.dtype == np.float32 and np.isfinite(out).any(axis=1).all()


def test_frequency_presence_by_hand():
    logits = np.zeros((1, 6), dtype=np.float32)
    ids = np.array([[5, 5, 1, 2, 2, 2, 3]])  # prompt [5, 5, 1]; generated 2, 2, 2, 3
    out = P.FrequencyPresencePenalty(0.5, 0.25, prompt_length=3)(logits, ids)
    np.testing.assert_allclose(out, [[0, 0, -(3 * 0.5 + 0.25), -(0.5 + 0.25), 0, 0]])


@BOUNDED
@given(data=st.data())
def test_frequency_presence_matches_its_definition(data):
    logits, ids = data.draw(cases())
    params = params_for("frequency_presence_penalty", data.draw, ids, logits.shape[1])
    out = build("frequency_presence_penalty", params)(logits, ids)
    for x, y, row in zip(logits, out, ids):
        counts = Counter(row[params["prompt_length"] :].tolist())
        f, p = params["frequency"], params["presence"]
        expected = [x[j] - f * counts[j] - p * (counts[j] > 0) for j in range(len(x))]
        np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-5)


INVALID = [
    ("temperature", lambda: P.Temperature(0.0)),
    ("temperature", lambda: P.Temperature(-1.0)),
    ("temperature", lambda: P.Temperature(math.nan)),
    ("top_k", lambda: P.TopK(-1)),
    ("top_k", lambda: P.TopK(2.5)),
    ("min_tokens_to_keep", lambda: P.TopK(3, min_tokens_to_keep=0)),
    ("top_p", lambda: P.TopP(1.5)),
    ("top_p", lambda: P.TopP(0.0)),
    ("min_tokens_to_keep", lambda: P.TopP(0.9, min_tokens_to_keep=0)),
    ("min_p", lambda: P.MinP(1.2)),
    ("typical_p", lambda: P.TypicalP(1.0)),
    ("epsilon_cutoff", lambda: P.EpsilonCutoff(1.0)),
    ("eta_cutoff", lambda: P.EtaCutoff(-0.1)),
    ("repetition_penalty", lambda: P.RepetitionPenalty(0.0)),
    ("prompt_ignore_length", lambda: P.RepetitionPenalty(1.2, prompt_ignore_length=-1)),
    ("frequency_penalty", lambda: P.FrequencyPresencePenalty(1e3 + 1, 0.0)),
    ("presence_penalty", lambda: P.FrequencyPresencePenalty(0.0, -1e3 - 1)),
    ("no_repeat_ngram_size", lambda: P.NoRepeatNGram(0)),
    ("bad_words_ids", lambda: P.BadWords([[]])),
    ("bad_words_ids", lambda: P.BadWords([1, 2])),
    ("bad_words_ids", lambda: P.BadWords([[1, -2]])),
    ("logit_bias", lambda: P.LogitBias({-1: 1.0})),
    ("logit_bias", lambda: P.LogitBias({1: math.nan})),
    ("min_new_tokens", lambda: P.MinNewTokens(eos_token_id=0, prompt_length=0, min_new_tokens=-1)),
    ("suppress_tokens", lambda: P.SuppressTokens([-3])),
    ("suppress_tokens", lambda: P.build_chain(sampling=False, prompt_length=0, eos_token_id=0, vocab_size=10,
                                              suppress_tokens=[3, 10, 12])),
    ("bad_words_ids", lambda: P.build_chain(sampling=False, prompt_length=0, eos_token_id=0, vocab_size=10,
                                            bad_words_ids=[[1, 11]])),
    ("logit_bias", lambda: P.build_chain(sampling=False, prompt_length=0, eos_token_id=0, vocab_size=10,
                                         logit_bias={10: 1.0})),
    ("top_p", lambda: P.build_chain(sampling=True, prompt_length=0, eos_token_id=0, vocab_size=10, top_p=2.0)),
    ("suppress_tokens", lambda: P.SuppressTokens([12])(np.zeros((1, 10), np.float32), np.zeros((1, 0), np.int64))),
]


@pytest.mark.parametrize("parameter, make", INVALID, ids=[f"{p}-{i}" for i, (p, _) in enumerate(INVALID)])
def test_invalid_parameters_raise_naming_them(parameter, make):
    with pytest.raises(ValueError, match=rf"^{parameter} "):
        make()


def test_out_of_vocabulary_ids_are_named():
    with pytest.raises(ValueError, match=r"\[10, 12\]"):
        P.build_chain(sampling=False, prompt_length=0, eos_token_id=0, vocab_size=10, suppress_tokens=[3, 10, 12])


def test_build_chain_order_and_neutral_options():
    common = {"prompt_length": 2, "eos_token_id": 9, "vocab_size": 10}
    assert len(P.build_chain(sampling=True, **common)) == 0
    everything = dict(temperature=0.7, top_k=5, top_p=0.9, min_p=0.05, typical_p=0.9, epsilon_cutoff=0.01,
                      eta_cutoff=0.01, repetition_penalty=1.3, frequency_penalty=0.1, presence_penalty=0.2,
                      no_repeat_ngram_size=2, bad_words_ids=[[1, 2]], logit_bias={3: -1.0}, min_new_tokens=3,
                      suppress_tokens=[4], **common)
    names = [p.name for p in P.build_chain(sampling=True, **everything).processors]
    assert names == ["logit_bias", "repetition_penalty", "frequency_presence_penalty", "no_repeat_ngram",
                     "bad_words", "min_new_tokens", "suppress_tokens", "temperature", "top_k", "top_p", "min_p",
                     "typical_p", "epsilon_cutoff", "eta_cutoff"]
    assert [p.name for p in P.build_chain(sampling=False, **everything).processors] == names[:7]
    assert P.build_chain(sampling=True, top_p=0.9, **common).describe() == ["top_p(p=0.9, min_tokens_to_keep=1)"]


def test_ties_and_neg_inf_follow_transformers_rules():
    """Hand-checked cases of the rules that surprised us in transformers' code."""
    ids = np.zeros((1, 0), np.int64)
    x = np.array([[0.0, 0.0, -np.inf, -1.0, 0.0]], np.float32)
    # top-k keeps every token tied with the k-th largest: 3 survive for k = 2
    assert np.isfinite(P.TopK(2)(x, ids)).sum() == 3
    # top-p: three tokens of 1/3 each (+ small ones); p = 0.5 keeps two, the lower-indexed tie goes first
    y = np.array([[0.0, 0.0, 0.0, -30.0]], np.float32)
    np.testing.assert_array_equal(np.isfinite(P.TopP(0.5)(y, ids)), [[False, True, True, False]])
    # typical-p keeps the token at which the running mass reaches p, and anything as typical as it
    assert np.isfinite(P.TypicalP(0.1)(y, ids)).sum() == 3
    # epsilon: below epsilon but tied with the top logit is kept
    assert np.isfinite(P.EpsilonCutoff(0.9)(x, ids)).sum() == 3
    # repetition penalty: once per token however often it occurs; -inf stays -inf
    r = P.RepetitionPenalty(2.0)(np.array([[2.0, -2.0, -np.inf]], np.float32), np.array([[0, 0, 0, 1, 2]]))
    np.testing.assert_array_equal(r, [[1.0, -4.0, -np.inf]])
    # bad words: [eos] alone is dropped when eos_token_id is given, as generate does
    assert P.BadWords([[3], [4]], eos_token_id=3).sequences == [[4]]
