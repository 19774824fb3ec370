"""Greedy decoding and sampling: one token per row per step, through the KV cache.

    for each step:
        logits, scores = source(tokens so far)            the model's logits (or guidance's, or DoLa's scores)
        processed = chain(scores, history)                 penalties, bans, then (sampling) the warpers
        choice = chain.choose(processed)                   greedy: argmax | sample: a seeded draw | mirostat
        append_token(...); yield                           score, trace, stop; then pause until resumed

The loop of core/loop.py, for a batch of prompts, with any source of scores and the trace. Greedy picks the
most probable token, so the same prompt always gives the same text, which tends to loop. Sampling draws from
the processed distribution with the run's seeded generator: the same seed gives the same text. Both match
transformers' generate() (do_sample False / True): the links see the raw logits, and a finished row is fed
padding until every row is done. The trace and the score keep the model's own distribution, whatever the
chain starts from; Step.state holds what the links decided (mirostat's mu, XTC, dynamic temperature, DoLa's
layer).

What this module is not: the links of the chain (core/, links/) or the sources of scores (sources/).
"""

import numpy as np

from ..core.numerics import log_softmax
from ..links.chain import check_choosable
from ..sources.dola import ContrastingLayers
from ..sources.guidance import Guided
from ..sources.model_scores import ModelScores, ScoreSource
from .run import Hypothesis, Outcome, Run, append_token


def score_source(run: Run) -> ScoreSource:
    """Where the scores come from: guidance (guidance_scale != 1), DoLa (dola_layers) or the model itself."""
    o = run.options
    if o.guidance_scale != 1:
        copies = o.num_return_sequences if run.sampling else 1  # sample's rows hold copies of each prompt
        return Guided(run, o.guidance_scale, o.negative_prompt_ids, copies)
    if o.dola_layers is not None:
        return ContrastingLayers(run, o.dola_layers, o.dola_read_out)
    return ModelScores(run)


def token_by_token(run: Run):
    """Token-by-token decoding, for strategies "greedy" and "sample"; each prompt row gives one sequence.
    A generator: each step yields [(row, Step)] for the rows that chose a token."""
    B = run.ids.shape[0]
    source = score_source(run)
    hyps = [Hypothesis(tokens=[], score=0.0, row=row) for row in range(B)]
    done = np.zeros(B, dtype=bool)
    history = run.ids  # [B, t] every token so far, what the links look at
    logits, scores, state = source.start()  # [B, V] each, and the per-row trace state (or None)
    for step in range(run.max_new_tokens):
        live = np.flatnonzero(~done)
        model_logprobs, processed = log_softmax(logits), run.chain(scores, history)  # [B, V] each
        check_choosable(run.chain, scores, history, processed, step, rows=live)
        forced = {0: run.forced[step]} if step in run.forced else None  # the explorer's click, on the first row
        choice = run.chain.choose(processed, live, forced)  # tokens [B], what they were chosen from, chooser's state
        for row in live:
            traced = {**(state and state[row] or {}), **run.chain.state(row),
                      **{k: v[row].item() for k, v in choice.state.items()}}
            done[row] = append_token(run, hyps[row], int(choice.tokens[row]), model_logprobs[row],
                                     choice.scores[row], traced)
        yield [(int(row), hyps[row].steps[-1]) for row in live]
        tokens = np.where(done, run.pad_token_id, choice.tokens)  # [B] finished rows are fed padding
        if done.all() or step == run.max_new_tokens - 1:
            break
        history = np.concatenate([history, tokens[:, None]], axis=1)
        logits, scores, state = source.advance(tokens)
    return Outcome([[hyp] for hyp in hyps], scores_from=source.describe())
