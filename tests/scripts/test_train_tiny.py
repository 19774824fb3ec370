"""scripts/training/train_tiny.py's shortcut is exact: training with the unseen tokens' rows computed once gives the
weights that training the full 50257-token output layer gives, and the unseen rows stay equal; and a run is
reproducible, byte for byte. Small shapes and a few steps, on torch (the `reference` extra)."""

import numpy as np
import pytest
from conftest import require_reference

VOCAB = 50257


@pytest.fixture
def torch_settings():
    """train_tiny sets torch's threads and deterministic algorithms for the whole process: put them back."""
    torch, _ = require_reference()
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield torch
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


def small_run(torch, shared: bool, steps: int = 6):
    """A 1-layer, 16-wide GPT-2 with GPT-2's vocabulary trained for a few steps on text of 300 distinct tokens,
    with train_tiny's loss (`shared`) or with transformers' own full-vocabulary loss from the same start."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from scripts.training import train_tiny

    args = train_tiny.arguments(["--steps", str(steps), "--batch", "2", "--context", "16", "--dropout", "0"])
    train_tiny.make_deterministic(args.threads)
    rng = np.random.default_rng(0)
    words = rng.choice(VOCAB, size=300, replace=False)
    train_ids, held_ids = words[rng.integers(0, 300, 4000)], words[rng.integers(0, 300, 400)]
    config = GPT2Config(vocab_size=VOCAB, n_positions=16, n_embd=16, n_layer=1, n_head=2, resid_pdrop=0.0,
                        embd_pdrop=0.0, attn_pdrop=0.0)
    model = GPT2LMHeadModel(config)
    unseen = np.setdiff1d(np.arange(VOCAB), train_ids)
    if shared:
        loss_of = train_tiny.UnseenSharedLoss(model, train_ids, VOCAB)
    else:  # the same start (the unseen rows 0), and every row of the output layer computed and trained
        with torch.no_grad():
            model.transformer.wte.weight[torch.from_numpy(unseen)] = 0.0

        def loss_of(x):
            return model(x, labels=x).loss
    train_tiny.train(args, model, loss_of, train_ids, held_ids)
    return model, unseen


def test_the_shared_unseen_rows_train_as_the_full_output_layer_does(torch_settings, capsys):
    """Fails if the unseen rows' gradient is not shared out (or not divided by their number), or if the loss counts
    them other than n_unseen times: each of those mistakes moves wte by far more than the rounding allowed here."""
    torch = torch_settings
    ours, unseen = small_run(torch, shared=True)
    theirs, _ = small_run(torch, shared=False)
    capsys.readouterr()
    rows = ours.transformer.wte.weight.detach().numpy()[unseen]
    assert np.abs(rows).max() > 0 and (rows == rows[0]).all()  # trained, and still one row
    for (name, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items()):
        a, b = a.numpy(), b.numpy()
        assert np.abs(a - b).max() <= 1e-5 * max(1.0, np.abs(b).max()), name
    x = torch.from_numpy(np.random.default_rng(1).integers(0, VOCAB, (2, 16)))  # unseen tokens among them
    with torch.no_grad():
        assert np.allclose(ours(x).logits.numpy(), theirs(x).logits.numpy(), atol=1e-5)


def test_a_run_is_reproducible_byte_for_byte(torch_settings, capsys):
    first, _ = small_run(torch_settings, shared=True)
    second, _ = small_run(torch_settings, shared=True)
    capsys.readouterr()
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert (a.numpy() == b.numpy()).all(), name
