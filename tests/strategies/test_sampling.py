"""Greedy decoding and sampling (minigpt/sampling/tokenwise.py) against transformers' generate().

The fixtures in tests/fixtures/strategies/ come from scripts/reference/sampling.py:
- greedy.json: transformers' greedy tokens with each logit processor, alone and combined, for single
  prompts and a left-padded batch; ours must be the same, token for token.
- sampling.json + sampling.safetensors: transformers' processed next-token distribution (softmax of
  the scores its generate() samples from) at each step along a token path; ours must be the same
  distribution, with exactly the same support.
A sampler is then checked statistically: its draws must follow the distribution it traces (a
chi-square goodness-of-fit test at a fixed seed). The live tests redo the comparisons with transformers
itself, for new prompts and seeds, when torch and transformers are installed.
"""

import json
import math

import numpy as np
import pytest
from helpers import FIXTURES, options_of
from safetensors.numpy import load_file

import minigpt
from minigpt.core.numerics import draw, softmax
from minigpt.links.chain import build_chain

STRATEGIES = FIXTURES / "strategies"
GREEDY = json.loads((STRATEGIES / "greedy.json").read_text())
SAMPLING = json.loads((STRATEGIES / "sampling.json").read_text())
PROBS = load_file(str(STRATEGIES / "sampling.safetensors"))
SIGNIFICANCE = 1e-4  # chi-square tests pass when p > this; the seeds are fixed, so the outcome is too


def dense(candidates, vocab_size) -> np.ndarray:
    """A traced step's candidates -> the distribution [V] (0 for tokens left out)."""
    probs = np.zeros(vocab_size, dtype=np.float32)
    for c in candidates:
        probs[c.id] = c.p
    return probs


def assert_same_distribution(ours, theirs, where=""):
    """Same support exactly, and the same probabilities to float32 rounding."""
    assert np.flatnonzero(ours).tolist() == np.flatnonzero(theirs).tolist(), f"support differs {where}"
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6, err_msg=where)


@pytest.fixture(scope="module")
def model():
    return minigpt.load(FIXTURES / GREEDY["checkpoint"])


@pytest.fixture(scope="module")
def sampling_model():
    return minigpt.load(FIXTURES / SAMPLING["checkpoint"])


# ----------------------------------------------------------------------------- greedy


@pytest.mark.parametrize("case", GREEDY["cases"], ids=lambda c: c["name"])
def test_greedy_matches_transformers(model, case):
    out = minigpt.generate(model, case["prompts"], "greedy", max_new_tokens=GREEDY["max_new_tokens"],
                           eos_token_id=case["eos_token_id"], **options_of(case))
    assert out.sequences == case["expected"]
    eos = case["eos_token_id"]
    assert out.finish_reasons == ["eos" if s[-1] == eos else "length" for s in case["expected"]]


def test_repetition_penalty_skips_left_padding(model):
    """A padded row continues as its prompt alone does: the pad tokens are not 'seen' tokens. The fixture
    case was picked so that penalising the pads too would change the short row's tokens."""
    case = next(c for c in GREEDY["cases"] if c["name"] == "batch_repetition_padding")
    options = dict(max_new_tokens=GREEDY["max_new_tokens"], eos_token_id=case["eos_token_id"], **options_of(case))
    assert case["if_pads_were_penalised"] != case["expected"]
    batch = minigpt.generate(model, case["prompts"], "greedy", **options)
    alone = [minigpt.generate(model, prompt, "greedy", **options).sequences[0] for prompt in case["prompts"]]
    assert batch.sequences == alone


# ----------------------------------------------------------------------------- sampled distributions


@pytest.mark.parametrize("case", SAMPLING["cases"], ids=lambda c: c["name"])
def test_processed_distribution_matches_transformers(sampling_model, case):
    """Along the recorded path: model logits for the prefix -> our chain -> softmax, step by step."""
    V = sampling_model.config.vocab_size
    prompt, path = case["prompt"], case["path"]
    chain = build_chain(sampling=True, prompt_length=len(prompt), eos_token_id=case["eos_token_id"],
                        vocab_size=V, **options_of(case))
    for step, expected in enumerate(PROBS[f"{case['name']}.probs"]):
        prefix = np.array([prompt + path[:step]])  # [1, t]
        logits = sampling_model(prefix[0])[-1:]  # [1, V]
        ours = softmax(chain(logits, prefix))[0]
        assert_same_distribution(ours, expected, f"{case['name']} step {step}")


