"""Where the chain's scores come from: a ScoreSource, and the plain one, the model's own logits.

A source reads the prompts once (`start`) and then one more token per row (`advance(tokens [B])`),
each time returning (logits [B, V], scores [B, V], state):
  - logits: the model's own next-token logits, which the trace and the score report;
  - scores: what the processor chain starts from (here the same logits);
  - state: a list of one dict per row for the trace (DoLa's premature layer), or None.

The other sources replace the scores by something made of the model's: classifier-free guidance
(guidance.py) and DoLa (dola.py). Greedy decoding and sampling (tokenwise.py) accept all three.

What this module is not: the forward pass (model.py) or the chain (chain.py).
"""

from ..strategies.run import Run


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
    """The model's own next-token logits, through a KV cache of the run's rows."""

    def __init__(self, run: Run):
        self.run, self.cache = run, run.new_cache(run.ids.shape[0])

    def start(self):
        logits = self.run.model.prefill(self.run.ids, self.cache, self.run.mask)  # [B, V]
        return logits, logits, None

    def advance(self, tokens):
        logits = self.run.model.forward(tokens[:, None], self.cache, last_only=True).logits[:, -1]  # [B, V]
        return logits, logits, None
