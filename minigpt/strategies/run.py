"""One generate() call as the strategies see it: its context (`Run`), what it returns (`Hypothesis`,
`Outcome`), the per-step trace (`Step`) and the stop strings.

A strategy is a generator `strategy(run: Run)`: each time it is resumed it takes one decoding step (one pass
of the model), yields the tokens that step chose as (row, Step) pairs, and pauses, holding its KV cache, its
chain and its seeded generator; it returns an Outcome, each prompt row's sequences, best first. Each chosen
token goes through `append_token`, which scores it, traces it and says whether its sequence has ended
(end-of-text, or a stop string in the text).

What this module is not: the strategies themselves (tokenwise.py, beam.py, contrastive.py, speculative.py)
or where their next-token scores come from (sources/).
"""

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..core.chain import Chain
from ..core.checks import Named, chance
from ..core.model import GPT2
from ..core.numerics import largest
from ..core.tokenizer import Tokenizer
from ..sources.model_scores import Batch
from .options import GenerationOptions

TRACE_TOP = Named("trace_top", "--trace-top")  # generate()'s argument: how many candidates each step keeps


@dataclass(frozen=True, slots=True)
class Candidate:
    """A token a step could have chosen: its id, its probability, and its text ("" without a tokenizer, or for
    an id beyond its vocabulary; a token holding part of a UTF-8 character shows U+FFFD)."""
    id: int
    p: float
    text: str = ""

    def __repr__(self) -> str:
        return f"Candidate({self.id} {self.text!r} p={chance(self.p)})"


def state_text(state: dict) -> str:
    """What the links decided at a step, as a line says it: "mirostat_mu=3.125, xtc_excluded=2"."""
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in state.items())


@dataclass(repr=False)
class Step:
    """One generated token, as the trace shows it."""
    token: int
    logprob: float  # log p(token) under the model's own distribution, before the chain
    candidates: list[Candidate]  # after the chain, most probable first: what it was chosen from
    raw_candidates: list[Candidate] = field(default_factory=list)  # before the chain: the model's own
    survivors: int = 0  # how many tokens have probability > 0 after the chain: the ones the token could be
    shown_mass: float = 0.0  # the probability after the chain of the tokens in `candidates`, together
    raw_shown_mass: float = 0.0  # the model's own probability of the tokens in `raw_candidates`, together
    state: dict = field(default_factory=dict)  # what a stateful link decided at this step (mirostat's mu), by name
    text: str = ""  # the chosen token's text, as Candidate.text

    def __repr__(self) -> str:
        top = f", top after the chain {self.candidates[0].text!r} {chance(self.candidates[0].p)}" if self.candidates else ""
        state = f", {state_text(self.state)}" if self.state else ""
        return (f"Step({self.token} {self.text!r} logprob={self.logprob:.4f}, {self.survivors:,} survivors, "
                f"{len(self.raw_candidates)}/{len(self.candidates)} candidates before/after the chain{top}{state})")


@dataclass
class Hypothesis:
    tokens: list[int]  # new tokens only; ends with end-of-text if that was chosen
    # greedy, sampling, contrastive, speculative: the sum of the tokens' log-probabilities under the model;
    # beam strategies: the beam score, the sum of processed log-probabilities / length ** length_penalty
    score: float
    finish_reason: str = "length"  # "eos", "stop" (a stop string) or "length"
    steps: list[Step] = field(default_factory=list)
    row: int = 0  # the batch row it continues


@dataclass
class Outcome:
    """What a strategy returns."""
    hypotheses: list[list[Hypothesis]]  # for each prompt row, its returned sequences, best first
    scores_from: str = ""  # what the chain started from when not the model's logits (guidance, DoLa)
    stats: dict = field(default_factory=dict)  # strategy-specific figures (speculative: acceptance rate)
    beam_events: list = field(default_factory=list)  # beam search: every candidate it weighed (beam.BeamEvent)


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