@pytest.mark.parametrize("case", SAMPLING["cases"], ids=lambda c: c["name"])
def test_sampled_trace_matches_transformers(sampling_model, case):
    """generate(strategy="sample") with the recorded seed: each traced step (the whole processed
    distribution, trace_top = V) equals transformers' for the same prefix, while our path is the
    recorded one (the first step always is)."""
    V = sampling_model.config.vocab_size
    out = minigpt.generate(sampling_model, case["prompt"], "sample", max_new_tokens=len(case["path"]),
                           seed=case["seed"], trace_top=V, **options_of(case))
    tokens, steps = out.sequences[0], out.steps[0]
    assert len(steps) == len(tokens)
    for step, expected in enumerate(PROBS[f"{case['name']}.probs"]):
        if tokens[:step] != case["path"][:step]:
            break
        ours = dense(steps[step].candidates, V)
        assert_same_distribution(ours, expected, f"{case['name']} step {step}")
        assert ours[tokens[step]] > 0, "a token outside the processed distribution's support was drawn"


# ----------------------------------------------------------------------------- chi-square goodness of fit


def chi_square_p_value(statistic: float, df: int) -> float:
    """P(X >= statistic) for X ~ chi-square(df): the regularized upper gamma Q(df/2, statistic/2), from
    the series P(a, x) = x^a e^-x / Gamma(a + 1) * sum_n x^n / ((a + 1) ... (a + n)) (Numerical Recipes
    6.2). Q = 1 - P loses its digits only when Q is far below any significance level used here."""
    a, x = df / 2, statistic / 2
    if x <= 0:
        return 1.0
    term = total = 1.0
    n = 0
    while term > total * 1e-15:
        n += 1
        term *= x / (a + n)
        total += term
    return max(0.0, 1.0 - total * math.exp(-x + a * math.log(x) - math.lgamma(a + 1)))


def chi_square_test(tokens, probs) -> float:
    """p-value of Pearson's chi-square test that `tokens` were drawn from `probs` [V]. Tokens whose
    expected count is below 5 share one bin (joined to the smallest other bin if still below 5); a token
    of probability 0 must never occur."""
    counts = np.bincount(tokens, minlength=probs.size)
    assert counts[probs == 0].sum() == 0, "drew a token of probability 0"
    expected = len(tokens) * probs.astype(np.float64) / probs.sum(dtype=np.float64)
    big = expected >= 5
    obs, exp = list(counts[big]), list(expected[big])
    small = (~big) & (probs > 0)
    if small.any():
        if expected[small].sum() >= 5 or not exp:
            obs.append(counts[small].sum())
            exp.append(expected[small].sum())
        else:
            i = int(np.argmin(exp))
            obs[i] += counts[small].sum()
            exp[i] += expected[small].sum()
    obs, exp = np.array(obs, dtype=np.float64), np.array(exp)
    if len(exp) < 2:
        return 1.0
    return chi_square_p_value(float(((obs - exp) ** 2 / exp).sum()), len(exp) - 1)


def test_chi_square_p_value_known_values():
    """Against tabulated quantiles: P(chi2_1 >= 3.841) = 0.05, P(chi2_10 >= 23.209) = 0.01,
    P(chi2_4 >= 18.467) = 0.001."""
    assert chi_square_p_value(3.841459, 1) == pytest.approx(0.05, rel=1e-4)
    assert chi_square_p_value(23.209251, 10) == pytest.approx(0.01, rel=1e-4)
    assert chi_square_p_value(18.466827, 4) == pytest.approx(0.001, rel=1e-4)


@pytest.mark.parametrize("name", ["temperature_1.5", "top_k_5", "epsilon_3e-4"])
def test_draw_follows_the_distribution(name):
    """20000 draws by decoding.draw follow the distribution; the same draws fail against a distorted one,
    so the test can tell."""
    probs = PROBS[f"{name}.probs"][0]
    rng = np.random.default_rng(2024)
    tokens = np.array([draw(probs, rng) for _ in range(20000)])
    assert chi_square_test(tokens, probs) > SIGNIFICANCE
    distorted = softmax(np.log(probs, where=probs > 0, out=np.full_like(probs, -np.inf))[None] * 1.1)[0]
    assert chi_square_test(tokens, distorted) < SIGNIFICANCE


@pytest.mark.parametrize("options", [{"temperature": 1.5}, {"top_p": 0.8}, {"min_p": 0.05, "temperature": 1.3}],
                         ids=["temperature", "top_p", "min_p"])
