"""Speculative decoding: greedy output identical to the target's own greedy output whatever the draft,
and sampled output distributed as the target's (a chi-square test against exact probabilities)."""

import math

import numpy as np
import pytest
from helpers import FIXTURES, random_params, write_checkpoint

import minigpt
from minigpt.core.config import GPTConfig
from minigpt.core.model import GPT2, nest
from minigpt.core.numerics import softmax
from minigpt.links.chain import build_chain
from minigpt.strategies.speculative import verify
from minigpt.weights.checkpoint import read_safetensors

TARGETS = ("tiny-hub", "tiny-pretrained", "odd-f16")  # sharpened checkpoints of scripts/reference/logits.py


# ----------------------------------------------------------------------------- models


@pytest.fixture(scope="module")
def target_folder(tmp_path_factory):
    """A sharpened fixture checkpoint (several layers, so that dropping some leaves a different model)."""
    for name in TARGETS:
        if (FIXTURES / name / "config.json").is_file():
            return FIXTURES / name
    config = GPTConfig(vocab_size=96, n_positions=64, n_embd=32, n_layer=3, n_head=4)
    params = random_params(config, seed=11, scale=0.3)
    params["ln_f.weight"] *= np.float32(0.5)
    return write_checkpoint(tmp_path_factory.mktemp("target"), config, params)


@pytest.fixture(scope="module")
def target(target_folder):
    return minigpt.load(target_folder)


@pytest.fixture(scope="module")
def near_draft(target_folder, tmp_path_factory):
    """The target with a little noise on every weight, written to disk (speculative decoding loads it by
    path): it agrees with the target often but not always, so drafts are both accepted and rejected."""
    rng = np.random.default_rng(5)
    params = read_safetensors(next(target_folder.glob("*.safetensors")))
    noisy = {k: v + np.float32(0.15) * v.std() * rng.standard_normal(v.shape).astype(np.float32) for k, v in params.items()}
    return str(write_checkpoint(tmp_path_factory.mktemp("near"), minigpt.load(target_folder).config, noisy))


@pytest.fixture(scope="module")
def random_draft(target):
    """An unrelated model with the same vocabulary: it disagrees with the target, so drafts get rejected."""
    config = GPTConfig(vocab_size=target.config.vocab_size, n_positions=target.config.n_positions,
                       n_embd=16, n_layer=1, n_head=2)
    return model_from(config, random_params(config, seed=99))


def model_from(config, flat_params):
    params = nest(flat_params)
    params["lm_head"] = params["wte"]
    return GPT2(config, params)


def prompts(target, n=3, seed=0):
    rng = np.random.default_rng(seed)
    return [[int(t) for t in rng.integers(0, min(target.config.vocab_size, 50256), size=size)] for size in (1, 4, 9)[:n]]


def never(model):
    """An end-of-text id outside the vocabulary: generation runs to max_new_tokens."""
    return model.config.vocab_size


# ----------------------------------------------------------------------------- greedy


@pytest.fixture(scope="module")
def other_fixture_draft(target_folder):
    """Another sharpened fixture checkpoint with the target's vocabulary (by path), if there is one."""
    target_vocab = minigpt.load(target_folder).config.vocab_size
    for name in TARGETS:
        folder = FIXTURES / name
        if folder != target_folder and (folder / "config.json").is_file():
            if minigpt.load(folder).config.vocab_size == target_vocab:
                return str(folder)
    pytest.skip("no second fixture checkpoint with the target's vocabulary")


