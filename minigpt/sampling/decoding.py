"""What every decoding strategy shares: the call's context, the hypotheses it returns, the per-step
trace, stop conditions, the draw of a token from a distribution, and the refusal to choose when the
processors left no token at all (check_choosable).

A strategy is a function `strategy(run: Decoding) -> list[list[Hypothesis]]`: for each prompt, its
returned sequences, best first.
"""

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..model import GPT2
from ..tokenizer import Tokenizer
from .options import GenerationOptions
from .processors import LogitsChain, log_softmax


@dataclass
class Step:
    """One generated token, as the trace shows it."""
    token: int
    logprob: float  # log p(token) under the model's raw distribution, before any processor
    candidates: list[tuple[int, float]]  # the final distribution it was chosen from: (id, p), most probable first
    raw_candidates: list[tuple[int, float]] = field(default_factory=list)  # the model's own distribution, before the chain
    state: dict = field(default_factory=dict)  # a stateful processor's state after this step (mirostat's mu), by name


@dataclass
class Hypothesis:
    tokens: list[int]  # new tokens only; ends with end-of-text if that was chosen
    score: float  # greedy, sampling, contrastive, speculative: the sum of the tokens' raw log-probabilities;
                  # beam strategies: the beam score, sum of processed log-probabilities / length ** length_penalty
    finish_reason: str = "length"  # "eos", "stop" (a stop string) or "length"
    steps: list[Step] = field(default_factory=list)


@dataclass
class Decoding:
    """Everything a strategy needs for one generate() call."""
    model: GPT2
    ids: np.ndarray  # [B, T] the prompts, padded on the left with the pad id
    mask: np.ndarray  # [B, T] 1 for a real token, 0 for padding
    options: GenerationOptions
    chain: LogitsChain  # the logit processors for the rows of `ids`
    eos_token_id: int
    pad_token_id: int
    rng: np.random.Generator
    trace_top: int = 10
    chain_for_copies: Callable[[int], LogitsChain] | None = None  # the chain for rows holding n copies of each prompt (beams)
    on_token: Callable[[int, int], None] | None = None  # (row, token) as soon as a token is chosen
    stop: "StopStrings | None" = None
    stats: dict = field(default_factory=dict)  # strategy-specific figures (speculative: acceptance rate)
    # For GenerationOutput.chain, set by the strategy: what the chain starts from when not the model's logits
    # (guidance, DoLa), and what draws the token after it when not the plain draw (mirostat).
    scores_from: str = ""
    drawn_by: str = ""
    record: list | None = None  # beam search appends a BeamEvent for every candidate it weighs (inspection.beam_tree)

    @property
    def max_new_tokens(self) -> int:
        return self.options.max_new_tokens

    def new_cache(self, batch_size: int):
        return self.model.new_cache(batch_size, self.ids.shape[1] + self.max_new_tokens)


def largest(scores, n: int) -> np.ndarray:
    """Indices of the n largest of scores [N], largest first, equal scores by lower index. A few are
    picked by repeated argmax (each pass ~50x cheaper than a selection over 50257 entries); many by
    one selection (argpartition) and a sort of the n chosen."""
    n = min(n, scores.size)
    if n > 32:
        nth = np.partition(scores, scores.size - n)[scores.size - n]  # the n-th largest value
        above = np.flatnonzero(scores > nth)
        best = np.concatenate([above, np.flatnonzero(scores == nth)[: n - above.size]])  # ties at nth: lower ids
        return best[np.lexsort((best, -scores[best]))]
    rest = scores.copy()
    best = np.empty(n, dtype=np.int64)
    for j in range(n):
        best[j] = rest.argmax()  # the first of equal maxima
        rest[best[j]] = -np.inf
    return best


def top_candidates(scores, top: int, log_total: float = 0.0) -> list[tuple[int, float]]:
    """The `top` most probable tokens of the distribution p = exp(scores - log_total) over [V], as (id, p),
    most probable first (ties by id), zero-probability ones left out. Only the chosen are exponentiated."""
    if top <= 0:
        return []
    best = largest(scores, top)
    probs = np.exp(scores[best] - log_total)
    return [(int(i), float(p)) for i, p in zip(best, probs) if p > 0]


def log_normalizer(logits) -> float:
    """log sum_i exp(logits_i) over [V]: softmax(logits) = exp(logits - log_normalizer(logits))."""
    m = float(logits.max())
    return m if m == -np.inf else m + float(np.log(np.exp(logits - m).sum()))


def trace_step(token: int, raw_logprobs, final_logits, top: int) -> Step:
    """A Step for `token`: raw_logprobs [V] (log-softmax of the model's logits), final_logits [V]
    (after every processor); the top candidates before the chain (exp(raw_logprobs)) and after it
    (softmax(final_logits))."""
    step = Step(token=int(token), logprob=float(raw_logprobs[token]), candidates=[])
    if top > 0:
        step.raw_candidates = top_candidates(raw_logprobs, top)
        log_total = log_normalizer(final_logits)
        if log_total > -np.inf:  # every token masked: nothing to show
            step.candidates = top_candidates(final_logits, top, log_total)
    return step


