"""Where the model looks: every head's attention pattern over a prompt, softmax(q k^T / sqrt(D)) for each query
(the pattern TransformerLens calls `attn.hook_pattern`). The data behind `minigpt plot attention` and the page's
attention grid.

What this module is not: the attention computation itself (core/model.py) or a picture of it (views/).
"""

import math
from dataclasses import dataclass, field

import numpy as np

from ..call import memory
from ..core.model import GPT2
from ..core.tokenizer import Tokenizer
from .passes import inspect_prompt, prompt_ids, texts_of

# Shapes: L n_layer, H n_head, T prompt tokens.


@dataclass(repr=False)
class AttentionPatterns:
    """Every head's attention over a prompt: weights [L, H, T, T] float32, row t (a query) holding its weights
    over the positions 0..t (zero after t: causal), layers counted from 1 in every view."""
    tokens: list[int]  # [T]
    weights: np.ndarray  # [L, H, T, T]
    texts: list[str] = field(default_factory=list)  # [T] the tokens' texts

    def __repr__(self) -> str:
        L, H, T, _ = self.weights.shape
        return f"AttentionPatterns({L} layers x {H} heads over {T} tokens: {''.join(self.texts)[:60]!r})"


def attention_patterns(model: GPT2, ids, tokenizer: Tokenizer | None = None) -> AttentionPatterns:
    """Every head's attention pattern over the prompt ids [T], read off one forward pass."""
    ids = prompt_ids(model, ids)  # [1, T]
    T, c = ids.shape[1], model.config
    stacked = math.ceil(c.n_layer * c.n_head * T * T / c.vocab_size)  # np.stack's [L, H, T, T], in rows of V
    memory.check_fits(memory.prompt_pass(c, T, stacked, every_layer=True), "the attention maps of this prompt")
    weights = np.stack([pattern[0] for pattern in inspect_prompt(model, ids).patterns])  # L x [H, T, T]
    return AttentionPatterns(tokens=ids[0].tolist(), weights=weights, texts=texts_of(tokenizer, ids[0]))