@pytest.mark.parametrize("K", [1, 2, 4, 7])
@pytest.mark.parametrize("draft_name", ["target", "near", "other", "random"])
def test_greedy_equals_target_greedy(request, target, random_draft, K, draft_name):
    draft = {"target": lambda: target, "near": lambda: request.getfixturevalue("near_draft"),
             "other": lambda: request.getfixturevalue("other_fixture_draft"), "random": lambda: random_draft}[draft_name]()
    for prompt in prompts(target):
        expected = minigpt.generate(target, prompt, max_new_tokens=20, eos_token_id=never(target))
        out = minigpt.generate(target, prompt, "speculative", max_new_tokens=20, eos_token_id=never(target),
                               draft_model=draft, num_assistant_tokens=K)
        assert out.sequences == expected.sequences
        assert out.finish_reasons == ["length"]
        assert out.scores[0] == pytest.approx(expected.scores[0], abs=1e-3)
        stats = out.stats
        assert set(stats) == {"drafted", "accepted", "acceptance_rate", "forward_passes", "tokens_per_pass"}
        assert 0 <= stats["accepted"] <= stats["drafted"] and 0.0 <= stats["acceptance_rate"] <= 1.0
        assert stats["acceptance_rate"] == pytest.approx(stats["accepted"] / stats["drafted"])
        if draft_name == "target":
            assert stats["acceptance_rate"] == 1.0  # a model always agrees with itself
        if draft_name == "near":
            assert 0 < stats["accepted"] < stats["drafted"]  # some drafts kept, some cropped away


def test_rejections_happen_with_an_unrelated_draft(target, random_draft):
    out = minigpt.generate(target, prompts(target)[1], "speculative", max_new_tokens=20, eos_token_id=never(target),
                           draft_model=random_draft, num_assistant_tokens=4)
    assert out.stats["acceptance_rate"] < 1.0


@pytest.mark.parametrize("options", [
    dict(repetition_penalty=1.8),
    dict(no_repeat_ngram_size=2),
    dict(repetition_penalty=1.3, no_repeat_ngram_size=3, suppress_tokens=[0, 1]),
])
def test_history_processors_see_each_drafted_position(target, near_draft, options):
    """Penalties that read the history must see the drafts before each position, or the text would differ."""
    for prompt in prompts(target):
        expected = minigpt.generate(target, prompt, max_new_tokens=20, eos_token_id=never(target), **options)
        out = minigpt.generate(target, prompt, "speculative", max_new_tokens=20, eos_token_id=never(target),
                               draft_model=near_draft, num_assistant_tokens=5, **options)
        assert out.sequences == expected.sequences


def test_eos_ends_and_min_new_tokens_holds_it_back(target, near_draft):
    prompt = prompts(target)[1]
    free = minigpt.generate(target, prompt, max_new_tokens=12, eos_token_id=never(target)).sequences[0]
    eos = free[5]
    for K in (1, 3, 8):
        out = minigpt.generate(target, prompt, "speculative", max_new_tokens=12, eos_token_id=eos,
                               draft_model=near_draft, num_assistant_tokens=K)
        assert out.sequences[0] == free[: free.index(eos) + 1] and out.finish_reasons == ["eos"]
        held = minigpt.generate(target, prompt, "speculative", max_new_tokens=12, eos_token_id=eos, min_new_tokens=12,
                                draft_model=near_draft, num_assistant_tokens=K)
        assert held.sequences == minigpt.generate(target, prompt, max_new_tokens=12, eos_token_id=eos,
                                                  min_new_tokens=12).sequences
        assert eos not in held.sequences[0][:-1] and len(held.sequences[0]) == 12


@pytest.mark.parametrize("max_new_tokens", [0, 1, 2, 5, 6, 7])
def test_max_new_tokens_is_never_exceeded(target, near_draft, max_new_tokens):
    out = minigpt.generate(target, prompts(target)[0], "speculative", max_new_tokens=max_new_tokens,
                           eos_token_id=never(target), draft_model=near_draft, num_assistant_tokens=5)
    assert len(out.sequences[0]) == max_new_tokens


