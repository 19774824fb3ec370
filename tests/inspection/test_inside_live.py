"""Live parity with TransformerLens 4.x: the tests of test_inside.py, run on fresh dense checkpoints of other shapes
against what TransformerLens computes now (scripts/reference/inside.records, the fixtures' own maker), rather
than against the recorded fixtures. Skipped when transformer_lens is not installed: it is in no extra of minigpt
(its install pulls gigabytes), so MINIGPT_REQUIRE_REFERENCE=1, which CI sets for torch and transformers, requires
only those two here. It runs in the environment that makes the fixtures, e.g.

    PYTHONPATH=. /work/venv-tl/bin/python -m pytest tests/inspection/test_inside_live.py
"""

import os

import pytest

import minigpt

pytest.importorskip("transformer_lens")
if os.environ.get("MINIGPT_REQUIRE_REFERENCE") != "1":
    pytest.importorskip("torch")

import test_inside as recorded  # noqa: E402

from scripts.reference import inside as maker  # noqa: E402

# The tests of test_inside.py, collected here again: they read this module's `dense` fixture.
test_the_cache_holds_transformer_lens_arrays_under_its_names = \
    recorded.test_the_cache_holds_transformer_lens_arrays_under_its_names
test_the_cache_gives_the_models_own_logits_and_transformers_logits = \
    recorded.test_the_cache_gives_the_models_own_logits_and_transformers_logits
test_a_batch_keeps_its_axis_and_a_filter_keeps_what_it_names = \
    recorded.test_a_batch_keeps_its_axis_and_a_filter_keeps_what_it_names
test_attribution_equals_transformer_lens_and_adds_up = recorded.test_attribution_equals_transformer_lens_and_adds_up
test_patching_equals_transformer_lens = recorded.test_patching_equals_transformer_lens
test_patching_identities = recorded.test_patching_identities
test_head_detectors_equal_transformer_lens = recorded.test_head_detectors_equal_transformer_lens

SHAPES = {  # name: (seed, GPT2Config arguments)
    "many-heads": (31, dict(vocab_size=211, n_embd=64, n_layer=2, n_head=8, n_positions=40)),
    "deep-thin": (32, dict(vocab_size=120, n_embd=24, n_layer=4, n_head=2, n_inner=50, n_positions=24,
                           layer_norm_epsilon=1e-3)),
}


@pytest.fixture(scope="module", params=list(SHAPES))
def dense(request, tmp_path_factory):
    """(minigpt's model, TransformerLens' record, its arrays) for a fresh dense checkpoint: what the imported tests
    read from tests/fixtures/inside/, computed now."""
    seed, config = SHAPES[request.param]
    model = maker.build(seed, config)
    folder = tmp_path_factory.mktemp(request.param)
    model.save_pretrained(folder)
    record, arrays = maker.records(model, seed)
    return minigpt.load(str(folder)), record, arrays