def emit(run: Decoding, hyp: Hypothesis, row: int, token: int, raw_logprobs, final_logits, state: dict | None = None) -> bool:
    """Append a chosen token to a row's hypothesis: its score, its trace step (with `state`, if given,
    in Step.state), the stream. True when the token ends the sequence (end-of-text, or a stop string now in the text)."""
    hyp.tokens.append(token)
    hyp.score += float(raw_logprobs[token])
    hyp.steps.append(trace_step(token, raw_logprobs, final_logits, run.trace_top))
    if state:
        hyp.steps[-1].state.update(state)
    if run.on_token:
        run.on_token(row, token)
    if token == run.eos_token_id:
        hyp.finish_reason = "eos"
    elif run.stop and run.stop.add(row, token):
        hyp.finish_reason = "stop"
    return hyp.finish_reason != "length"


def draw(probs, rng: np.random.Generator) -> int:
    """Inverse-CDF sampling: u ~ U[0, 1), the first token whose cumulative probability exceeds u * total.

    Computed in float64 from one uniform number per draw, so the same seed gives the same token on any
    machine; a token of probability 0 is never drawn.
    """
    cdf = np.cumsum(probs, dtype=np.float64)  # [V]
    if not cdf[-1] > 0:  # the strategies check for this first (check_choosable), with a better message
        raise ValueError("cannot draw a token from a distribution in which every token has probability 0.")
    u = rng.random() * cdf[-1]
    return int(min(np.searchsorted(cdf, u, side="right"), np.flatnonzero(probs)[-1]))


class StopStrings:
    """Stop a row once its generated text contains one of the stop strings, even when the string
    spans several tokens. The returned text ends before the stop string."""

    def __init__(self, stops, tokenizer: Tokenizer, batch_size: int):
        self.stops = tuple(stops)
        self.tokenizer = tokenizer
        self.generated = [bytearray() for _ in range(batch_size)]

    def add(self, row: int, token: int) -> bool:
        """Record a new token of `row`; True if its text now holds a stop string."""
        if token < self.tokenizer.n_vocab:
            self.generated[row] += self.tokenizer.token_bytes(token)
        text = self.generated[row].decode("utf-8", errors="replace")
        return any(s in text for s in self.stops)

    def cut(self, text: str) -> str:
        """The text before the first stop string in it."""
        ends = [text.find(s) for s in self.stops if s in text]
        return text[: min(ends)] if ends else text


def raw_and_processed(run: Decoding, logits, history):
    """The model's log-probabilities [B, V] and the chain's output on the raw logits [B, V]."""
    return log_softmax(logits), run.chain(logits, history)


# What to loosen when the processors named here leave no token to choose.
LOOSEN = {"suppress_tokens": "suppress fewer tokens", "logit_bias": "give fewer tokens a -inf logit_bias",
          "bad_words": "ban fewer bad words", "no_repeat_ngram": "raise no_repeat_ngram_size",
          "min_new_tokens": "lower min_new_tokens"}


def check_choosable(chain: LogitsChain, logits, history, processed, step: int, rows=None, nothing_left=None):
    """Refuse to choose from processed logits [B, V] (= chain(logits, history)) when, for one of `rows`
    (default: every row), nothing is left to choose: every logit is -inf, or one is NaN.

    nothing_left [B] bool overrides "every logit is -inf" (beam search: every candidate of a prompt).
    Raises ValueError naming the step (1 = the first new token) and the processors that masked the tokens.
    """
    rows = np.arange(processed.shape[0]) if rows is None else np.asarray(rows)
    if rows.size == 0:
        return
    if np.isnan(processed[rows]).any():
        raise ValueError(f"the logits at step {step + 1} hold NaN, so no token can be chosen; the model's weights "
                         f"are probably not finite numbers: check (or re-download) the checkpoint.")
    empty = ~np.isfinite(processed[rows]).any(axis=-1) if nothing_left is None else nothing_left[rows]
    if empty.any():
        names = chain.masked_by(logits, history, rows[empty])
        fixes = [LOOSEN[name] for name in names if name in LOOSEN] or ["loosen them"]
        raise ValueError(f"every token was masked at step {step + 1} by the logit processors "
                         f"({', '.join(names) or ', '.join(p.name for p in chain.processors)}), so there is nothing "
                         f"left to choose; {' or '.join(fixes)} so that at least one token stays allowed.")


__all__ = ["Step", "Hypothesis", "Decoding", "largest", "top_candidates", "log_normalizer", "trace_step", "emit", "draw", "StopStrings", "raw_and_processed",
           "check_choosable"]
