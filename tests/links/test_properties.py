"""Properties that hold for any input, checked on random cases (hypothesis, bounded example counts so that
the file runs in seconds). NumPy's RuntimeWarnings (overflow, invalid, divide) are errors here.

- the tokenizer decodes any list of ids without raising, and encodes any str (lone surrogates too);
- every processor, on random logits (ties, -inf, rows with no finite logit), histories and parameters
  (many out of range, of the wrong type, NaN or inf), either raises ValueError when built or returns
  float32 logits without NaN or +inf that keep a token wherever a token was left and nothing was banned;
- generate, for random strategies and options on a tiny model, returns tokens of the vocabulary, or
  raises the one ValueError that says every token was masked;
- the same seed gives the same output;
- what on_token streams through Tokenizer.stream_decoder is the final text, even when tokens split a
  UTF-8 character.
"""

import math

import numpy as np
import pytest
from helpers import FIXTURES, P, write_checkpoint
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import minigpt
from minigpt.core.config import GPTConfig
from minigpt.core.numerics import largest
from minigpt.links.watermark import SCHEMES

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

V = 48
TINY = GPTConfig(vocab_size=V, n_positions=20, n_embd=16, n_layer=1, n_head=2)
STRATEGIES = ["greedy", "sample", "beam", "beam-sample", "diverse-beam", "contrastive", "speculative"]
SAMPLING = ["sample", "beam-sample", "speculative"]
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

tok = minigpt.Tokenizer()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return minigpt.load(write_checkpoint(tmp_path_factory.mktemp("props"), TINY))


@pytest.fixture(scope="module")
def draft(tmp_path_factory):
    config = GPTConfig(vocab_size=V, n_positions=20, n_embd=8, n_layer=1, n_head=2)
    return minigpt.load(write_checkpoint(tmp_path_factory.mktemp("props-draft"), config))


# ----------------------------------------------------------------------------- the tokenizer


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, tok.n_vocab - 1), max_size=40))
def test_any_ids_decode_without_raising(ids):
    text = tok.decode(ids)
    assert isinstance(text, str) and tok.decode_bytes(ids) == b"".join(tok.token_bytes(i) for i in ids)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, tok.n_vocab - 1), max_size=10), st.integers(tok.n_vocab, 2**70) | st.integers(-(2**70), -1))
def test_ids_outside_the_vocabulary_are_a_value_error(ids, bad):
    with pytest.raises(ValueError, match="outside GPT-2's vocabulary"):
        tok.decode(ids + [bad])


@settings(max_examples=100, deadline=None)
@given(st.text(st.characters(exclude_categories=())))  # any code point, lone surrogates included
def test_any_str_encodes_and_round_trips_with_surrogates_replaced(text):
    ids = tok.encode(text)
    assert all(0 <= i < tok.n_vocab for i in ids)
    assert tok.decode(ids) == "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)


# ----------------------------------------------------------------------------- processors on anything


def mostly(valid):
    """The valid values most of the time; otherwise anything a caller might pass."""
    anything = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 10**6), st.booleans(),
                         st.sampled_from(["1", None, [1], 1e300, -1e300, 1e-300]))
    return st.one_of(valid, valid, valid, anything)


@st.composite
def logits_and_ids(draw):
    """logits [B, W] float32 of a model's magnitude (ties, -inf, sometimes a row with no finite logit)
    and a history ids [B, t] of valid token ids."""
    B, W, t = draw(st.integers(1, 3)), draw(st.integers(2, 40)), draw(st.integers(0, 10))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1e-3, 1.0, 30.0, 1e4]))
    x = rng.normal(0, scale, size=(B, W))
    if draw(st.booleans()):
        x = np.round(x / scale) * scale  # many exact ties
    x = x.astype(np.float32)
    x[rng.random((B, W)) < draw(st.sampled_from([0.0, 0.3, 0.9]))] = -np.inf
    if draw(st.integers(0, 4)) == 0:
        x[rng.integers(B)] = -np.inf  # a row with nothing left
    ids = rng.integers(0, draw(st.integers(1, W)), size=(B, t), dtype=np.int64)
    return x, ids


