"""Greedy decoding and sampling: one token per row per step, through the KV cache.

    for each step:
        scores = source(tokens so far)                     the model's logits (or guidance's, or DoLa's)
        processed = chain(scores, history)                 penalties, bans, then (sampling) the warpers
        token = chooser(processed)                         greedy: argmax | sample: a seeded draw | mirostat
        append_token(...)                                  score, trace, stream, stop

Greedy picks the most probable token, so the same prompt always gives the same text, which tends to
loop. Sampling draws from the processed distribution with the run's seeded generator: the same seed gives
the same text. Both match transformers' generate() (do_sample False / True): the processors see the raw
logits, and a finished row is fed padding until every row is done. The trace and the score keep the
model's own distribution, whatever the chain starts from; Step.state holds what the links decided
(mirostat's mu, XTC, dynamic temperature, DoLa's layer).

What this module is not: the links of the chain (chain.py) or the sources of scores (scores.py,
guidance.py, dola.py).
"""

import numpy as np

from ..call import memory
from ..core.config import GPTConfig
from ..call.memory import Footprint
from ..core.numerics import log_softmax
from ..links.chain import check_choosable
from ..sources.dola import ContrastingLayers
from ..sources.guidance import Guided
from .options import GenerationOptions
from .run import Hypothesis, Outcome, Run, append_token
from ..sources.model_scores import ModelScores, ScoreSource


LIVE_ARRAYS = 7  # [B, V] at once in a step: logits, log-softmax (and its temporary), the chain's output and the
                 # array it works on, the chooser's probabilities and their running sum


def peak_memory(options: GenerationOptions, config: GPTConfig, prompts: int, prompt_length: int,
                trace_top: int) -> Footprint:
    """One row per returned sequence (twice that under guidance: its unconditional rows); DoLa keeps every
    layer of the prompt's pass, the others run it in pieces (model.prefill)."""
    rows = prompts * (options.num_return_sequences if options.strategy == "sample" else 1)
    rows *= 2 if options.guidance_scale != 1 else 1
    return memory.generation(config, rows, prompt_length, options.max_new_tokens, LIVE_ARRAYS, trace_top,
                             every_layer=options.dola_layers is not None,
                             lower_rows="num_return_sequences" if options.strategy == "sample" else "")


def score_source(run: Run) -> ScoreSource:
    """Where the scores come from: guidance (guidance_scale != 1), DoLa (dola_layers) or the model itself."""
    if run.options.guidance_scale != 1:
        return Guided(run)
    if run.options.dola_layers is not None:
        return ContrastingLayers(run)
    return ModelScores(run)


def token_by_token(run: Run) -> Outcome:
    """Token-by-token decoding, for strategies "greedy" and "sample"; each prompt row gives one sequence."""
    B = run.ids.shape[0]
    source, chooser = score_source(run), run.chain.chooser
    hyps = [Hypothesis(tokens=[], score=0.0) for _ in range(B)]
    done = np.zeros(B, dtype=bool)
    history = run.ids  # [B, t] every token so far, what the processors look at
    logits, scores, state = source.start()  # [B, V] each, and the per-row trace state (or None)
    for step in range(run.max_new_tokens):
        live = np.flatnonzero(~done)
        model_logprobs, processed = log_softmax(logits), run.chain(scores, history)  # [B, V] each
        check_choosable(run.chain, scores, history, processed, step, rows=live)
        processed = chooser.narrow(processed)  # [B, V] what the choice is made from (mirostat truncates)
        tokens = chooser.choose(processed, live)  # [B]
        decided = chooser.accept(processed, tokens, live)  # {name: [B]} (mirostat: mu and the surprise)
        for row in live:
            traced = {**(state and state[row] or {}), **run.chain.state(row),
                      **{k: v[row].item() for k, v in decided.items()}}
            done[row] = append_token(run, hyps[row], int(row), int(tokens[row]), model_logprobs[row],
                                     processed[row], traced)
        tokens[done] = run.pad_token_id  # finished rows are fed padding
        if done.all() or step == run.max_new_tokens - 1:
            break
        history = np.concatenate([history, tokens[:, None]], axis=1)
        logits, scores, state = source.advance(tokens)
    return Outcome([[hyp] for hyp in hyps], scores_from=source.describe())