def test_trace_is_the_targets(target, random_draft):
    """One Step per token; log-probs under the target's raw distribution, candidates from its processed one."""
    prompt = prompts(target)[2]
    streamed = []
    expected = minigpt.generate(target, prompt, max_new_tokens=10, eos_token_id=never(target), trace_top=5,
                                repetition_penalty=1.4)
    out = minigpt.generate(target, prompt, "speculative", max_new_tokens=10, eos_token_id=never(target), trace_top=5,
                           repetition_penalty=1.4, draft_model=random_draft, num_assistant_tokens=3,
                           on_token=lambda row, token: streamed.append((row, token)))
    assert streamed == [(0, t) for t in out.sequences[0]]
    assert [s.token for s in out.steps[0]] == out.sequences[0] == expected.sequences[0]
    for ours, theirs in zip(out.steps[0], expected.steps[0]):
        assert ours.logprob == pytest.approx(theirs.logprob, abs=1e-4)
        assert [c.id for c in ours.candidates] == [c.id for c in theirs.candidates]
        assert [c.p for c in ours.candidates] == pytest.approx([c.p for c in theirs.candidates], abs=1e-5)
    assert out.scores[0] == pytest.approx(sum(s.logprob for s in out.steps[0]), abs=1e-4)


def test_batch_and_foreign_vocabulary_are_refused(target, random_draft):
    with pytest.raises(ValueError, match="one prompt at a time"):
        minigpt.generate(target, prompts(target), "speculative", max_new_tokens=4, draft_model=random_draft)
    config = GPTConfig(vocab_size=target.config.vocab_size + 1, n_positions=64, n_embd=8, n_layer=1, n_head=2)
    with pytest.raises(ValueError, match="vocabulary"):
        minigpt.generate(target, [1, 2], "speculative", max_new_tokens=4,
                         draft_model=model_from(config, random_params(config)))


# ----------------------------------------------------------------------------- sampling

TINY = GPTConfig(vocab_size=8, n_positions=8, n_embd=8, n_layer=1, n_head=2)


def tiny(seed, sharpness):
    """A model over 8 tokens with a spread-out next-token distribution (ln_f scaled by `sharpness`)."""
    params = random_params(TINY, seed=seed, scale=0.5)
    params["ln_f.weight"] *= np.float32(sharpness / 8)  # random_params sharpens by 8; undo part of it
    return model_from(TINY, params)


def chi_square_p_value(observed, expected):
    """P(X >= statistic) for Pearson's chi-square over cells with expected count >= 5 (the rest pooled);
    an empty cell of probability 0 is left out, and a non-empty one gives p = 0.

    scipy's chi2.sf when available, otherwise the Wilson-Hilferty normal approximation of the chi-square
    distribution (accurate to a few percent in the tail for the degrees of freedom used here).
    """
    observed, expected = np.asarray(observed, float).ravel(), np.asarray(expected, float).ravel()
    if observed[expected == 0].any():
        return 0.0
    observed, expected = observed[expected > 0], expected[expected > 0]
    small = expected < 5
    if small.any():
        observed = np.append(observed[~small], observed[small].sum())
        expected = np.append(expected[~small], expected[small].sum())
    statistic = ((observed - expected) ** 2 / expected).sum()
    df = len(expected) - 1
    try:
        from scipy.stats import chi2
        return float(chi2.sf(statistic, df))
    except ImportError:
        z = ((statistic / df) ** (1 / 3) - (1 - 2 / (9 * df))) / math.sqrt(2 / (9 * df))
        return 0.5 * math.erfc(z / math.sqrt(2))


def exact_two_tokens(model, prompt, chain):
    """p(x1, x2 | prompt) [V, V] from the processed distributions of full forward passes."""
    V = model.config.vocab_size
    first = softmax(chain(model(prompt)[-1:], np.array([prompt])))[0].astype(np.float64)  # [V]
    joint = np.zeros((V, V))
    for x1 in range(V):
        history = prompt + [x1]
        joint[x1] = first[x1] * softmax(chain(model(history)[-1:], np.array([history])))[0]
    return joint


