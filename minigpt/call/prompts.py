"""Prompts as the model reads them: token-id lists checked, fitted to the context, and batched.

    one prompt [T] or a batch -> lists of ids -> (cut to the context, on request) -> left-padded [B, T] + mask

A batch of prompts of different lengths is padded on the LEFT, so that every row's last token sits in
the last column, where the next token is read off; the mask says which slots are real, and the model
numbers each row's positions from its first real token (model.position_ids), as transformers does.

What this module is not: the tokenizer (text -> ids, tokenizer.py) or the forward pass (model.py).
"""

from pathlib import Path

import numpy as np

from ..core.checks import Named, OptionError, check_vocabulary, is_integer, phrase
from ..core.loop import MAX_NEW_TOKENS
from ..links.values import is_token_list

TRUNCATE_PROMPT = Named("truncate_prompt", "--truncate-prompt", True)  # generate()'s argument, as a refusal names it


def as_prompt_batch(prompt_ids, eos_token_id: int) -> list[list[int]]:
    """One prompt (a list of ids) or a batch (a list of lists, or a 2-D array) -> a list of prompts.
    An empty prompt starts from <|endoftext|>, as GPT-2 does for unconditional text."""
    if isinstance(prompt_ids, (str, bytes)):
        raise ValueError("prompt_ids must be token ids, not text; encode the text first: "
                         "minigpt.Tokenizer().encode(text).")
    if isinstance(prompt_ids, np.ndarray) and prompt_ids.ndim not in (1, 2):
        raise ValueError("prompt_ids must be one prompt [T] or a batch [B, T], got an array of shape "
                         f"{prompt_ids.shape}.")
    if not isinstance(prompt_ids, (list, tuple, range, np.ndarray)):
        raise ValueError("prompt_ids must be a list of token ids or a list of such lists, got "
                         f"{type(prompt_ids).__name__}.")
    if len(prompt_ids) == 0:
        return [[eos_token_id]]
    prompts = [prompt_ids] if is_token_list(prompt_ids) else list(prompt_ids)
    if not all(isinstance(p, (list, tuple, range, np.ndarray)) for p in prompts):
        raise ValueError("prompt_ids must hold integer token ids (one list, or a list of lists), got "
                         f"{prompt_ids!r:.80}.")
    return [as_prompt(p, eos_token_id) for p in prompts]


def as_prompt(prompt, eos_token_id: int) -> list[int]:
    """One prompt's ids as Python ints, [<|endoftext|>] for an empty one. The ids' range is checked against
    the model's vocabulary later (fit_context), in the words of model.py."""
    prompt = prompt.tolist() if isinstance(prompt, np.ndarray) else list(prompt)
    if not all(is_integer(t) for t in prompt):
        raise ValueError(f"prompt_ids must hold integer token ids (one list, or a list of lists), got {prompt!r:.80}.")
    return [int(t) for t in prompt] or [eos_token_id]


def fit_context(prompts: list[list[int]], n_positions: int, vocab_size: int, max_new_tokens: int,
                truncate: bool) -> list[list[int]]:
    """Prompts checked against the vocabulary and the context of n_positions tokens, with room for
    max_new_tokens. A prompt too long is refused, or with `truncate` keeps its last n_positions -
    max_new_tokens tokens, the most recent text (only on request: dropping text changes the answer)."""
    for prompt in prompts:
        check_vocabulary(prompt, vocab_size)
    keep = n_positions - max_new_tokens
    if truncate:
        if keep < 1:
            raise OptionError("{most} ({n}) leaves no room for a prompt in the model's context of n_positions="
                              "{n_positions} tokens, even truncated; ask for at most {room} new tokens.",
                              most=MAX_NEW_TOKENS.said(), n=max_new_tokens, n_positions=n_positions,
                              room=n_positions - 1)
        prompts = [p[-keep:] for p in prompts]
    longest = max(len(p) for p in prompts)
    if longest + max_new_tokens > n_positions:
        fix = (phrase("shorten the prompt, ask for fewer tokens, or pass {truncate} to keep only the prompt's last "
                      "{keep} tokens", truncate=TRUNCATE_PROMPT, keep=keep) if keep >= 1 else  # no prompt fits
               phrase("ask for at most {room} new tokens, or shorten the prompt", room=n_positions - longest))
        raise OptionError("the prompt ({longest} tokens) plus {most} ({n}) exceed the model's context of "
                          "n_positions={n_positions} tokens; {fix}.", longest=longest, most=MAX_NEW_TOKENS.said(),
                          n=max_new_tokens, n_positions=n_positions, fix=fix)
    return prompts


def read_text(path, shown: str, fix: str) -> str:
    """A UTF-8 text file's contents, or ValueError: "cannot read <shown>: <why>; <fix>"."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "it is not UTF-8 text"
        raise ValueError(f"cannot read {shown}: {reason}; {fix}") from None
