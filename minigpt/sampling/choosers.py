"""Choosers: the last link of the chain, which turns the processed scores into one token per row.

    greedy   argmax_i x_i                               the most probable token; ties go to the lower id
    draw     i ~ softmax(x), by the run's seeded draw   the same seed gives the same text

As in llama.cpp's sampler chain, choosing is a link like the others: `narrow` may still cut the
candidates (mirostat does, in mirostat.py), `choose` picks the tokens, and `accept` lets the chooser
learn from what was chosen (mirostat moves its mu) and returns what it decided, per row, for the trace.
These two keep no state, so `accept` has nothing to learn.

What this module is not: the processors that reshape the scores before the choice (processors.py,
penalties.py, llama_samplers.py), or beam search, contrastive search and speculative decoding, which
weigh several candidates per row and choose by rules of their own (beam.py, contrastive.py, speculative.py).
"""

import numpy as np

from ..numerics import draw, softmax

# Shapes: B rows, V vocabulary.


class Greedy:
    """The most probable token: argmax over the processed scores (the first of equal maxima, as torch.argmax)."""

    name = "greedy"

    def narrow(self, scores):
        return scores

    def choose(self, scores, rows):
        return scores.argmax(axis=-1)  # [B]

    def accept(self, scores, tokens, rows) -> dict:
        return {}

    def describe(self) -> str:
        return ""  # the plain choice: the chain lists nothing after the processors


class Draw(Greedy):
    """A token drawn from softmax(scores) with the run's seeded generator (numerics.draw). Every row with a
    token left is drawn from, finished ones included, so that a seed gives the same text whatever the batch;
    a row with nothing left (a finished row fed padding) gets the pad token."""

    name = "draw"

    def __init__(self, rng: np.random.Generator, pad_token_id: int):
        self.rng, self.pad_token_id = rng, pad_token_id

    def choose(self, scores, rows):
        probs = softmax(scores)  # [B, V]
        return np.array([draw(p, self.rng) if p.any() else self.pad_token_id for p in probs])  # [B]
