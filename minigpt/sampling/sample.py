"""Greedy decoding and multinomial sampling: one token per row per step, through the KV cache.

    logits -> processors -> greedy: argmax_i   |   sampling: i ~ softmax(processed logits)

Greedy picks the most probable token, so the same prompt always gives the same text, which tends to
loop. Sampling draws from the (processed) distribution with a seeded numpy Generator: the same seed
gives the same text. Both match transformers' generate() (do_sample False / True): the processors see
the raw logits, and a finished row is fed padding until every row is done.
"""

import numpy as np

from .decoding import Decoding, Hypothesis, check_choosable, draw, emit, raw_and_processed
from .processors import softmax


def choose(run: Decoding, processed) -> np.ndarray:
    """The next token of each row [B] from its processed logits [B, V]. A finished row (fed padding)
    may have every token masked; it gets the pad token, as it would anyway."""
    if not run.options.sampling:
        return processed.argmax(axis=-1)  # the first of equal maxima, as torch.argmax
    probs = softmax(processed)  # [B, V]
    return np.array([draw(p, run.rng) if p.any() else run.pad_token_id for p in probs])


def greedy_or_sample(run: Decoding) -> list[list[Hypothesis]]:
    """Token-by-token decoding, for strategies "greedy" and "sample"; each prompt row gives one sequence."""
    model = run.model
    B, T = run.ids.shape
    cache = run.new_cache(B)
    hyps = [Hypothesis(tokens=[], score=0.0) for _ in range(B)]
    done = np.zeros(B, dtype=bool)
    history = run.ids  # [B, t] every token so far, what the processors look at
    logits = model.forward(run.ids, cache, run.mask, last_only=True).logits[:, -1]  # [B, V]
    for step in range(run.max_new_tokens):
        raw, processed = raw_and_processed(run, logits, history)  # [B, V] each
        check_choosable(run.chain, logits, history, processed, step, rows=np.flatnonzero(~done))
        tokens = choose(run, processed)  # [B]
        for row in np.flatnonzero(~done):
            done[row] = emit(run, hyps[row], int(row), int(tokens[row]), raw[row], processed[row])
        tokens[done] = run.pad_token_id  # finished rows are fed padding
        if done.all() or step == run.max_new_tokens - 1:
            break
        history = np.concatenate([history, tokens[:, None]], axis=1)
        logits = model.forward(tokens[:, None], cache, last_only=True).logits[:, -1]
    return [[hyp] for hyp in hyps]