@pytest.mark.parametrize("warpers", [{}, dict(temperature=0.7, top_k=5)])
def test_sampled_tokens_follow_the_target_distribution(warpers):
    """x1, x2 from speculative sampling (K=2, so a round can accept a draft, reject the next and resample)
    against the target's exact p(x1, x2). The draft is far from the target (total variation > 0.4)."""
    target, draft, prompt, V = tiny(0, 1.0), tiny(1, 1.5), [3], TINY.vocab_size
    chain = build_chain(sampling=True, prompt_length=len(prompt), eos_token_id=V, vocab_size=V, **warpers)
    expected = exact_two_tokens(target, prompt, chain)
    draft_first = softmax(chain(draft(prompt)[-1:], np.array([prompt])))[0]
    assert 0.5 * np.abs(expected.sum(axis=1) - draft_first).sum() > 0.4

    draws = 700
    counts = np.zeros((V, V))
    accepted = drafted = 0
    for seed in range(draws):
        out = minigpt.generate(target, prompt, "speculative", do_sample=True, seed=seed, max_new_tokens=3,
                               num_assistant_tokens=2, eos_token_id=V, draft_model=draft, trace_top=0, **warpers)
        x1, x2, _ = out.sequences[0]
        counts[x1, x2] += 1
        accepted, drafted = accepted + out.stats["accepted"], drafted + out.stats["drafted"]
    assert 0 < accepted < drafted  # both branches, acceptance and rejection, were taken
    assert chi_square_p_value(counts.sum(axis=1), draws * expected.sum(axis=1)) > 1e-3
    assert chi_square_p_value(counts, draws * expected) > 1e-3
    # The test can tell: the draft's own distribution is rejected outright.
    assert chi_square_p_value(counts.sum(axis=1), draws * draft_first) < 1e-6


def test_accept_reject_rule_gives_the_target_distribution():
    """The rule alone, many draws: draft d ~ q, accept with min(1, p(d)/q(d)), else draw from max(0, p - q)."""
    rng = np.random.default_rng(0)
    p = np.array([0.5, 0.2, 0.2, 0.1, 0.0, 0.0])
    q = np.array([0.1, 0.1, 0.3, 0.1, 0.2, 0.2])

    class Run:  # what verify reads from a sampling.run.Run
        class options:
            do_sample = True
        rng = np.random.default_rng(1)

    class Target:
        probs = np.stack([p, p])  # position 1 and the bonus position

    draws = 20000
    counts = np.zeros(len(p))
    for _ in range(draws):
        d = int(rng.choice(len(q), p=q))
        counts[verify(Run, [d], q[None], Target)[0]] += 1
    assert counts[4] == counts[5] == 0  # tokens the target never emits are never emitted
    assert chi_square_p_value(counts[:4], draws * p[:4]) > 1e-3


def test_same_seed_same_output(target, random_draft):
    def run(seed):
        return minigpt.generate(target, prompts(target)[1], "speculative", do_sample=True, seed=seed, max_new_tokens=16,
                                eos_token_id=never(target), draft_model=random_draft, num_assistant_tokens=3)
    a, b = run(7), run(7)
    assert a.sequences == b.sequences and a.stats == b.stats
    assert any(run(seed).sequences != a.sequences for seed in range(8, 12))


def test_stop_strings_end_the_text_as_in_greedy(target, near_draft):
    prompt = prompts(target)[1]
    tok = minigpt.Tokenizer()
    free = minigpt.generate(target, prompt, max_new_tokens=12, eos_token_id=never(target)).sequences[0]
    stop = next(text for text in (tok.decode([t]) for t in free[3:]) if text.strip() and "\ufffd" not in text)
    expected = minigpt.generate(target, prompt, max_new_tokens=12, eos_token_id=never(target), stop=stop)
    out = minigpt.generate(target, prompt, "speculative", max_new_tokens=12, eos_token_id=never(target), stop=stop,
                           draft_model=near_draft, num_assistant_tokens=4)
    assert (out.sequences, out.texts, out.finish_reasons) == (expected.sequences, expected.texts, ["stop"])