def params(name, draw, W, t):
    tokens = st.integers(-1, W + 1)
    keep = mostly(st.integers(1, 8))
    strategies = {
        "temperature": {"t": mostly(st.floats(1e-20, 1e20))},
        "top_k": {"k": mostly(st.integers(0, W + 2)), "min_tokens_to_keep": keep},
        "top_p": {"p": mostly(st.floats(0, 1)), "min_tokens_to_keep": keep},
        "min_p": {"p": mostly(st.floats(0, 1)), "min_tokens_to_keep": keep},
        "typical_p": {"p": mostly(st.floats(0, 1)), "min_tokens_to_keep": keep},
        "epsilon_cutoff": {"epsilon": mostly(st.floats(0, 1)), "min_tokens_to_keep": keep},
        "eta_cutoff": {"epsilon": mostly(st.floats(0, 1)), "min_tokens_to_keep": keep},
        "repetition_penalty": {"penalty": mostly(st.floats(1e-3, 1e3)), "prompt_ignore_length": st.none() | st.integers(-1, t)},
        "frequency_presence_penalty": {"frequency": mostly(st.floats(-2, 2)), "presence": mostly(st.floats(-2, 2)),
                                       "prompt_length": mostly(st.integers(0, t))},
        "no_repeat_ngram": {"n": mostly(st.integers(1, 4))},
        "bad_words": {"sequences": mostly(st.lists(st.lists(tokens, max_size=3), max_size=4)), "eos_token_id": tokens},
        "logit_bias": {"bias": mostly(st.dictionaries(tokens, mostly(st.floats(-1e9, 1e9) | st.just(-math.inf)), max_size=5))},
        "min_new_tokens": {"eos_token_id": mostly(tokens), "prompt_length": mostly(st.integers(0, t)),
                           "min_new_tokens": mostly(st.integers(0, 6))},
        "suppress_tokens": {"token_ids": mostly(st.lists(tokens, max_size=W + 2))},
        "sequence_bias": {"bias": mostly(st.dictionaries(st.lists(tokens, max_size=3).map(tuple),
                                                         mostly(st.floats(-1e9, 1e9) | st.just(-math.inf)), max_size=4))},
        "encoder_repetition_penalty": {"penalty": mostly(st.floats(1e-3, 1e3)), "prompt_length": mostly(st.integers(0, t)),
                                       "prompt_ignore_length": st.none() | st.integers(0, t)},
        "encoder_no_repeat_ngram": {"n": mostly(st.integers(1, 4)), "prompt_length": mostly(st.integers(0, t)),
                                    "prompt_ignore_length": st.none() | st.integers(0, t)},
        "allowed_tokens": {"fn": mostly(st.lists(tokens, max_size=4).map(lambda allowed: lambda b, ids: allowed))},
        "forced_eos": {"token_id": mostly(tokens), "prompt_length": mostly(st.integers(0, t)),
                       "max_new_tokens": st.none() | mostly(st.integers(0, 6))},
        "exponential_decay_length_penalty": {"decay": mostly(st.tuples(st.integers(0, 6), mostly(st.floats(1e-3, 1e3)))),
                                             "eos_token_id": mostly(tokens), "prompt_length": mostly(st.integers(0, t))},
        "top_h": {"h": mostly(st.floats(0, 1))},
        "renormalize": {"on": mostly(st.just(True))},
        "watermark": {"on": st.just(True), "bias": mostly(st.floats(0.1, 100)), "greenlist_ratio": mostly(
            st.floats(0.01, 0.99)), "hashing_key": st.integers(0, 2**63 - 1), "seeding_scheme": st.sampled_from(SCHEMES),
                      "context_width": mostly(st.integers(1, 3))},
    }
    return draw(st.fixed_dictionaries(strategies[name]))


BANNING = {"no_repeat_ngram", "bad_words", "logit_bias", "min_new_tokens", "suppress_tokens", "sequence_bias",
           "encoder_no_repeat_ngram", "allowed_tokens", "forced_eos"}  # may empty a row
REVIVING = {"allowed_tokens", "forced_eos"}  # may give a row with nothing left a token (as transformers does)


