"""Where the chain's scores come from: a ScoreSource, and the plain one, the model's own logits.

A source reads the prompts once (`start`) and then one more token per row (`advance(tokens [B])`),
each time returning (logits [B, V], scores [B, V], state):
  - logits: the model's own next-token logits, which the trace and the score report;
  - scores: what the processor chain starts from (here the same logits);
  - state: a list of one dict per row for the trace (DoLa's premature layer), or None.

The other sources replace the scores by something made of the model's: classifier-free guidance
(guidance.py) and DoLa (dola.py). Greedy decoding and sampling (strategies/tokenwise.py) accept all three.

What this module is not: the forward pass (core/model.py) or the chain (core/chain.py).
"""

from dataclasses import dataclass

import numpy as np

from ..core.model import GPT2, KVCache


@dataclass
class Batch:
    """The rows a call decodes: the model, the prompts left-padded to one width, and how many tokens may follow."""
    model: GPT2
    ids: np.ndarray  # [B, T] the prompts, padded on the left with the pad id
    mask: np.ndarray  # [B, T] 1 for a real token, 0 for padding
    max_new_tokens: int
    pad_token_id: int

    def new_cache(self, rows: int) -> KVCache:
        """A KV cache of `rows` rows with room for the prompts and every new token."""
        return self.model.new_cache(rows, self.ids.shape[1] + self.max_new_tokens)


class ScoreSource:
    """The interface: start() -> (logits, scores, state), advance(tokens) -> the same, describe() -> str."""

    def describe(self) -> str:
        """What the chain starts from, for GenerationOutput.chain; "" for the model's own logits."""
        return ""

    def start(self):
        raise NotImplementedError

    def advance(self, tokens):
        raise NotImplementedError


class ModelScores(ScoreSource):
    """The model's own next-token logits, through a KV cache of the batch's rows."""

    def __init__(self, batch: Batch):
        self.batch, self.cache = batch, batch.new_cache(batch.ids.shape[0])

    def start(self):
        logits = self.batch.model.prefill(self.batch.ids, self.cache, self.batch.mask)  # [B, V]
        return logits, logits, None

    def advance(self, tokens):
        logits = self.batch.model.forward(tokens[:, None], self.cache, last_only=True).logits[:, -1]  # [B, V]
        return logits, logits, None
