"""Classifier-free guidance (Sanchez et al. 2023, "Stay on Topic with Classifier-Free Guidance",
arXiv:2306.17806): a source of scores that follows the prompt by contrasting it with a context without it.

At every step the model reads two contexts: the prompt (conditional) and an unconditional one, which is
a negative prompt or, without one, only the prompt's last token. Their log-distributions are combined as

    log p_g(x) = log p(x | uncond) + g * (log p(x | prompt) - log p(x | uncond))

g = 1 is the model itself (guidance is then off, as in transformers); g > 1 (the paper: 1.25 to 3)
pushes away from the unconditional context, towards the prompt and away from a negative prompt; g < 1
leans towards it, and g = 0 continues the negative prompt as if it were the prompt. log p_g is not
normalised; it is what the processor chain (penalties, temperature, top-k ...) then reshapes.

Matches transformers' UnbatchedClassifierFreeGuidanceLogitsProcessor (generate(guidance_scale=...,
negative_prompt_ids=...)): first in the chain, on the raw logits; generated tokens are appended to the
unconditional context too (see Guided).

What this module is not: the strategies (tokenwise.py; greedy and sampling accept guidance) or the
processors (processors.py). Its options are declared in options.py.

Differences from transformers:
- the unconditional rows share the prompts' forward pass; transformers runs them apart, with their own cache.
- a left-padded negative prompt's positions count only its real tokens; transformers counts the padding too.
"""

import numpy as np

from ..core.checks import check_vocabulary
from ..core.numerics import log_softmax
from ..call.prompts import left_pad, unpad
from ..strategies.run import Run
from .model_scores import ScoreSource


def guided_log_probs(conditional_logits, unconditional_logits, scale: float):
    """log p_u + g * (log p_c - log p_u), with log p = log_softmax(logits). [B, V], [B, V] -> [B, V]"""
    cond, uncond = log_softmax(conditional_logits), log_softmax(unconditional_logits)  # [B, V] each
    return np.float32(scale) * (cond - uncond) + uncond


def unconditional_contexts(run: Run) -> list[list[int]]:
    """The unconditional context of each row of run.ids: the negative prompt of its prompt (an empty one
    becomes [<|endoftext|>]), or, without negative_prompt_ids, the row's last prompt token."""
    B = run.ids.shape[0]
    negatives = run.options.negative_prompt_ids
    if negatives is None:
        return [[int(t)] for t in run.ids[:, -1]]  # left padding: the last column is always a real token
    prompts = B // (run.options.num_return_sequences if run.options.strategy == "sample" else 1)
    if len(negatives) not in (1, prompts):
        raise ValueError(f"negative_prompt_ids holds {len(negatives)} negative prompts for {prompts} prompts; "
                         f"give one negative prompt (a list of ids) for all of them, or one per prompt.")
    per_prompt = list(negatives) * prompts if len(negatives) == 1 else list(negatives)
    contexts = [list(per_prompt[row * prompts // B]) or [run.pad_token_id] for row in range(B)]
    for context in contexts:
        check_vocabulary(context, run.model.config.vocab_size)
    longest = max(len(c) for c in contexts)
    if longest + run.max_new_tokens > run.model.config.n_positions:
        raise ValueError(f"the negative prompt ({longest} tokens) plus max_new_tokens ({run.max_new_tokens}) "
                         f"exceed the model's context of n_positions={run.model.config.n_positions} tokens; "
                         f"shorten the negative prompt.")
    return contexts


class Guided(ScoreSource):
    """Next-token scores under classifier-free guidance, for greedy decoding and sampling.

    The unconditional rows share the batch: rows [0, B) hold the prompts, rows [B, 2B) their unconditional
    contexts, all left-padded to one width, so one forward pass per step over 2B rows serves both. start()
    reads them all; advance(tokens [B]) appends row b's token (a finished row's padding too) to rows b and
    B + b. Each returns (logits [B, V], scores [B, V], state): the conditional logits (the model's own
    distribution, which the trace and the score report), the guided log-probabilities the processor chain
    starts from, and no per-step state.

    Positions count real tokens only, as generate() does for prompts; transformers numbers a left-padded
    negative prompt's positions from the padding on, so per-prompt negative prompts of different lengths
    can continue differently there."""

    def __init__(self, run: Run):
        self.run, self.scale = run, run.options.guidance_scale
        self.B = run.ids.shape[0]
        # rows [0, B) the prompts, rows [B, 2B) their unconditional contexts, all left-padded to one width
        self.ids, self.mask = left_pad(unpad(run.ids, run.mask) + unconditional_contexts(run), run.pad_token_id)
        self.cache = run.model.new_cache(2 * self.B, self.ids.shape[1] + run.max_new_tokens)

    def describe(self) -> str:
        negative = self.run.options.negative_prompt_ids is not None
        return (f"classifier_free_guidance(scale={self.scale!r}, "
                f"unconditional={'negative prompt' if negative else 'last prompt token'!r})")

    def combine(self, logits):
        """logits [2B, V] of both halves -> (conditional logits [B, V], guided scores [B, V], None)."""
        cond, uncond = logits[: self.B], logits[self.B :]
        return cond, guided_log_probs(cond, uncond, self.scale), None

    def start(self):
        return self.combine(self.run.model.prefill(self.ids, self.cache, self.mask))

    def advance(self, tokens):
        both = np.concatenate([tokens, tokens])[:, None]  # [2B, 1] row b's token goes to rows b and B + b
        return self.combine(self.run.model.forward(both, self.cache, last_only=True).logits[:, -1])