@pytest.mark.parametrize("name", P.TESTED)
@FAST
@given(data=st.data())
def test_every_processor_gives_a_valid_distribution_or_a_value_error(name, data):
    logits, ids = data.draw(logits_and_ids())
    W, t = logits.shape[1], ids.shape[1]
    try:
        processor = P.LINKS[name](**params(name, data.draw, W, t))
        out = processor(logits, ids)
    except ValueError:
        return
    assert out.dtype == np.float32 and out.shape == logits.shape
    assert not np.isnan(out).any() and not np.isposinf(out).any()
    had = np.isfinite(logits).any(axis=1)
    assert name in REVIVING or not np.isfinite(out[~had]).any()  # nothing left stays nothing left
    if name not in BANNING:
        assert np.isfinite(out[had]).any(axis=1).all()  # the warpers and penalties always leave a token


@FAST
@given(data=st.data())
def test_a_chain_of_any_options_is_valid_or_a_value_error(data):
    logits, ids = data.draw(logits_and_ids())
    W, t = logits.shape[1], ids.shape[1]
    names = data.draw(st.lists(st.sampled_from(P.TESTED), max_size=5, unique=True))
    try:
        chain = P.Chain(P.LINKS[n](**params(n, data.draw, W, t)) for n in names)
        out = chain(logits, ids)
    except ValueError:
        return
    assert out.dtype == np.float32 and not np.isnan(out).any() and not np.isposinf(out).any()
    probs = P.softmax(out)
    assert not np.isnan(probs).any()
    np.testing.assert_allclose(probs.sum(axis=1)[np.isfinite(out).any(axis=1)], 1.0, rtol=1e-5)


# ----------------------------------------------------------------------------- generate on anything


@st.composite
def generation(draw, strategies=STRATEGIES):
    """A strategy, prompts, and options within their ranges, often banning most tokens."""
    strategy = draw(st.sampled_from(strategies))
    batch = 1 if strategy == "speculative" else draw(st.integers(1, 2))
    prompts = [draw(st.lists(st.integers(0, V - 1), max_size=5)) for _ in range(batch)]
    tokens = st.integers(0, V - 1)
    options = {"max_new_tokens": draw(st.integers(0, 6)), "eos_token_id": draw(st.sampled_from([V, 0, 7, 47]))}
    maybe = lambda key, value: options.update({key: draw(value)}) if draw(st.booleans()) else None  # noqa: E731
    all_but = st.sets(tokens, max_size=3).map(lambda keep: [t for t in range(V) if t not in keep])
    maybe("suppress_tokens", st.lists(tokens, max_size=V, unique=True) | all_but)
    maybe("logit_bias", st.dictionaries(tokens, st.floats(-1e9, 1e9) | st.just(-math.inf), max_size=V))
    maybe("no_repeat_ngram_size", st.integers(1, 3))
    maybe("bad_words_ids", st.lists(st.lists(tokens, min_size=1, max_size=2), min_size=1, max_size=4))
    maybe("repetition_penalty", st.floats(1e-3, 1e3))
    maybe("frequency_penalty", st.floats(-2, 2))
    maybe("min_new_tokens", st.integers(0, options["max_new_tokens"]))
    if strategy in SAMPLING:
        options["seed"] = draw(st.integers(0, 2**32))
        maybe("temperature", st.floats(1e-20, 1e20))
        maybe("top_k", st.integers(0, V + 2))
        maybe("top_p", st.floats(0.01, 1))
        maybe("min_p", st.floats(0, 1))
        maybe("typical_p", st.floats(0.01, 0.99))
        maybe("epsilon_cutoff", st.floats(0, 0.99))
    if strategy in ("beam", "beam-sample", "diverse-beam"):
        groups = 2 if strategy == "diverse-beam" else 1
        options["num_beams"] = groups * draw(st.integers(1, 3))
        options["num_return_sequences"] = draw(st.integers(1, options["num_beams"]))
        if groups > 1:
            options.update(num_beam_groups=groups, diversity_penalty=draw(st.floats(0, 10)))
        maybe("length_penalty", st.floats(-10, 10))
        maybe("early_stopping", st.sampled_from([True, False, "never"]))
    if strategy == "contrastive":
        maybe("top_k", st.integers(2, 6))
        maybe("penalty_alpha", st.floats(0, 1))
    if strategy == "speculative":
        options.update(do_sample=True, num_assistant_tokens=draw(st.integers(1, 4)))
    return strategy, prompts, options


