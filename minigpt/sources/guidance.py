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

What this module is not: the strategies (strategies/tokenwise.py: greedy and sampling accept guidance) or
the links (core/links.py, links/).

Differences from transformers:
- the unconditional rows share the prompts' forward pass; transformers runs them apart, with their own cache.
- a left-padded negative prompt's positions count only its real tokens; transformers counts the padding too.
"""

import numpy as np

from ..core.checks import OptionError, check_vocabulary, is_integer
from ..core.link import Option, Trait
from ..core.loop import MAX_NEW_TOKENS
from ..core.model import left_pad, unpad
from ..core.numerics import log_softmax
from ..links.values import is_token_list, refuse
from .model_scores import Batch, ScoreSource


def as_negative_prompts(option: Option, value) -> tuple[tuple[int, ...], ...]:
    """negative_prompt_ids as given (one prompt, a list of ids, for every prompt; or one list of ids per
    prompt) -> a tuple of prompts. ValueError, in one sentence, for anything else."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise refuse(option, value)
    prompts = [value] if is_token_list(value) else list(value)
    if not all(is_token_list(p) and all(is_integer(t) and t >= 0 for t in p) for p in prompts):
        raise refuse(option, value)
    return tuple(tuple(int(t) for t in p) for p in prompts)


GUIDANCE_SCALE = Option("guidance_scale", 1.0, "classifier-free guidance: above 1 follows the prompt (and avoids the "
                        "negative prompt) more closely", "guidance and DoLa", Trait.CHOOSES, low=0, high=1e3,
                        note="(1 is no guidance; the paper uses 1.25 to 3)", metavar="X")
NEGATIVE_PROMPT_IDS = Option("negative_prompt_ids", None, "classifier-free guidance: the text to steer away from "
                             "(default: the prompt's last token)", "guidance and DoLa", Trait.CHOOSES, kind=object,
                             valid="a list of token ids (one negative prompt for every prompt) or a list of such "
                             "lists (one per prompt)", normalise=as_negative_prompts, parse=str, metavar="TEXT",
                             flag_name="--negative-prompt", encode=True)


def guided_log_probs(conditional_logits, unconditional_logits, scale: float):
    """log p_u + g * (log p_c - log p_u), with log p = log_softmax(logits). [B, V], [B, V] -> [B, V]"""
    cond, uncond = log_softmax(conditional_logits), log_softmax(unconditional_logits)  # [B, V] each
    return np.float32(scale) * (cond - uncond) + uncond


def unconditional_contexts(batch: Batch, negatives, copies: int) -> list[list[int]]:
    """The unconditional context of each row of batch.ids, which holds `copies` rows per prompt: the negative
    prompt of its prompt (an empty one becomes [pad]), or, with negatives None, the row's last prompt token."""
    B = batch.ids.shape[0]
    if negatives is None:
        return [[int(t)] for t in batch.ids[:, -1]]  # left padding: the last column is always a real token
    prompts = B // copies
    if len(negatives) not in (1, prompts):
        raise OptionError("{o} holds {n} negative prompts for {prompts} prompts; give one negative prompt (a list of "
                          "ids) for all of them, or one per prompt.", o=NEGATIVE_PROMPT_IDS.said(), n=len(negatives),
                          prompts=prompts)
    per_prompt = list(negatives) * prompts if len(negatives) == 1 else list(negatives)
    contexts = [list(per_prompt[row * prompts // B]) or [batch.pad_token_id] for row in range(B)]
    for context in contexts:
        check_vocabulary(context, batch.model.config.vocab_size)
    longest, n_positions = max(len(c) for c in contexts), batch.model.config.n_positions
    if longest + batch.max_new_tokens > n_positions:
        raise OptionError("the negative prompt ({longest} tokens) plus {most} ({n}) exceed the model's context of "
                          "n_positions={n_positions} tokens; shorten the negative prompt.", longest=longest,
                          most=MAX_NEW_TOKENS.said(), n=batch.max_new_tokens, n_positions=n_positions)
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

    def __init__(self, batch: Batch, scale: float, negatives=None, copies: int = 1):
        self.batch, self.scale, self.negative = batch, scale, negatives is not None
        self.B = batch.ids.shape[0]
        contexts = unpad(batch.ids, batch.mask) + unconditional_contexts(batch, negatives, copies)
        self.ids, self.mask = left_pad(contexts, batch.pad_token_id)  # rows [0, B) the prompts, [B, 2B) the rest
        self.cache = batch.model.new_cache(2 * self.B, self.ids.shape[1] + batch.max_new_tokens)

    def describe(self) -> str:
        return (f"classifier_free_guidance(scale={self.scale!r}, "
                f"unconditional={'negative prompt' if self.negative else 'last prompt token'!r})")

    def combine(self, logits):
        """logits [2B, V] of both halves -> (conditional logits [B, V], guided scores [B, V], None)."""
        cond, uncond = logits[: self.B], logits[self.B :]
        return cond, guided_log_probs(cond, uncond, self.scale), None

    def start(self):
        return self.combine(self.batch.model.prefill(self.ids, self.cache, self.mask))

    def advance(self, tokens):
        both = np.concatenate([tokens, tokens])[:, None]  # [2B, 1] row b's token goes to rows b and B + b
        return self.combine(self.batch.model.forward(both, self.cache, last_only=True).logits[:, -1])