@dataclass
class Run(Batch):
    """Everything a strategy needs for one generate() call: the batch (the model, the left-padded prompts, how
    many tokens may follow), the options, the chain built for the batch's rows, and the run's seeded generator."""
    options: GenerationOptions
    chain: Chain  # the chain for the rows of `ids`, its chooser last
    eos_token_id: int
    rng: np.random.Generator  # every random draw of the run (tokens, XTC): a seed reproduces the text
    sampling: bool = False  # whether the strategy draws its tokens (the warpers are then in the chain)
    trace_top: int = 10
    chain_for_copies: Callable[[int], Chain] | None = None  # the chain for rows holding n copies of each prompt
    stop: StopStrings | None = None
    tokenizer: Tokenizer | None = None  # gives the trace's tokens their text
    draft: GPT2 | None = None  # speculative decoding's draft model, loaded before the run
    forced: dict[int, int] = field(default_factory=dict)  # greedy, sample: {step: token} the first row must take


def log_normalizer(logits) -> float:
    """log sum_i exp(logits_i) over [V]: softmax(logits) = exp(logits - log_normalizer(logits))."""
    m = float(logits.max())
    return m if m == -np.inf else m + float(np.log(np.exp(logits - m).sum()))


def token_text(tokenizer: Tokenizer | None, token: int) -> str:
    """A token's text for the trace: its bytes decoded (U+FFFD for part of a character); "" without a
    tokenizer or beyond its vocabulary."""
    if tokenizer is None or not 0 <= token < tokenizer.n_vocab:
        return ""
    return tokenizer.token_texts[token]


def top_candidates(scores, top: int, log_total: float = 0.0, tokenizer: Tokenizer | None = None) -> list[Candidate]:
    """The `top` most probable tokens of the distribution p = exp(scores - log_total) over [V], most probable
    first (ties by id), zero-probability ones left out. Only the chosen are exponentiated."""
    if top <= 0:
        return []
    best = largest(scores, top)
    probs = np.exp(scores[best] - log_total)
    return [Candidate(int(i), float(p), token_text(tokenizer, int(i))) for i, p in zip(best, probs) if p > 0]


def trace_step(token: int, model_logprobs, processed, top: int, tokenizer: Tokenizer | None = None) -> Step:
    """A Step for `token`: model_logprobs [V] (log-softmax of the model's logits), processed [V] (after the
    chain); the top candidates before the chain (exp(model_logprobs)) and after it (softmax(processed)),
    the probability they hold, and how many tokens survive the chain (one count over V, no sort)."""
    step = Step(token=int(token), logprob=float(model_logprobs[token]), candidates=[],
                text=token_text(tokenizer, int(token)))
    log_total = log_normalizer(processed)
    if log_total > -np.inf:  # else every token is masked: nothing survives
        step.survivors = int(np.count_nonzero(np.exp(processed - log_total) > 0))  # p > 0, as top_candidates has it
    if top > 0:
        step.raw_candidates = top_candidates(model_logprobs, top, tokenizer=tokenizer)
        step.raw_shown_mass = sum(c.p for c in step.raw_candidates)
        if log_total > -np.inf:
            step.candidates = top_candidates(processed, top, log_total, tokenizer)
            step.shown_mass = sum(c.p for c in step.candidates)
    return step


def append_token(run: Run, hyp: Hypothesis, token: int, model_logprobs, processed, state=None) -> bool:
    """Append a chosen token to a row's hypothesis: add its log-probability to the score, trace it (with
    `state`, if given, in Step.state). True when the token ends the sequence: end-of-text, or a stop string
    now in the text (of the row that hyp.row names)."""
    hyp.tokens.append(token)
    hyp.score += float(model_logprobs[token])
    hyp.steps.append(trace_step(token, model_logprobs, processed, run.trace_top, run.tokenizer))
    if state:
        hyp.steps[-1].state.update(state)
    if token == run.eos_token_id:
        hyp.finish_reason = "eos"
    elif run.stop and run.stop.add(hyp.row, token):
        hyp.finish_reason = "stop"
    return hyp.finish_reason != "length"