def test_generate_samples_follow_the_traced_distribution(sampling_model, options):
    """One prompt, 3000 sequences of one token each: the first tokens drawn follow the distribution that
    generate traces for that prompt."""
    V = sampling_model.config.vocab_size
    prompt = SAMPLING["cases"][0]["prompt"][-2:]
    traced = minigpt.generate(sampling_model, prompt, "sample", max_new_tokens=1, seed=0, trace_top=V, **options)
    probs = dense(traced.steps[0][0].candidates, V)
    out = minigpt.generate(sampling_model, prompt, "sample", max_new_tokens=1, num_return_sequences=3000,
                           seed=11, trace_top=0, **options)
    assert chi_square_test(np.array([s[0] for s in out.sequences]), probs) > SIGNIFICANCE


# ----------------------------------------------------------------------------- seeds, batches, return sequences


def test_same_seed_same_output_different_seed_different(sampling_model):
    prompt = SAMPLING["cases"][0]["prompt"]
    run = lambda seed: minigpt.generate(sampling_model, prompt, "sample", max_new_tokens=10, seed=seed,  # noqa: E731
                                        temperature=1.5)
    first, again, other = run(5), run(5), run(6)
    assert first.sequences == again.sequences and first.texts == again.texts
    assert [s.candidates for s in first.steps[0]] == [s.candidates for s in again.steps[0]]
    assert first.sequences != other.sequences  # 10 tokens at temperature 1.5: equal with negligible chance


def test_num_return_sequences_per_prompt(sampling_model):
    V = sampling_model.config.vocab_size
    prompts = [SAMPLING["cases"][0]["prompt"], [1, 2]]
    out = minigpt.generate(sampling_model, prompts, "sample", max_new_tokens=5, num_return_sequences=3, seed=3,
                           temperature=1.5)
    assert len(out.sequences) == len(out.texts) == len(out.steps) == 6
    assert out.prompt_index == [0, 0, 0, 1, 1, 1]
    assert out.prompt_tokens == prompts
    assert all(1 <= len(s) <= 5 and all(0 <= t < V for t in s) for s in out.sequences)
    assert len({tuple(s) for s in out.sequences[:3]}) > 1  # the copies of a prompt are sampled independently


def test_sampled_rows_stop_at_their_own_eos(sampling_model):
    """With a likely end-of-text token, some rows end early: a sequence ends with eos (reason "eos") or runs
    to max_new_tokens without one (reason "length"), and on_token streams exactly the returned tokens."""
    prompt = SAMPLING["cases"][0]["prompt"]
    first = softmax(sampling_model(prompt)[-1][None] / 3.0)[0]  # the first step's distribution at temperature 3
    eos = int(np.argmin(np.abs(first - 0.15)))  # a token of probability about 0.15: some rows draw it, some don't
    streamed = [[] for _ in range(12)]
    out = minigpt.generate(sampling_model, prompt, "sample", max_new_tokens=6, num_return_sequences=12, seed=4,
                           temperature=3.0, eos_token_id=eos, on_token=lambda row, token: streamed[row].append(token))
    assert streamed == out.sequences
    assert {"eos", "length"} == set(out.finish_reasons)
    for tokens, reason in zip(out.sequences, out.finish_reasons):
        assert eos not in tokens[:-1]
        assert (reason, len(tokens)) == (("eos", len(tokens)) if tokens[-1] == eos else ("length", 6))


def test_batched_sampling_follows_each_rows_own_distribution(sampling_model):
    """A left-padded batch: each row's tokens are in the vocabulary and each traced step is the
    distribution of that row's own prefix, computed alone without padding (so the repetition penalty
    must not count the pad tokens, which stay in the support: no truncation here)."""
    V = sampling_model.config.vocab_size
    prompts = [SAMPLING["cases"][0]["prompt"], [4, 9, 4]]
    options = {"temperature": 1.3, "repetition_penalty": 1.2}
    out = minigpt.generate(sampling_model, prompts, "sample", max_new_tokens=6, seed=8, trace_top=V, **options)
    eos = sampling_model.config.eos_token_id
    for prompt, tokens, steps in zip(prompts, out.sequences, out.steps):
        assert all(0 <= t < V for t in tokens)
        chain = build_chain(sampling=True, prompt_length=len(prompt), eos_token_id=eos, vocab_size=V, **options)
        for step, traced in enumerate(steps):
            prefix = np.array([prompt + tokens[:step]])
            expected = softmax(chain(sampling_model(prefix[0])[-1:], prefix))[0]
            assert_same_distribution(dense(traced.candidates, V), expected, f"row {prompt} step {step}")
            assert expected[tokens[step]] > 0


