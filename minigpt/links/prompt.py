"""The links that look back at the prompt alone: transformers' "encoder" penalties, which its generate() applies to
a decoder-only model's prompt (its `encoder_input_ids` are then the prompt's ids).

    encoder_repetition_penalty     x_j * p (x_j / p if negative) for every token of the prompt: p > 1 favours them
    encoder_no_repeat_ngram        ban a token that would repeat an n-gram of the prompt

The prompt of a row is ids[:, :prompt_length] without its left padding (prompt_ignore_length): every strategy's
rows begin with their prompt, so the links need nothing else. Each keeps the contract of core/link.py.

What this module is not: the penalties over the whole text (core/links.py, penalties.py) or the chain's order
(chain.py).

Differences from transformers: it takes the prompts as generate() was given them, left padding included, so a
padded row's pad token (GPT-2's end-of-text) counts as a prompt token; minigpt skips each row's padding, so that a
row's text does not depend on the rows batched with it.
"""

from dataclasses import dataclass

import numpy as np

from ..core.link import NEG_INF, Link, Option, reads
from ..core.links import PENALTY_RANGE, seen_columns
from .values import check_prompt_length

ENCODER_REPETITION_PENALTY = Option("encoder_repetition_penalty", 1.0, "multiply the logit of every token of the "
                                    "prompt by X (divide, if negative): above 1 favours the prompt's tokens",
                                    "penalties", low=PENALTY_RANGE[0], high=PENALTY_RANGE[1],
                                    note="(1 is no penalty)", metavar="X")
ENCODER_NO_REPEAT_NGRAM_SIZE = Option("encoder_no_repeat_ngram_size", 0, "ban any token that would repeat an N-gram "
                                      "of the prompt (0 = off)", "penalties", kind=int, low=0, metavar="N")


def prompt_ids(ids, prompt_length: int, prompt_ignore_length, vocab: int):
    """The prompt of each row, ids[:, :prompt_length] [B, P], with its left padding replaced by `vocab` (an id no
    token has)."""
    skip = np.asarray(0 if prompt_ignore_length is None else prompt_ignore_length).reshape(-1, 1)  # [B or 1, 1]
    prompt = ids[:, :prompt_length]
    return np.where(np.arange(prompt.shape[1]) < skip, vocab, prompt)


@dataclass(repr=False)
class EncoderRepetitionPenalty(Link):
    """For every token of the prompt (once, however often it occurs): x_i / p if x_i < 0, else x_i * p: the
    repetition penalty turned around, so that p > 1 favours what the prompt says (against hallucination in
    summaries). transformers.EncoderRepetitionPenaltyLogitsProcessor, which multiplies by 1/p in float32: so
    does this."""
    name = "encoder_repetition_penalty"
    penalty: float = reads(ENCODER_REPETITION_PENALTY)
    prompt_length: int = 0
    prompt_ignore_length: object = None

    def __post_init__(self):
        super().__post_init__()
        self.prompt_length = check_prompt_length(self.prompt_length)

    def __call__(self, logits, ids):
        vocab = logits.shape[-1]
        inverse = np.float32(1 / self.penalty)
        favoured = np.where(logits < 0, logits * inverse, logits / inverse)
        prompt = prompt_ids(ids, self.prompt_length, self.prompt_ignore_length, vocab)  # [B, P]
        return np.where(seen_columns(prompt, vocab), favoured, logits)


@dataclass(repr=False)
class EncoderNoRepeatNGram(Link):
    """Ban every token that would make the last n tokens of ids an n-gram of the prompt: each window
    prompt[s : s+n] whose first n-1 tokens equal the last n-1 ids bans its last token (n = 1 bans every token of
    the prompt). transformers.EncoderNoRepeatNGramLogitsProcessor: the last n-1 ids may reach into the prompt."""
    name = "encoder_no_repeat_ngram"
    n: int = reads(ENCODER_NO_REPEAT_NGRAM_SIZE)
    prompt_length: int = 0
    prompt_ignore_length: object = None

    def __post_init__(self):
        super().__post_init__()
        self.prompt_length = check_prompt_length(self.prompt_length)
        if self.n < 1:
            raise ENCODER_NO_REPEAT_NGRAM_SIZE.refusal(self.n, "an integer >= 1")

    def __call__(self, logits, ids):
        vocab, t, n = logits.shape[-1], ids.shape[1], self.n
        prompt = prompt_ids(ids, self.prompt_length, self.prompt_ignore_length, vocab)  # [B, P]
        if prompt.shape[1] < n or t < n - 1:
            return logits.copy()
        windows = np.lib.stride_tricks.sliding_window_view(prompt, n, axis=1)  # [B, P-n+1, n]
        suffix = ids[:, t - n + 1 :]  # [B, n-1] what the next token would complete
        completes = (windows[:, :, :-1] == suffix[:, None, :]).all(axis=-1) & (windows < vocab).all(axis=-1)
        banned = np.where(completes, windows[:, :, -1], vocab)  # [B, P-n+1], vocab where nothing is banned
        return np.where(seen_columns(banned, vocab), NEG_INF, logits)
