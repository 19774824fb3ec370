"""What every inspection starts from: one prompt's ids checked, one forward pass that keeps every stage, and the
texts of the tokens it shows (so that a result reads without a tokenizer).

What this module is not: any inspection (the other modules of inspection/), or a view of one (views/).
"""

import numpy as np

from ..core.checks import check_vocabulary
from ..core.model import GPT2
from ..core.tokenizer import Tokenizer
from ..strategies.run import token_text


def prompt_ids(model: GPT2, ids) -> np.ndarray:
    """One prompt of token ids [T], checked: not empty, within the context and the vocabulary. -> [1, T]"""
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.size == 0 or ids.dtype.kind not in "iu":
        raise ValueError(f"ids must be one non-empty prompt of integer token ids [T], got {ids.tolist()!r:.80}.")
    if ids.size > model.config.n_positions:
        raise ValueError(f"the prompt has {ids.size} tokens, more than the model's context of "
                         f"n_positions={model.config.n_positions}; give a shorter prompt.")
    check_vocabulary(ids, model.config.vocab_size)
    return ids.astype(np.int64)[None]


def prompt_rows(model: GPT2, ids) -> tuple[np.ndarray, bool]:
    """One prompt [T] or a batch of prompts of equal length [B, T], checked as prompt_ids checks one.
    -> (ids [B, T] int64, whether one prompt was given)"""
    ids = np.asarray(ids)
    if ids.ndim == 1:
        return prompt_ids(model, ids), True
    if ids.ndim != 2 or ids.size == 0 or ids.dtype.kind not in "iu":
        raise ValueError(f"ids must be a prompt of integer token ids [T] or a batch of prompts of equal length "
                         f"[B, T], got an array of shape {ids.shape} and dtype {ids.dtype}.")
    for row in ids:
        prompt_ids(model, row)
    return ids.astype(np.int64), False


def inspect_prompt(model: GPT2, ids: np.ndarray):
    """One forward pass over the prompt ids [1, T] (checked by prompt_ids) that keeps every residual stream and
    attention map (the logits of the last position only: the lens reads every position out of the residuals)."""
    return model.forward(ids, model.new_cache(1, ids.shape[1]), last_only=True, inspect=True)


def texts_of(tokenizer: Tokenizer | None, ids) -> list[str]:
    """Each token's own text (strategies/run.token_text): "" beyond the tokenizer's vocabulary."""
    tokenizer = tokenizer or Tokenizer()
    return [token_text(tokenizer, int(i)) for i in ids]
