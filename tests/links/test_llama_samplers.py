"""llama.cpp's samplers: top-nσ, XTC, DRY, dynamic temperature (sampling/llama_samplers.py), mirostat v1
and v2 (sampling/mirostat.py) and the user's sampler order.

- definition: each is recomputed here from its formula, in plain Python (float64), on small inputs
  (hypothesis draws some), and compared with ours;
- reference: tests/fixtures/llama/cases.json holds what llama.cpp's own samplers returned on recorded
  inputs (scripts/reference/llama.py, through llama-cpp-python); we must return the same;
- end to end: generation through the library and the CLI with each option on tests/fixtures/fullvocab,
  the trace's state, the order printed, and bad values refused with a sentence naming the parameter.
"""

import json
import math
import os

import numpy as np
import pytest
from helpers import CHECKOUT
from hypothesis import given, settings
from hypothesis import strategies as st

import minigpt
from minigpt.call.generate import generate
from minigpt.call.strategies import build_options
from minigpt.cli.main import main
from minigpt.links.chain import build_chain
from minigpt.links.llama import DRY, XTC, DynamicTemperature, TopNSigma, sequence_breaker_tokens
from minigpt.links.mirostat import Mirostat
from minigpt.strategies.options import OptionError

CASES = CHECKOUT / "tests" / "fixtures" / "llama" / "cases.json"
FULLVOCAB = CHECKOUT / "tests" / "fixtures" / "fullvocab"
# LLAMA_EXAMPLES=2000 hunts for rare disagreements; the default keeps the file to a few seconds.
BOUNDED = settings(max_examples=int(os.environ.get("LLAMA_EXAMPLES", "40")), deadline=None)
NO_IDS = np.zeros((1, 0), dtype=np.int64)


@pytest.fixture(scope="module")
def cases():
    return json.loads(CASES.read_text())


@pytest.fixture(scope="module")
def model():
    return minigpt.load(FULLVOCAB)


def row(values):
    return np.asarray([values], dtype=np.float32)  # [1, V]


def softmax64(x):
    finite = [v for v in x if v != -math.inf]
    top = max(finite)
    e = [math.exp(v - top) if v != -math.inf else 0.0 for v in x]
    return [v / sum(e) for v in e]


logit_rows = st.lists(st.floats(-20, 20, allow_nan=False, width=32), min_size=2, max_size=30)


# ----------------------------------------------------------------------------- top-nσ


@BOUNDED
@given(logit_rows, st.floats(0.1, 4.0))
def test_top_n_sigma_keeps_logits_within_n_deviations_of_the_max(values, n):
    mean = sum(values) / len(values)
    sigma = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    bar = max(values) - n * sigma
    out = TopNSigma(n)(row(values), NO_IDS)[0]
    for v, o in zip(values, out):
        if abs(v - bar) > 1e-4 * (1 + abs(bar)):  # away from float32's rounding at the bar
            assert (o == v) if v >= bar else (o == -np.inf)


def test_top_n_sigma_ignores_masked_tokens_and_temperature():
    x = row([3.0, 2.0, 1.0, 0.0, -np.inf, -np.inf])
    # mean 1.5, sigma sqrt(1.25) = 1.118: n = 1 keeps x >= 1.882
    assert np.isneginf(TopNSigma(1.0)(x, NO_IDS)[0]).tolist() == [False, False, True, True, True, True]
    x = np.random.default_rng(0).normal(size=(3, 50)).astype(np.float32)
    for t in (0.25, 2.0):  # the kept set does not change with the temperature (Tang et al. 2024)
        assert (np.isneginf(TopNSigma(1.5)(x / np.float32(t), NO_IDS)) == np.isneginf(TopNSigma(1.5)(x, NO_IDS))).all()


def test_top_n_sigma_matches_llama_cpp(cases):
    for case in cases["top_n_sigma"]:
        out = TopNSigma(case["n"])(row(case["logits"]), NO_IDS)[0]
        assert_candidates(out, case["out"])


