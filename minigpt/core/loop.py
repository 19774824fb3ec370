"""The decoding loop, plain: one prompt, one new token at a time, through the KV cache.

    logits = model(prompt)                 the prompt's one forward pass fills the cache: [1, V] for what comes next
    repeat:
        scores = chain(logits, ids)        the links: the penalties, then temperature and the cut-offs
        token = chain.choose(scores)       greedy argmax, or a draw with the chain's seeded generator
        yield token                        the caller may stop here, and continue later
        logits = model(token)              one position more, attending to everything in the cache

It is a generator: it pauses after each token, holding its cache, its chain's state and its generator, and
goes on where it stopped when asked for the next one. Stepping it n times gives the tokens that generate()
gives with the same chain (tests/core/test_loop.py checks greedy and seeded sampling): generate() adds batches
of prompts, other sources of scores, the other strategies, the trace and stop strings (strategies/).

What this module is not: the links (links.py), the chain (chain.py) or the forward pass (model.py).
"""

from collections.abc import Iterator

import numpy as np

from .chain import Chain
from .link import Option
from .model import GPT2

MAX_NEW_TOKENS = Option("max_new_tokens", 20, "how many tokens to generate at most", "output", kind=int, low=0,
                        metavar="N")


def decode(model: GPT2, prompt_ids: list[int], chain: Chain, max_new_tokens: int) -> Iterator[int]:
    """The tokens after prompt_ids [T] (at least one id), chosen by `chain`, until end-of-text (the last one
    yielded) or max_new_tokens."""
    ids = np.array([prompt_ids], dtype=np.int64)  # [1, T] every token so far: what the links look at
    cache = model.new_cache(1, ids.shape[1] + max_new_tokens)
    logits = model.prefill(ids, cache)  # [1, V] the next token's logits
    for _ in range(max_new_tokens):
        token = chain.choose(chain(logits, ids)).tokens  # [1]
        yield int(token[0])
        if token[0] == model.config.eos_token_id:
            return
        ids = np.concatenate([ids, token[:, None]], axis=1)  # [1, t + 1]
        logits = model.forward(token[:, None], cache, last_only=True).logits[:, -1]  # [1, V]
