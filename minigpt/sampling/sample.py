"""Greedy decoding and multinomial sampling: one token per row per step, through the KV cache.

    logits -> processors -> greedy: argmax_i   |   sampling: i ~ softmax(processed logits)

Greedy picks the most probable token, so the same prompt always gives the same text, which tends to
loop. Sampling draws from the (processed) distribution with a seeded numpy Generator: the same seed
gives the same text. Both match transformers' generate() (do_sample False / True): the processors see
the raw logits, and a finished row is fed padding until every row is done.

The chain starts from the model's logits, or from what classifier-free guidance (guidance.py) or DoLa
(dola.py) make of them (next_token_scores); the trace and the score keep the model's own distribution.
With mirostat on (mirostat.py), its truncation by the running mu and its draw replace the plain draw;
the trace shows what it truncated to, and mu and the surprise per step (Step.state), as it shows what
XTC and dynamic temperature decided.
"""

import numpy as np

from .decoding import Decoding, Hypothesis, check_choosable, draw, emit
from .dola import ContrastingLayers
from .guidance import Guided
from .mirostat import Mirostat
from .processors import log_softmax, softmax


class ModelLogits:
    """The model's own next-token logits, what the chain starts from unless classifier-free guidance
    (guidance.py) or DoLa (dola.py) replace them. start() reads the prompts, advance(tokens [B]) one more
    token per row; each returns (logits [B, V], scores [B, V], state): the model's logits (which the trace
    and the score report), the scores the processor chain starts from (here the same), per-row trace state."""

    def __init__(self, run: Decoding):
        self.run, self.cache = run, run.new_cache(run.ids.shape[0])

    def describe(self) -> str:
        return ""  # nothing to list before the chain

    def start(self):
        logits = self.run.model.forward(self.run.ids, self.cache, self.run.mask, last_only=True).logits[:, -1]  # [B, V]
        return logits, logits, None

    def advance(self, tokens):
        logits = self.run.model.forward(tokens[:, None], self.cache, last_only=True).logits[:, -1]  # [B, V]
        return logits, logits, None


def next_token_scores(run: Decoding):
    """Where the scores come from: guidance (guidance_scale != 1), DoLa (dola_layers) or the model itself."""
    if run.options.guidance_scale != 1:
        return Guided(run)
    if run.options.dola_layers is not None:
        return ContrastingLayers(run)
    return ModelLogits(run)


def choose(run: Decoding, processed) -> np.ndarray:
    """The next token of each row [B] from its processed logits [B, V]. A finished row (fed padding)
    may have every token masked; it gets the pad token, as it would anyway."""
    if not run.options.sampling:
        return processed.argmax(axis=-1)  # the first of equal maxima, as torch.argmax
    probs = softmax(processed)  # [B, V]
    return np.array([draw(p, run.rng) if p.any() else run.pad_token_id for p in probs])


def greedy_or_sample(run: Decoding) -> list[list[Hypothesis]]:
    """Token-by-token decoding, for strategies "greedy" and "sample"; each prompt row gives one sequence."""
    B, T = run.ids.shape
    source = next_token_scores(run)
    run.scores_from = source.describe()
    hyps = [Hypothesis(tokens=[], score=0.0) for _ in range(B)]
    done = np.zeros(B, dtype=bool)
    opts = run.options  # mirostat, when on, takes the place of the final draw
    mirostat = opts.mirostat and Mirostat(opts.mirostat, opts.mirostat_tau, opts.mirostat_eta, run.model.config.vocab_size, B)
    run.drawn_by = repr(mirostat) if mirostat else ""
    history = run.ids  # [B, t] every token so far, what the processors look at
    logits, scores, state = source.start()  # [B, V] each, and the per-row trace state (or None)
    for step in range(run.max_new_tokens):
        raw, processed = log_softmax(logits), run.chain(scores, history)  # [B, V] each
        check_choosable(run.chain, scores, history, processed, step, rows=np.flatnonzero(~done))
        chosen = {}  # name -> [B]: what the final draw decided, for the trace
        if mirostat:
            tokens, processed, chosen = mirostat.choose(processed, run.rng, rows=np.flatnonzero(~done))  # [B], [B, V]
        else:
            tokens = choose(run, processed)  # [B]
        for row in np.flatnonzero(~done):
            traced = {**(state and state[row] or {}), **run.chain.state(row), **{k: v[row].item() for k, v in chosen.items()}}
            done[row] = emit(run, hyps[row], int(row), int(tokens[row]), raw[row], processed[row], traced)
        tokens[done] = run.pad_token_id  # finished rows are fed padding
        if done.all() or step == run.max_new_tokens - 1:
            break
        history = np.concatenate([history, tokens[:, None]], axis=1)
        logits, scores, state = source.advance(tokens)
    return [[hyp] for hyp in hyps]