def assert_candidates(out, want):
    """out [V] against llama.cpp's {id: logit} of the candidates it kept."""
    kept = {str(i): float(v) for i, v in enumerate(out) if np.isfinite(v)}
    assert kept.keys() == want.keys(), f"kept {sorted(kept, key=int)}, llama.cpp kept {sorted(want, key=int)}"
    np.testing.assert_allclose([kept[i] for i in want], list(want.values()), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- XTC


class FixedDraw:
    """An rng whose uniform draws are given."""

    def __init__(self, *values):
        self.values = list(values)

    def random(self):
        return self.values.pop(0)


@BOUNDED
@given(logit_rows, st.floats(0.01, 0.5), st.integers(1, 5))
def test_xtc_drops_all_tokens_above_the_threshold_but_the_least_likely(values, threshold, min_keep):
    p = softmax64(values)
    out = XTC(1.0, threshold, min_tokens_to_keep=min_keep, rng=FixedDraw(0.5))(row(values), NO_IDS)[0]
    above = sorted((i for i in range(len(p)) if p[i] >= threshold), key=lambda i: (-values[i], i))
    if any(abs(p[i] - threshold) < 1e-6 for i in range(len(p))) or len(set(values[i] for i in above)) < len(above):
        return  # float32 rounding at the threshold, or ties among the top: the order of equals is ours to choose
    dropped = set(above[:-1]) if len(above) >= 2 and len(p) - (len(above) - 1) >= min_keep else set()
    assert {i for i in range(len(p)) if np.isneginf(out[i])} == dropped
    assert all(out[i] == values[i] for i in range(len(p)) if i not in dropped)


def test_xtc_fires_with_its_probability():
    x = row([5.0, 4.9, 4.8, 0.0, -1.0])
    xtc = XTC(0.3, 0.1, rng=FixedDraw(0.31, 0.3))
    assert (xtc(x, NO_IDS) == x).all() and xtc.state["xtc_excluded"].tolist() == [0]  # 0.31 > 0.3: no
    assert np.isneginf(xtc(x, NO_IDS)[0]).tolist() == [True, True, False, False, False]  # 0.3 <= 0.3: yes
    assert xtc.state["xtc_excluded"].tolist() == [2]


def test_xtc_matches_llama_cpp(cases):
    for case in cases["xtc"]:
        out = XTC(1.0, case["threshold"], min_tokens_to_keep=case["min_keep"], rng=FixedDraw(0.0))(row(case["logits"]), NO_IDS)[0]
        assert_candidates(out, case["out"])


# ----------------------------------------------------------------------------- dynamic temperature


@BOUNDED
@given(logit_rows, st.floats(0.2, 2.0), st.floats(0.05, 3.0), st.floats(0.0, 3.0))
def test_dynamic_temperature_follows_the_normalised_entropy(values, t, spread, exponent):
    p = softmax64(values)
    h = -sum(q * math.log(q) for q in p if q > 0)
    t_min, t_max = max(0.0, t - spread), t + spread
    t_dyn = t_min + (t_max - t_min) * (h / math.log(len(values))) ** exponent
    processor = DynamicTemperature(t, spread, exponent)
    out = processor(row(values), NO_IDS)[0]
    # float32's entropy is good to about 3e-6 of H_max; H ** exponent turns that into at most this much:
    slack = (t_max - t_min) * (3e-6 ** min(exponent, 1.0) if exponent > 0 else 0.0) + 1e-5
    ours = float(processor.state["dynamic_temperature"][0])
    assert ours == pytest.approx(t_dyn, rel=1e-4, abs=slack)
    if ours > 0:
        np.testing.assert_allclose(out, np.float32(values) / np.float32(ours), rtol=1e-6)


def test_dynamic_temperature_zero_keeps_the_best_and_one_candidate_is_left_alone():
    out = DynamicTemperature(0.5, 1.0)(row([2.0, 2.0, -np.inf]), NO_IDS)[0]  # flat: H = H_max, T = 1.5
    np.testing.assert_allclose(out[:2], [2 / 1.5, 2 / 1.5], rtol=1e-6)
    out = DynamicTemperature(0.5, 0.5, exponent=1.0)(row([200.0, 0.0, 0.0]), NO_IDS)[0]  # H ~ 0: T = 0, greedy
    assert out[0] == 200.0 and np.isneginf(out[1:]).all()
    x = row([1.0, -np.inf, -np.inf])
    assert (DynamicTemperature(1.0, 0.5)(x, NO_IDS) == x).all()


def test_dynamic_temperature_matches_llama_cpp(cases):
    for case in cases["temp_ext"]:
        out = DynamicTemperature(case["temp"], case["delta"], case["exponent"])(row(case["logits"]), NO_IDS)[0]
        assert_candidates(out, case["out"])


# ----------------------------------------------------------------------------- DRY


def dry_by_definition(context, vocab, multiplier, base, allowed, breakers=()):
    """DRY's penalties [V], from its definition, by brute force over Python lists."""
    n = len(context)
    penalty = [0.0] * vocab
    if n <= allowed:
        return penalty
    limit = n
    for start in range(n - 1, -1, -1):  # the breaker that starts nearest the end caps the repeats
        ends = [start + len(seq) for seq in breakers if context[start : start + len(seq)] == list(seq)]
        if ends:
            limit = n - max(ends)
            break
    if limit < allowed:
        return penalty
    longest = {}
    for j in range(n - 1):
        length = 0
        while length < limit and length <= j and context[j - length] == context[n - 1 - length]:
            length += 1
        if length >= allowed:
            longest[context[j + 1]] = max(longest.get(context[j + 1], 0), length)
    singles = {seq[0] for seq in breakers if len(seq) == 1}
    for token, length in longest.items():
        if token < vocab and token not in singles:
            penalty[token] = multiplier * base ** (length - allowed)
    return penalty


@BOUNDED
@given(st.lists(st.integers(0, 3), min_size=0, max_size=40), st.integers(1, 4),
       st.lists(st.lists(st.integers(0, 3), min_size=1, max_size=2), max_size=2))
def test_dry_penalises_tokens_that_extend_a_repeat(history, allowed, breakers):
    x = np.zeros((1, 5), dtype=np.float32)
    out = DRY(0.8, 1.75, allowed, breakers=breakers)(x, np.asarray([history], dtype=np.int64))[0]
    want = dry_by_definition(history, 5, 0.8, 1.75, allowed, breakers)
    np.testing.assert_allclose(-out, want, rtol=1e-5)


def test_dry_example():
    # a b c c b c y a b c: "a b c" occurred before, followed by c; "b c" also before y and before c (3 ends it)
    a, b, c, y = 0, 1, 2, 3
    ids = np.asarray([[a, b, c, c, b, c, y, a, b, c]])
    out = -DRY(1.0, 2.0, allowed_length=2)(np.zeros((1, 4), np.float32), ids)[0]
    assert out.tolist() == [0.0, 0.0, 2.0, 1.0]  # c extends "a b c" (3 tokens: 2^1), y extends "b c" (2^0)
    out = -DRY(1.0, 2.0, allowed_length=2, breakers=[[y]])(np.zeros((1, 4), np.float32), ids)[0]
    assert out.tolist() == [0.0, 0.0, 2.0, 0.0]  # y, a breaker on its own, is never penalised
    out = -DRY(1.0, 2.0, allowed_length=2, breakers=[[b]])(np.zeros((1, 4), np.float32), ids)[0]
    assert out.tolist() == [0.0, 0.0, 0.0, 0.0]  # the last b caps repeats at 1 token (c), below allowed_length
    out = -DRY(1.0, 2.0, allowed_length=2, penalty_last_n=4)(np.zeros((1, 4), np.float32), ids)[0]
    assert out.tolist() == [0.0, 0.0, 0.0, 0.0]  # y a b c: nothing repeats


def test_dry_skips_padding_and_unknown_tokens():
    ids = np.asarray([[3, 3, 0, 3, 3]])  # "3 3" at the end repeats the first two, which are padding here
    zeros = np.zeros((1, 4), np.float32)
    assert (-DRY(1.0, 2.0, allowed_length=2)(zeros, ids)[0]).tolist() == [1.0, 0.0, 0.0, 0.0]
    assert (-DRY(1.0, 2.0, allowed_length=2, prompt_ignore_length=[2])(zeros, ids)[0]).tolist() == [0.0, 0.0, 0.0, 0.0]
    ids = np.asarray([[9, 1, 2, 9, 1, 2]])  # 9 (beyond V = 4) extends "9 1 2": nothing to penalise in the vocabulary
    assert (-DRY(1.0, 2.0, allowed_length=2)(zeros, ids)[0]).tolist() == [0.0, 0.0, 0.0, 0.0]


def test_dry_matches_llama_cpp(cases):
    for case in cases["dry"]:
        dry = DRY(case["multiplier"], case["base"], case["allowed_length"], case["penalty_last_n"])
        out = dry(row(case["logits"]), np.asarray([case["history"]]))[0]
        assert_candidates(out, case["out"])


def test_sequence_breakers_as_llama_cpp_derives_them():
    tok = minigpt.Tokenizer()
    sequences = sequence_breaker_tokens(tok, ("\n", ":", "Bob:"))
    singles = {s[0] for s in sequences if len(s) == 1}
    assert {i for i in range(tok.n_vocab) if b"\n" in tok.token_bytes(i) or b":" in tok.token_bytes(i)} <= singles
    for seq in sequences:  # each sequence spells out one of the breakers, starting inside its head token
        text = b"".join(tok.token_bytes(i) for i in seq)
        assert any(b in text for b in (b"\n", b":", b"Bob:")), seq
    assert (tok.encode(" Bob")[0], *tok.encode(":")) in sequences  # " Bob" ends with "Bob", then ":" completes it


# ----------------------------------------------------------------------------- mirostat


def mirostat_by_definition(version, tau, eta, vocab, steps):
    """(kept counts, mu before each step) with forced tokens, from Basu et al.'s rules in float64."""
    mu, kept, mus = 2 * tau, [], []
    for x, token in steps:
        order = sorted(range(len(x)), key=lambda i: (-x[i], i))
        p = softmax64(x)
        if version == 1:
            pairs = min(99, len(x) - 1)
            t = [math.log((i + 2) / (i + 1)) for i in range(pairs)]
            b = [math.log(p[order[i]] / p[order[i + 1]]) for i in range(pairs)]
            s = sum(ti * bi for ti, bi in zip(t, b)) / sum(ti * ti for ti in t)
            eps = s - 1
            k = max(min(int((eps * 2**mu / (1 - vocab**-eps)) ** (1 / s)), len(x)), 1)
        else:
            k = next((i for i, j in enumerate(order) if -math.log2(p[j]) > mu), len(x)) or 1
        q = softmax64([x[j] for j in order[:k]])
        mus.append(mu)
        kept.append(k)
        mu -= eta * (-math.log2(q[order[:k].index(token)]) - tau)
    return kept, mus


@pytest.mark.parametrize("version", [1, 2])
def test_mirostat_mu_trajectory_follows_its_definition(version):
    rng = np.random.default_rng(version)
    v, tau, eta = 80, 3.0, 0.4
    mirostat = Mirostat(version, tau, eta, vocab_size=v)
    steps, mus, kept = [], [], []
    for _ in range(20):
        x = (-1.1 * np.log(np.arange(1, v + 1)) + 0.2 * rng.standard_normal(v)).astype(np.float32)[rng.permutation(v)]
        truncated = mirostat.truncate(x[None])
        allowed = np.flatnonzero(np.isfinite(truncated[0]))
        token = int(allowed[len(allowed) // 2])  # forced: the middle of what is allowed
        state = mirostat.accept(mirostat.narrow(x[None]), np.array([token]), rows=[0])
        steps.append((x.astype(np.float64).tolist(), token))
        mus.append(float(state["mirostat_mu"][0]))
        kept.append(len(allowed))
    want_kept, want_mus = mirostat_by_definition(version, tau, eta, v, steps)
    assert kept == want_kept
    np.testing.assert_allclose(mus, want_mus, rtol=1e-4, atol=1e-4)
    assert len(set(kept)) > 1  # mu moved enough to change the truncation


@pytest.mark.parametrize("version", [1, 2])
def test_mirostat_matches_llama_cpp(cases, version):
    for case in cases["mirostat" if version == 1 else "mirostat_v2"]:
        mirostat = Mirostat(version, case["tau"], case["eta"], vocab_size=case["vocab_size"])
        kept = []
        for step in case["steps"]:
            x = row(step["logits"])
            kept.append(int(np.isfinite(mirostat.truncate(x)).sum()))
            mirostat.accept(mirostat.narrow(x), np.array([step["token"]]), rows=[0])
        assert kept == [step["kept"] for step in case["steps"]]


def test_mirostat_steers_surprise_towards_tau(model):
    out = generate(model, [464, 2068], "sample", seed=3, max_new_tokens=30, mirostat=2, mirostat_tau=3.0, mirostat_eta=0.5,
                   trace_top=5)
    surprises = [step.state["mirostat_surprise"] for step in out.steps[0]]
    mus = [step.state["mirostat_mu"] for step in out.steps[0]]
    assert mus[0] == 6.0 and len(surprises) == 30
    for before, after, s in zip(mus, mus[1:], surprises):
        assert after == pytest.approx(before - 0.5 * (s - 3.0), abs=1e-5)


# ----------------------------------------------------------------------------- the chain and its order


def test_chain_order_default_and_chosen():
    chain = build_chain(sampling=True, prompt_length=0, eos_token_id=0, vocab_size=None, temperature=0.7, top_k=5,
                        top_p=0.9, top_n_sigma=1.0, xtc_probability=0.5, dry_multiplier=0.8, repetition_penalty=1.2)
    assert [p.name for p in chain.processors] == ["repetition_penalty", "dry", "temperature", "top_k", "top_p",
                                                 "top_n_sigma", "xtc"]
    chain = build_chain(sampling=True, prompt_length=0, eos_token_id=0, vocab_size=None, temperature=0.7, top_k=5,
                        top_p=0.9, top_n_sigma=1.0, dynatemp_range=0.3, sampler_order=("top_n_sigma", "top_k", "dynamic_temperature"))
    assert [p.name for p in chain.processors] == ["top_n_sigma", "top_k", "dynamic_temperature", "top_p"]


def test_sampler_order_reaches_the_output_chain(model):
    out = generate(model, [464], "sample", seed=0, max_new_tokens=2, top_k=40, top_p=0.9, temperature=0.8,
                   sampler_order=["top_p", "top_k", "temperature"])
    assert [c.split("(")[0] for c in out.chain] == ["top_p", "top_k", "temperature"]
    out = generate(model, [464], "sample", seed=0, max_new_tokens=2, top_k=40, mirostat=1)
    assert [c.split("(")[0] for c in out.chain] == ["top_k", "mirostat"]


@pytest.mark.parametrize("options, parameter", [
    (dict(sampler_order=["top_k", "banana"]), "sampler_order"),
    (dict(sampler_order=["top_k", "top_k"]), "sampler_order"),
    (dict(sampler_order="top_k"), "sampler_order"),
    (dict(top_n_sigma=-1.0), "top_n_sigma"),
    (dict(xtc_probability=1.5), "xtc_probability"),
    (dict(xtc_probability=0.5, xtc_threshold=0.7), "xtc_threshold"),
    (dict(dynatemp_range=-0.5), "dynatemp_range"),
    (dict(dynatemp_range=0.5, dynatemp_exponent=-1.0), "dynatemp_exponent"),
    (dict(dry_multiplier=-1.0), "dry_multiplier"),
    (dict(dry_multiplier=0.8, dry_base=0.5), "dry_base"),
    (dict(dry_allowed_length=0), "dry_allowed_length"),
    (dict(dry_penalty_last_n=-2), "dry_penalty_last_n"),
    (dict(dry_sequence_breakers=["\n", ""]), "dry_sequence_breakers"),
    (dict(dry_sequence_breakers="\n"), "dry_sequence_breakers"),
    (dict(mirostat=3), "mirostat"),
    (dict(mirostat=2, mirostat_tau=0.0), "mirostat_tau"),
    (dict(mirostat=2, mirostat_eta=2.0), "mirostat_eta"),
])
def test_bad_values_are_refused_naming_the_parameter(options, parameter):
    with pytest.raises(OptionError, match=parameter):
        build_options("sample", **options)


def test_strategies_accept_what_they_can_use():
    build_options("beam", num_beams=2, dry_multiplier=0.8)  # DRY is a penalty: every strategy
    build_options("greedy", dry_multiplier=0.8, dry_sequence_breakers=[])
    with pytest.raises(OptionError, match="does not use mirostat"):
        build_options("beam-sample", mirostat=2)
    with pytest.raises(OptionError, match="does not use xtc_probability"):
        build_options("greedy", xtc_probability=0.5)


# ----------------------------------------------------------------------------- end to end


def test_xtc_draws_from_the_run_seed(model):
    first = generate(model, [464, 2068], "sample", seed=1, max_new_tokens=12, xtc_probability=0.5, xtc_threshold=0.01)
    again = generate(model, [464, 2068], "sample", seed=1, max_new_tokens=12, xtc_probability=0.5, xtc_threshold=0.01)
    assert again.sequences == first.sequences
    fired = [s.state["xtc_excluded"] for s in again.steps[0]]
    assert any(fired) and not all(fired)  # probability 0.5: some steps excluded tokens, some did not


def test_dry_stops_a_greedy_loop(model):
    prompt = [464, 2068, 7586] * 3
    plain = generate(model, prompt, max_new_tokens=12).sequences[0]
    dry = generate(model, prompt, max_new_tokens=12, dry_multiplier=1e3, dry_allowed_length=2,
                   dry_sequence_breakers=[]).sequences[0]
    context = prompt + dry
    for j in range(len(prompt) - 2, len(context) - 2):  # no 3 tokens of DRY's text repeat anything before them
        assert all(context[i : i + 3] != context[j : j + 3] for i in range(j))
    assert plain != dry


FLAGS = [
    (["--top-n-sigma", "1.0"], "top_n_sigma", None),
    (["--xtc-probability", "1.0", "--xtc-threshold", "0.02"], "xtc", "xtc_excluded"),
    (["--dynatemp-range", "0.5", "--dynatemp-exponent", "1.5"], "dynamic_temperature", "dynamic_temperature"),
    (["--dry-multiplier", "0.8", "--dry-base", "2", "--dry-allowed-length", "3", "--dry-penalty-last-n", "64",
      "--dry-sequence-breaker", "\n", "--dry-sequence-breaker", "."], "dry", None),
    (["--mirostat", "1", "--mirostat-tau", "4", "--mirostat-eta", "0.2"], "mirostat", "mirostat_mu"),
    (["--mirostat", "2"], "mirostat_v2", "mirostat_mu"),
]


@pytest.mark.parametrize("flags, name, state", FLAGS)
def test_cli_flags(capsys, flags, name, state):
    argv = ["generate", "The dog", "--model", str(FULLVOCAB), "--strategy", "sample", "--seed", "5",
            "--max-new-tokens", "4", "--json", "--trace", *flags]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert [c.split("(")[0] for c in result["chain"]] == [name]
    steps = result["sequences"][0]["steps"]
    assert len(steps) == 4
    if state:
        assert all(state in step["state"] for step in steps)
    if name == "dry":
        assert "sequence_breakers=['\\n', '.']" in result["chain"][0]


def test_cli_sampler_order_and_refusals(capsys):
    base = ["generate", "The dog", "--model", str(FULLVOCAB), "--strategy", "sample", "--seed", "5", "--max-new-tokens", "2",
            "--json", "--top-k", "20", "--temperature", "0.8"]
    assert main([*base, "--sampler-order", "top_k,temperature"]) == 0
    assert [c.split("(")[0] for c in json.loads(capsys.readouterr().out)["chain"]] == ["top_k", "temperature"]
    assert main([*base, "--sampler-order", "top_k,top_k"]) == 1
    assert "--sampler-order names 'top_k' twice" in capsys.readouterr().err
    assert main([*base, "--dry-multiplier", "0.8", "--dry-sequence-breaker", "none"]) == 0
    assert "sequence_breakers=[]" in json.loads(capsys.readouterr().out)["chain"][0]
    assert main([*base, "--mirostat", "5"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("minigpt: error: --mirostat must be 0 (off), 1 or 2") and err.count("\n") == 1


@pytest.mark.parametrize("processor", [TopNSigma(1.0), XTC(1.0, 0.05, rng=FixedDraw(*[0.0] * 3)), DynamicTemperature(0.8, 0.5),
                                       DRY(0.8, breakers=[[1]])], ids=lambda p: p.name)
def test_contract_float32_no_mutation_and_masked_rows_stay_masked(processor):
    x = np.random.default_rng(0).normal(size=(3, 12)).astype(np.float32)
    x[1, :] = -np.inf  # every token masked
    x[2, 3:] = -np.inf
    ids = np.asarray([[1, 2, 3, 1, 2, 3]] * 3)
    before = x.copy()
    out = processor(x, ids)
    assert out.dtype == np.float32 and out.shape == x.shape and not np.isnan(out).any()
    assert (x == before).all() and np.isneginf(out[1]).all()
