"""The data behind the pictures (minigpt/inspection.py), each checked against an independent definition:
attention rows are distributions over the past, the logit lens is ln_f + unembedding and at the last
layer the model's own output, the beam tree holds exactly what beam search returned, and the cut-offs
of the probability view are those of the processors."""

import numpy as np
import pytest
from conftest import load_model

import minigpt
from minigpt.core.links import MinP, TopK, TopP
from minigpt.inspection import attention_patterns, beam_tree, logit_lens, next_token_distribution
from minigpt.strategies.options import OptionError

PROMPT = [464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13]  # "The quick brown fox jumps over the lazy dog."


def layer_norm(x, p, eps=1e-5):
    x = x.astype(np.float64)
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps) * p["weight"] + p["bias"]


def softmax64(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("name", ["fullvocab", "tiny-hub", "odd-f16"])
def test_attention_rows_are_causal_distributions(name):
    model = load_model(name)
    ids = [i % model.config.vocab_size for i in PROMPT]
    maps = attention_patterns(model, ids).weights
    c = model.config
    assert maps.shape == (c.n_layer, c.n_head, len(ids), len(ids)) and maps.dtype == np.float32
    np.testing.assert_allclose(maps.sum(axis=-1), 1.0, atol=1e-5)
    assert (maps >= 0).all()
    assert not np.triu(maps, k=1).any(), "a query attends to a later position"


def test_first_layer_attention_is_softmax_of_scaled_dot_products():
    """Layer 0 recomputed from its parameters: softmax(q k^T / sqrt(D)) under the causal mask."""
    model = load_model("fullvocab")
    p, c = model.params, model.config
    T, D = len(PROMPT), c.n_embd // c.n_head
    x = p["wte"]["weight"][PROMPT] + p["wpe"]["weight"][:T]  # [T, C]
    qkv = layer_norm(x, p["h"][0]["ln_1"]) @ p["h"][0]["attn"]["c_attn"]["weight"] + p["h"][0]["attn"]["c_attn"]["bias"]
    q, k, _ = np.split(qkv, 3, axis=-1)  # [T, C] each
    q, k = (a.reshape(T, c.n_head, D).transpose(1, 0, 2) for a in (q, k))  # [H, T, D]
    scores = np.where(np.tril(np.ones((T, T), dtype=bool)), q @ k.transpose(0, 2, 1) / np.sqrt(D), -np.inf)
    np.testing.assert_allclose(attention_patterns(model, PROMPT).weights[0], softmax64(scores), atol=1e-5)


@pytest.mark.parametrize("name", ["fullvocab", "tiny-hub"])
def test_lens_at_the_last_layer_is_the_model_output(name):
    model = load_model(name)
    ids = [i % model.config.vocab_size for i in PROMPT]
    lens = logit_lens(model, ids)
    assert lens.top_tokens.shape == lens.top_probs.shape == (model.config.n_layer + 1, len(ids))
    probs = softmax64(model(ids).astype(np.float64))  # [T, V]
    np.testing.assert_array_equal(lens.top_tokens[-1], probs.argmax(-1))
    np.testing.assert_allclose(lens.top_probs[-1], probs.max(-1), rtol=1e-5)


def test_lens_reads_out_through_the_final_layer_norm():
    """Row 0 is the embeddings read as if they were the last layer: softmax(unembed(ln_f(wte + wpe)))."""
    model = load_model("fullvocab")
    p = model.params
    x = p["wte"]["weight"][PROMPT] + p["wpe"]["weight"][: len(PROMPT)]  # [T, C]
    probs = softmax64(model.unembed(layer_norm(x, p["ln_f"]).astype(np.float32)).astype(np.float64))  # [T, V]
    lens = logit_lens(model, PROMPT)
    np.testing.assert_array_equal(lens.top_tokens[0], probs.argmax(-1))
    np.testing.assert_allclose(lens.top_probs[0], probs.max(-1), rtol=1e-4)
    without_norm = softmax64(model.unembed(x).astype(np.float64)).max(-1)
    assert not np.allclose(lens.top_probs[0], without_norm, rtol=1e-2)  # the check above can tell the difference


def ending_token(model, prompt, position):
    """A token greedy decoding chooses at `position`: used as end-of-text, so that beams finish early."""
    return minigpt.generate(model, prompt, max_new_tokens=position + 1).sequences[0][position]


BEAM_CASES = {
    "plain": dict(num_beams=3, max_new_tokens=5),
    "long-beams": dict(num_beams=4, max_new_tokens=6, length_penalty=2.0, early_stopping="never"),
    "eos": dict(num_beams=3, max_new_tokens=6, early_stopping=True, eos_at=2),
    "ngram": dict(num_beams=3, max_new_tokens=6, no_repeat_ngram_size=2, eos_at=3),
}


@pytest.mark.parametrize("case", list(BEAM_CASES))
@pytest.mark.parametrize("name", ["fullvocab", "tiny-hub"])
def test_beam_tree_survivors_are_beam_search_result(name, case):
    model = load_model(name)
    prompt = [i % model.config.vocab_size for i in PROMPT[:5]]
    options = dict(BEAM_CASES[case])
    if "eos_at" in options:
        options["eos_token_id"] = ending_token(model, prompt, options.pop("eos_at"))
    tree = beam_tree(model, prompt, **options)
    k = options["num_beams"]
    out = minigpt.generate(model, prompt, "beam", num_return_sequences=k, **options)  # a separate, unrecorded run
    assert tree.sequences == out.sequences and tree.scores == out.scores

    ends = {node.result: node for node in tree.nodes if node.result is not None and node.status == "finished"
            and list(node.tokens) == tree.sequences[node.result]}
    assert sorted(ends) == list(range(len(out.sequences)))  # every returned sequence ends in a finished node
    for rank, node in ends.items():
        path = tree.path(node)
        assert [n.tokens[-1] for n in path] == out.sequences[rank]
        assert all(n.status == "running" for n in path[:-1])
        assert node.score == pytest.approx(out.scores[rank], rel=1e-6)


@pytest.mark.parametrize("name", ["fullvocab", "tiny-hub"])
def test_beam_tree_scores_and_pruning(name):
    """A running beam's score is its parent's plus log p(token) (no processors), and at every step no pruned
    candidate (other than end-of-text) scores above a beam kept: the rule of beam search."""
    model = load_model(name)
    prompt = [i % model.config.vocab_size for i in PROMPT[:4]]
    tree = beam_tree(model, prompt, num_beams=3, max_new_tokens=5)
    for node in tree.nodes[1:]:
        if node.status == "running":
            parent = tree.nodes[node.parent]
            assert node.score == pytest.approx(parent.score + np.log(node.prob), abs=1e-4)
    for step in range(5):
        at = [n for n in tree.nodes if n.step == step]
        kept = [n.score for n in at if n.status == "running"]
        pruned = [n.score for n in at if n.status == "pruned"]
        assert len(kept) == 3 or step == 4 and not kept  # at the last step the kept beams are finished
        if kept and pruned:
            assert min(kept) >= max(pruned)
        assert len(at) == 6  # the 2 * num_beams candidates weighed


def test_beam_tree_records_diverse_groups():
    model = load_model("tiny-hub")
    prompt = [464, 68, 586]
    tree = beam_tree(model, prompt, strategy="diverse-beam", num_beams=4, num_beam_groups=2, diversity_penalty=1.0,
                     max_new_tokens=4)
    out = minigpt.generate(model, prompt, "diverse-beam", num_beams=4, num_beam_groups=2, diversity_penalty=1.0,
                           max_new_tokens=4, num_return_sequences=4)
    assert tree.sequences == out.sequences
    assert {n.group for n in tree.nodes[1:]} == {0, 1}


def test_only_beam_strategies_record():
    model = load_model("tiny-hub")
    with pytest.raises(OptionError, match="record"):
        minigpt.generate(model, [1, 2], "greedy", record=[])


@pytest.mark.parametrize("temperatures", [(1.0,), (0.5, 1.0, 2.0)])
def test_probability_view_agrees_with_the_processors(temperatures):
    model = load_model("fullvocab")
    data = next_token_distribution(model, PROMPT, temperatures=temperatures, top_k=7, top_p=0.9, min_p=0.05, top=30)
    logits = model(PROMPT)[-1:]  # [1, V]
    for m, t in enumerate(temperatures):
        tempered = logits / np.float32(t)  # [1, V]
        probs = softmax64(tempered.astype(np.float64))[0]  # [V]
        assert list(data.tokens) == list(np.argsort(-probs, kind="stable")[:30])
        np.testing.assert_allclose(data.probs[m], probs[data.tokens], rtol=1e-4, atol=1e-8)  # float32 logits
        np.testing.assert_allclose(data.rest[m], 1 - probs[data.tokens].sum(), atol=1e-5)
        for name, processor in {"top_k": TopK(7), "top_p": TopP(0.9), "min_p": MinP(0.05)}.items():
            allowed = np.isfinite(processor(tempered, np.array([PROMPT])))[0]
            np.testing.assert_array_equal(data.kept[name][m], allowed[data.tokens], err_msg=name)
            assert data.kept_count[name][m] == allowed.sum()
        # the same cut-offs by their definitions
        assert data.kept_count["top_k"][m] == 7
        assert data.kept_count["min_p"][m] == (probs >= 0.05 * probs.max()).sum()
        mass = np.cumsum(np.sort(probs)[::-1])
        assert data.kept_count["top_p"][m] == np.searchsorted(mass, 0.9 - 1e-6) + 1
        # sampling's distribution: temperature, then top-k, top-p, min-p one after the other, renormalised
        chained = tempered
        for processor in (TopK(7), TopP(0.9), MinP(0.05)):
            chained = processor(chained, np.array([PROMPT]))
        final = softmax64(chained.astype(np.float64))[0]
        assert data.final_count[m] == (final > 0).sum() <= min(c[m] for c in data.kept_count.values())
        np.testing.assert_allclose(data.final[m], final[data.tokens], rtol=1e-4, atol=1e-8)
    assert data.selected == data.tokens[0]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_selected_token_is_what_sampling_draws(seed):
    model = load_model("fullvocab")
    data = next_token_distribution(model, PROMPT, temperatures=(1.5, 0.7), top_k=20, top_p=0.95, seed=seed)
    out = minigpt.generate(model, PROMPT, "sample", temperature=1.5, top_k=20, top_p=0.95, seed=seed, max_new_tokens=1)
    assert data.selected == out.sequences[0][0]


def test_bad_input_is_one_sentence():
    model = load_model("fullvocab")
    with pytest.raises(ValueError, match="top_p must be a number in"):
        next_token_distribution(model, PROMPT, top_p=1.5)
    with pytest.raises(ValueError, match="temperature must be"):
        next_token_distribution(model, PROMPT, temperatures=(0.0,))
    with pytest.raises(ValueError, match="non-empty prompt"):
        logit_lens(model, [])
    with pytest.raises(ValueError, match="n_positions"):
        attention_patterns(load_model("odd-f16"), [1] * 41)


@pytest.mark.parametrize("seed", [0, 3])
def test_each_temperature_states_the_token_its_draw_gives(seed):
    model = load_model("fullvocab")
    prompt, temperatures = [464, 3290], (0.5, 1.0, 2.0)
    data = next_token_distribution(model, prompt, temperatures=temperatures, top_p=0.95, seed=seed)
    assert data.draw_temperature == 0.5 and data.selected == data.drawn[0]
    for t, token in zip(temperatures, data.drawn):  # the same seed draws at each temperature what sampling would
        out = minigpt.generate(model, prompt, "sample", seed=seed, temperature=t, top_p=0.95, max_new_tokens=1)
        assert out.sequences[0][0] == token
    greedy = next_token_distribution(model, prompt, temperatures=temperatures)
    assert greedy.drawn.tolist() == [greedy.tokens[0]] * 3 and greedy.seed is None


def test_lens_rows_are_named_as_the_readme_explains_them():
    model = load_model("tiny-hub")  # two blocks
    lens = logit_lens(model, [1, 2, 3])
    assert lens.row_labels == ["embeddings", "after layer 0", "after layer 1 (the model's prediction)"]
    assert len(lens.row_labels) == lens.top_tokens.shape[0]


@pytest.mark.parametrize("strategy, options", [("beam", {}), ("beam-sample", {"seed": 0}),
                                               ("diverse-beam", {"num_beam_groups": 3, "diversity_penalty": 1.0})])
def test_beam_tree_states_how_many_candidates_each_step_weighs(strategy, options):
    model = load_model("tiny-hub")
    tree = beam_tree(model, [5, 17, 400], num_beams=3, max_new_tokens=4, strategy=strategy, **options)
    assert tree.candidates_per_step == 6
    per_step = np.bincount([node.step for node in tree.nodes[1:]])
    assert per_step.max() <= 6 and (strategy != "beam" or (per_step == 6).all()), per_step
