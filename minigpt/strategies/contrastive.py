"""Contrastive search (Su et al. 2022, "A Contrastive Framework for Neural Text Generation", NeurIPS).

Greedy decoding loops because the most probable next token is often one that repeats what was already
said. Contrastive search looks one token ahead: of the k most probable candidates v, it picks

    argmax_v  (1 - alpha) * p(v | x_<t)  -  alpha * max_j cos(h_v, h_j)
              model confidence              degeneration penalty

where h_v is the final hidden state (after ln_f) the model computes for candidate v, and h_j are those
of every earlier position, prompt included (left padding excluded). A candidate whose representation
is close to something already in the context is penalised, so the text moves on. alpha = 0 is greedy.

Reproduces transformers' `GenerationMixin._contrastive_search` (generate(penalty_alpha=..., top_k=...))
token for token: the processors run on the raw logits, p is softmax(processed logits), ties go to the
lower index, and a finished row keeps being computed, with padding as its next token.

What this module is not: the processors and their order (chain.py) or the other strategies (tokenwise.py,
beam.py, speculative.py).

Differences from transformers:
- the reference is 4.46's, whose repetition penalty also hit a padded row's pad id; 5.x skips it, as we do.
- a banned candidate (p = 0) is never chosen; transformers can pick one when fewer than k tokens are allowed.
- top_k defaults to 4, as in the paper's and transformers' examples; transformers' generate() would use 50.
"""

import numpy as np

from ..core.numerics import largest, log_softmax, softmax
from ..links.chain import check_choosable
from .run import Hypothesis, Outcome, Run, append_token

DEFAULT_TOP_K = 4  # the paper's and transformers' examples use 4 (transformers' generate() would default to 50)


def unit(x):
    """x / |x| over the last axis, so that a dot product is a cosine."""
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def degeneration_penalty(context, context_mask, candidates):
    """max_j cos(h_v, h_j) over the real context positions j, for each candidate v.

    context [B, S, C] unit vectors, context_mask [B, S] (1 real, 0 padding), candidates [B, k, C] unit vectors
    -> [B, k]
    """
    cosine = context @ candidates.swapaxes(1, 2)  # [B, S, C] @ [B, C, k] -> [B, S, k]
    cosine = np.where(context_mask[:, :, None] == 1, cosine, -np.inf)
    return cosine.max(axis=1)  # [B, k]


def contrastive_search(run: Run):
    """Contrastive search for every prompt row; each row gives one sequence.

    Each step costs one forward pass of B * k one-token rows: the cache's rows are repeated k times, each
    copy is fed one candidate, and only the chosen copy is kept. Its logits are the next step's logits, so
    no second pass is needed. A candidate the processors banned (logit -inf) is never chosen. A generator: each
    step yields [(row, Step)] for the rows that chose a token."""
    model, options = run.model, run.options
    k = options.top_k or DEFAULT_TOP_K
    alpha = np.float32(options.penalty_alpha)
    if k > model.config.vocab_size:
        raise ValueError(f"top_k ({k}) exceeds the vocabulary ({model.config.vocab_size} tokens); "
                         f"contrastive search needs that many candidates, so lower top_k.")
    B, T = run.ids.shape
    rows = np.arange(B)
    cache = run.new_cache(B)
    hyps = [Hypothesis(tokens=[], score=0.0, row=row) for row in range(B)]
    done = np.zeros(B, dtype=bool)
    history = run.ids  # [B, t] every token so far, what the processors look at
    prefill = model.forward(run.ids, cache, run.mask)
    logits = prefill.logits[:, -1]  # [B, V] the next token's logits
    context = unit(prefill.hidden)  # [B, T, C] the hidden state of every position so far
    context_mask = run.mask  # [B, T]
    for step in range(run.max_new_tokens):
        model_logprobs, processed = log_softmax(logits), run.chain(logits, history)  # [B, V] each
        check_choosable(run.chain, logits, history, processed, step, rows=np.flatnonzero(~done))
        probs = softmax(processed)  # [B, V]
        candidates = np.stack([largest(row, k) for row in probs])  # [B, k] most probable first, ties by lower id
        confidence = np.take_along_axis(probs, candidates, axis=-1)  # [B, k]

        # Look ahead: every row's cache repeated k times, one candidate fed to each copy.
        cache.reorder(np.repeat(rows, k))  # B -> B*k rows: row b's copies are b*k ... b*k + k-1
        ahead = model.forward(candidates.reshape(B * k, 1), cache)  # logits [B*k, 1, V], hidden [B*k, 1, C]
        candidate_hidden = unit(ahead.hidden.reshape(B, k, -1))  # [B, k, C]

        penalty = degeneration_penalty(context, context_mask, candidate_hidden)  # [B, k]
        score = (1 - alpha) * confidence - alpha * penalty  # [B, k]
        # transformers can choose a banned one (p = 0) when its penalty is the lowest; we never do
        banned = np.take_along_axis(processed, candidates, axis=-1) == -np.inf
        choice = np.where(banned, -np.inf, score).argmax(axis=-1)  # [B] the first of equal maxima
        tokens = candidates[rows, choice]  # [B]

        # Keep only the chosen copy of each row: its cache, hidden state and next-token logits.
        kept = rows * k + choice  # [B]
        cache.reorder(kept)
        logits = ahead.logits[kept, 0]  # [B, V]
        context = np.concatenate([context, candidate_hidden[rows, choice][:, None]], axis=1)  # [B, t+1, C]
        context_mask = np.concatenate([context_mask, np.ones((B, 1), dtype=context_mask.dtype)], axis=1)

        live = np.flatnonzero(~done)
        for row in live:
            done[row] = append_token(run, hyps[row], int(tokens[row]), model_logprobs[row], processed[row])
        yield [(int(row), hyps[row].steps[-1]) for row in live]
        if done.all():
            break
        tokens[done] = run.pad_token_id  # finished rows see padding in their history, as in transformers
        history = np.concatenate([history, tokens[:, None]], axis=1)
    return Outcome([[hyp] for hyp in hyps])