# ----------------------------------------------------------------------------- refused options


@pytest.mark.parametrize("strategy, options, parameter", [
    ("sample", {"top_p": 1.5}, "top_p"),
    ("sample", {"top_p": 0.0}, "top_p"),
    ("sample", {"temperature": -1}, "temperature"),
    ("sample", {"temperature": 0}, "temperature"),
    ("sample", {"top_k": -1}, "top_k"),
    ("sample", {"min_p": 1.5}, "min_p"),
    ("sample", {"typical_p": 0}, "typical_p"),
    ("sample", {"repetition_penalty": 0}, "repetition_penalty"),
    ("sample", {"num_return_sequences": 0}, "num_return_sequences"),
    ("sample", {"seed": -3}, "seed"),
    ("sample", {"min_tokens_to_keep": 0}, "min_tokens_to_keep"),  # refused even with no warper to use it
    ("greedy", {"top_k": 5}, "top_k"),
    ("greedy", {"temperature": 0.7}, "temperature"),
    ("greedy", {"seed": 1}, "seed"),
    ("greedy", {"tempertaure": 0.7}, "tempertaure"),
    ("sample", {"top_n": 3}, "top_n"),
])
def test_bad_options_are_refused_by_name(sampling_model, strategy, options, parameter):
    with pytest.raises(ValueError, match=parameter):
        minigpt.generate(sampling_model, [1, 2, 3], strategy, max_new_tokens=2, **options)


def test_option_the_strategy_does_not_use_names_the_strategy(sampling_model):
    with pytest.raises(ValueError, match=r"greedy.*top_k|top_k.*greedy"):
        minigpt.generate(sampling_model, [1, 2, 3], "greedy", top_k=5)


# ----------------------------------------------------------------------------- live, against transformers itself


@pytest.fixture(scope="module")
def reference():
    """scripts/reference/sampling.py, which needs torch and transformers (hence imported here, not at the top)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from scripts.reference import common, sampling
    common.start_torch(threads=1)  # a tiny model: threads cost more than they save
    return sampling


@pytest.mark.parametrize("case", SAMPLING["cases"], ids=lambda c: c["name"])
def test_live_sampled_trace_matches_transformers(reference, sampling_model, case):
    """A new prompt and seed: at every step of our sampled path, our traced distribution equals the one
    transformers' generate() samples from for the same prefix."""
    hf_model = live_model(reference, SAMPLING["checkpoint"])
    V = sampling_model.config.vocab_size
    rng = np.random.default_rng(case["seed"])
    prompt = [int(t) for t in rng.integers(0, V, size=5)]
    options = options_of(case)
    out = minigpt.generate(sampling_model, prompt, "sample", max_new_tokens=4, seed=case["seed"] + 1000,
                           trace_top=V, **options)
    tokens = out.sequences[0]
    for step, traced in enumerate(out.steps[0]):
        expected = reference.reference_probs(hf_model, prompt + tokens[:step], case["eos_token_id"], options)
        assert_same_distribution(dense(traced.candidates, V), expected, f"{case['name']} step {step}")


@pytest.mark.parametrize("case", GREEDY["cases"], ids=lambda c: c["name"])
def test_live_greedy_matches_transformers(reference, model, case):
    """The fixture's options on other prompts (same lengths, so the cases keep their shape)."""
    hf_model = live_model(reference, GREEDY["checkpoint"])
    rng = np.random.default_rng(len(case["name"]))
    V = model.config.vocab_size
    prompts = [[int(t) for t in rng.integers(0, V, size=len(p))] for p in case["prompts"]]
    options = options_of(case)
    expected = reference.reference_greedy(hf_model, prompts, case["eos_token_id"], options)
    out = minigpt.generate(model, prompts, "greedy", max_new_tokens=GREEDY["max_new_tokens"],
                           eos_token_id=case["eos_token_id"], **options)
    assert out.sequences == expected


_LIVE_MODELS = {}


def live_model(reference, checkpoint):
    if checkpoint not in _LIVE_MODELS:
        _LIVE_MODELS[checkpoint] = reference.reference_model(FIXTURES / checkpoint)
    return _LIVE_MODELS[checkpoint]
