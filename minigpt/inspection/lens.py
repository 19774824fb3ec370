"""The logit lens (nostalgebraist 2020, "interpreting GPT: the logit lens"): the token each layer would predict if
it were the last, softmax(unembed(ln_f(residual))) at every layer and position. The data behind `minigpt plot
lens` and the page's lens.

What this module is not: a picture of it (views/plots/maps.py) or the forward pass (core/model.py).
"""

from dataclasses import dataclass, field

import numpy as np

from ..call import memory
from ..core.model import GPT2
from ..core.numerics import softmax
from ..core.tokenizer import Tokenizer
from .passes import inspect_prompt, prompt_ids, texts_of

# Shapes: L n_layer, T prompt tokens, V vocabulary.


@dataclass(repr=False)
class LogitLens:
    """What each layer would predict: at layer l and position t, the most probable next token read out of
    the residual stream as if the remaining blocks were skipped."""
    tokens: list[int]  # [T] the prompt
    # [L+1, T] int64: row 0 reads the embeddings, row l the output of block l-1, row L the model's output
    top_tokens: np.ndarray
    top_probs: np.ndarray  # [L+1, T] float32: their probabilities, softmax(unembed(ln_f(residual)))
    row_labels: list[str] = field(default_factory=list)  # [L+1] what each row reads: lens_row_labels(L)
    texts: list[str] = field(default_factory=list)  # [T] the prompt's tokens' texts
    top_texts: list[list[str]] = field(default_factory=list)  # [L+1][T] the texts of top_tokens

    def __post_init__(self):
        if not self.row_labels:
            self.row_labels = lens_row_labels(self.top_tokens.shape[0] - 1)

    def __repr__(self) -> str:
        rows, T = self.top_tokens.shape
        return (f"LogitLens({rows} rows ({self.row_labels[0]} .. {self.row_labels[-1]}) x {T} positions; "
                f"after the last token the model predicts {self.top_texts[-1][-1]!r} "
                f"{self.top_probs[-1, -1]:.3f})")


def lens_row_labels(n_layer: int) -> list[str]:
    """What each row of the lens reads, bottom up: "embeddings", "after layer 0", ..., and the last layer's
    output, "after layer L-1 (the model's prediction)". Layers count from 0 everywhere (the attention pictures,
    --layer, TransformerLens' blocks.0)."""
    return ["embeddings"] + [f"after layer {l}" for l in range(n_layer - 1)] + [
        f"after layer {n_layer - 1} (the model's prediction)"] if n_layer else ["embeddings (the model's prediction)"]


def logit_lens(model: GPT2, ids, tokenizer: Tokenizer | None = None) -> LogitLens:
    """The logit lens (nostalgebraist 2020): p_l = softmax(W_e ln_f(x_l)) for each residual stream x_l
    (the embeddings, then the stream after each block), through the model's own final layer norm and
    tied output matrix. At l = L it is the model's own next-token distribution."""
    ids = prompt_ids(model, ids)  # [1, T]
    T = ids.shape[1]
    memory.check_fits(memory.prompt_pass(model.config, T, 4 * T, every_layer=True),  # the read-out and its softmax
                      "the logit lens of this prompt")
    result = inspect_prompt(model, ids)
    top_tokens, top_probs = [], []
    for residual in result.residuals:  # L+1 arrays [1, T, C]
        probs = softmax(model.read_out(residual[0]))  # [T, V]
        best = probs.argmax(axis=-1)  # [T]
        top_tokens.append(best)
        top_probs.append(probs[np.arange(best.size), best])
    top_tokens = np.stack(top_tokens).astype(np.int64)  # [L+1, T]
    return LogitLens(tokens=ids[0].tolist(), top_tokens=top_tokens, top_probs=np.stack(top_probs),
                     row_labels=lens_row_labels(model.config.n_layer), texts=texts_of(tokenizer, ids[0]),
                     top_texts=[texts_of(tokenizer, row) for row in top_tokens])
