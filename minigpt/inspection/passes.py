"""What every inspection starts from: one prompt's ids checked, one forward pass that keeps every stage, and the
texts of the tokens it shows (so that a result reads without a tokenizer).

What this module is not: any inspection (the other modules of inspection/), or a view of one (views/).
"""

import numpy as np

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
    return ids.astype(np.int64)[None]


def inspect_prompt(model: GPT2, ids: np.ndarray):
    """One forward pass over the prompt ids [1, T] (checked by prompt_ids) that keeps every residual stream and
    attention map (the logits of the last position only: the lens reads every position out of the residuals)."""
    return model.forward(ids, model.new_cache(1, ids.shape[1]), last_only=True, inspect=True)


def texts_of(tokenizer: Tokenizer | None, ids) -> list[str]:
    """Each token's own text (strategies/run.token_text): "" beyond the tokenizer's vocabulary."""
    tokenizer = tokenizer or Tokenizer()
    return [token_text(tokenizer, int(i)) for i in ids]