def generate(tiny, draft, strategy, prompts, options, **extra):
    if strategy == "speculative":
        options = options | {"draft_model": draft}
    return minigpt.generate(tiny, prompts, strategy, **options, **extra)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=generation())
def test_generate_returns_vocabulary_tokens_or_says_what_masked_everything(tiny, draft, case):
    strategy, prompts, options = case
    try:
        out = generate(tiny, draft, strategy, prompts, options)
    except ValueError as e:
        assert str(e).startswith("every token was masked at step "), e
        event("every token masked")  # --hypothesis-show-statistics shows how often each outcome came up
        return
    event("generated")
    assert set(out.prompt_index) == set(range(len(prompts)))
    for tokens, score, reason in zip(out.sequences, out.scores, out.finish_reasons):
        assert all(0 <= t < V for t in tokens) and len(tokens) <= options["max_new_tokens"]
        assert not math.isnan(score) and reason in ("eos", "length")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=generation(SAMPLING))
def test_the_same_seed_gives_the_same_output(tiny, draft, case):
    strategy, prompts, options = case
    try:
        first = generate(tiny, draft, strategy, prompts, options)
    except ValueError:
        return
    again = generate(tiny, draft, strategy, prompts, options)
    assert (first.sequences, first.scores, first.texts) == (again.sequences, again.scores, again.texts)


# ----------------------------------------------------------------------------- streaming equals the text


@pytest.fixture(scope="module")
def text_model():
    return minigpt.load(FIXTURES / "fullvocab")


def streamed(model, prompt, strategy="sample", **options):
    """(what the CLI streams: on_token -> stream_decoder, end-of-text skipped; the returned output)."""
    decoder, pieces = tok.stream_decoder(), []
    on_token = lambda row, token: pieces.append(decoder.feed(token)) if token != tok.eot else None  # noqa: E731
    out = minigpt.generate(model, prompt, strategy, on_token=on_token, **options)
    return "".join(pieces) + decoder.flush(), out


FRAGMENTED = "🦙🚀 漢字 e\u0301 שלום"  # GPT-2 splits these characters' bytes over several tokens


def test_streamed_text_with_split_characters_equals_the_final_text(text_model):
    boost = {t: 30.0 for t in tok.encode(FRAGMENTED)}
    text, out = streamed(text_model, tok.encode("A"), max_new_tokens=12, seed=0, logit_bias=boost)
    assert any(not tok.token_bytes(t).decode("utf-8", "ignore") for t in out.sequences[0])  # a split character
    assert text == out.texts[0]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(min_size=1, max_size=8), seed=st.integers(0, 2**32),
       strategy=st.sampled_from(["greedy", "sample", "contrastive"]))
def test_streamed_text_equals_the_final_text(text_model, text, seed, strategy):
    boost = {t: 30.0 for t in tok.encode(text + FRAGMENTED[seed % len(FRAGMENTED)])}  # tokens of that text, often fragments
    options = {"seed": seed} if strategy == "sample" else {}
    streamed_text, out = streamed(text_model, tok.encode(text), strategy, max_new_tokens=8, logit_bias=boost, **options)
    assert streamed_text == out.texts[0]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([-math.inf, -1.0, 0.0, 2.0, 3.5]), min_size=1, max_size=40), st.integers(1, 45))
def test_largest_is_a_stable_sort_even_among_minus_inf(values, n):
    """numerics.largest: the n largest, largest first, equal values (-inf included) by lower index."""
    scores = np.array(values, dtype=np.float32)
    order = np.lexsort((np.arange(scores.size), -scores))
    assert largest(scores, n).tolist() == order[:n].tolist()


def test_beam_sampling_when_the_warpers_leave_only_end_of_text(tiny):
    """Found by test_generate_returns_vocabulary_tokens_...: one beam whose only candidate is end-of-text
    finishes with it (numerics.largest once picked it twice, leaving beam search no beam to go on with)."""
    out = minigpt.generate(tiny, [[]], "beam-sample", max_new_tokens=1, eos_token_id=0, repetition_penalty=0.0625,
                           seed=0, typical_p=0.25, num_beams=1)
    assert out.sequences == [[0]] and out.finish_reasons == ["eos"]
