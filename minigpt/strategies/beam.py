"""Beam search, beam sampling and diverse beam search: keep the num_beams best partial sequences
(Graves 2012, "Sequence Transduction with Recurrent Neural Networks"; Sutskever, Vinyals & Le 2014,
"Sequence to Sequence Learning with Neural Networks").

    every beam's log p(next token | beam)  ->  processors  ->  + the beam's running score
    -> 2 * num_beams candidates over all beams and tokens  ->  the best num_beams that do not end
       go on; those ending in end-of-text (and ranked within num_beams) are finished hypotheses
    score(y) = sum_t log p'(y_t | y_<t) / n ** length_penalty     y finished, p' processed, n = len(y)

length_penalty > 0 favours longer sequences, < 0 shorter ones (Wu et al. 2016, "Google's Neural Machine
Translation System", section 7); cannot_improve decides when to stop. Strategies (run.options.strategy):
- "beam": the candidates are the 2 * num_beams best; matches transformers' `_beam_search`.
- "beam-sample": they are drawn without replacement from softmax(running score + processed log-probs)
  after the sampling warpers (sampled_candidates); transformers' do_sample=True with num_beams > 1.
- "diverse-beam": num_beam_groups groups in turn, each penalised for the tokens earlier groups chose
  (hamming_diversity; Vijayakumar et al. 2016, "Diverse Beam Search"); transformers' `_group_beam_search`.

What this module is not: the processors and their order (chain.py) or the option checks (options.py).

Differences from transformers:
- "diverse-beam" follows 4.46's `_group_beam_search` (5.x has none), the others 5.x's: uses_446_beam_scorer.
- "beam-sample" with num_beams = 1 is still a one-beam search, where transformers samples plainly.
"""

from dataclasses import dataclass, field

import numpy as np

from ..core.chain import Chain
from ..core.numerics import largest, log_softmax
from ..links.chain import check_choosable
from .run import Hypothesis, Outcome, Run, Step, trace_step

# Shapes: B prompts, K num_beams, G num_beam_groups, S = K / G beams per group, V vocabulary, t tokens so far.

# The initial score of every beam but the first of a group: all beams start as copies of the prompt, so
# the first step must take its candidates from one of them, or every beam would pick the same token.
NOT_STARTED = np.float32(-1e9)


@dataclass
class BeamEvent:
    """One candidate the search weighed: beam `parent` (its new tokens) extended by `token`.

    One is kept for every one of a step's 2S best candidates, saying whether it runs on, finishes or is
    pruned; the outcome returns them (Outcome.beam_events), from which inspection/beam_tree.py builds the
    search tree."""
    step: int  # 0 = the first new token
    prompt: int
    group: int
    parent: tuple[int, ...]  # the new tokens of the beam it extends
    token: int
    logprob: float  # log p(token) under the model's model_logprobs distribution
    # the candidate's beam score: its running sum of processed log-probs ("finished": / length ** alpha)
    score: float
    outcome: str  # "running": a next beam; "finished": a hypothesis (end-of-text, or the last step); "pruned"


@dataclass
class Beam:
    """A running beam: its new tokens and their trace."""
    tokens: list[int] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)


class FinishedHypotheses:
    """The best `size` finished hypotheses of one prompt (of one group: size = num_beams / num_beam_groups),
    as transformers' BeamHypotheses. A new one enters if there is room or it beats the worst, which then leaves.
    """

    def __init__(self, size: int, length_penalty: float):
        self.size, self.length_penalty = size, length_penalty
        self.hyps: list[Hypothesis] = []
        self.done = False

    @property
    def full(self) -> bool:
        return len(self.hyps) >= self.size

    @property
    def worst(self) -> float:
        return min(h.score for h in self.hyps)

    def add(self, sum_logprobs: float, beam: Beam, reason: str) -> float | None:
        """Score sum_logprobs / n ** length_penalty, n = len(beam.tokens) (end-of-text included): Wu et al.'s
        length normalisation in the simple form transformers uses; the score is transformers' sequences_scores.
        Returns that score if the hypothesis entered, None if it was not good enough."""
        score = sum_logprobs / len(beam.tokens) ** self.length_penalty
        if not self.full or score > self.worst:
            self.hyps.append(Hypothesis(tokens=beam.tokens, score=score, finish_reason=reason, steps=beam.steps))
            if len(self.hyps) > self.size:
                self.hyps.remove(min(self.hyps, key=lambda h: h.score))
            return score
        return None


def uses_446_beam_scorer(run: Run) -> bool:
    """Diverse beam search (its groups) follows transformers 4.46's BeamSearchScorer, the others 5.x's _beam_search.

    They differ in two corners. The early_stopping rule: 4.46 compares the worst finished hypothesis
    with the step's best candidate, 5.x with the best beam still running. The last step: 5.x finishes
    the best num_beams candidates together, while 4.46 first finishes those ending in end-of-text, and
    if that makes the group done (early_stopping=True and num_beams finished) it drops the running ones.
    """
    return run.options.num_beam_groups > 1


def cannot_improve(finished: FinishedHypotheses, best_running: float, generated: int, run: Run) -> bool:
    """The early_stopping rule: True once no running beam is expected to beat the worst finished one.

    False until `finished` is full. Then early_stopping=True stops at once; False stops when best_running
    (the best running score), scored at `generated` tokens, cannot beat the worst finished hypothesis;
    "never" is the same, but with a positive length_penalty it scores best_running at max_new_tokens (the
    longest it can grow, hence its best score). At max_new_tokens the running beams are finished anyway.
    """
    early_stopping, alpha = run.options.early_stopping, run.options.length_penalty
    if not finished.full:
        return False
    if early_stopping is True:
        return True
    length = run.max_new_tokens if early_stopping == "never" and alpha > 0 else generated
    return finished.worst >= best_running / length**alpha


# ----------------------------------------------------------------------------- candidates


def best_candidates(scores, n: int, rng) -> np.ndarray:
    """The n highest of scores [S*V], best first (equal scores: lower index first). rng is unused: the
    signature is sampled_candidates'."""
    return largest(scores, n)


def sampled_candidates(scores, n: int, rng) -> np.ndarray:
    """n indices of scores [S*V] drawn without replacement from softmax(scores), then sorted best first.

    All n at once by the Gumbel-top-k trick (Vieira 2014; Kool, van Hoof & Welling 2019, "Stochastic Beams and
    Where to Find Them"): the n largest of scores_i + G_i, G_i ~ Gumbel(0, 1) independent, are distributed as n
    successive draws without replacement from softmax(scores), as torch.multinomial(replacement=False), which
    transformers uses, draws them. One pass over S*V, where drawing one at a time took a pass per draw. Once
    every index of non-zero probability is drawn, the rest are filled in by the highest remaining scores.
    """
    keys = scores.astype(np.float64) + rng.gumbel(size=scores.shape)  # [S*V]; -inf stays -inf
    finite = np.isfinite(keys)
    drawn = min(n, int(finite.sum()))
    rest = np.flatnonzero(~finite)[: n - drawn]  # of probability 0, all alike: the lowest ids
    picks = np.concatenate([largest(keys, drawn), rest])
    return picks[np.argsort(-scores[picks], kind="stable")]


# ----------------------------------------------------------------------------- one step


def hamming_diversity(scores, earlier_tokens, penalty: float, group_size: int):
    """scores [B*S, V] - penalty * c, c[v] = how many beams of the earlier groups of the same prompt chose
    token v at this step (earlier_tokens [B, g*S]). Hamming diversity (Vijayakumar et al. 2016, "Diverse
    Beam Search"); transformers' HammingDiversityLogitsProcessor (a finished group counts as having chosen
    the pad token)."""
    B, V = earlier_tokens.shape[0], scores.shape[-1]
    counts = np.zeros((B, V), dtype=np.float32)  # [B, V]
    np.add.at(counts, (np.repeat(np.arange(B), earlier_tokens.shape[1]), earlier_tokens.ravel()), 1)
    return scores - np.float32(penalty) * np.repeat(counts, group_size, axis=0)  # [B*S, V]


def processed_scores(run: Run, chain: Chain, logprobs, history, earlier_tokens, group_size: int):
    """The chain on log-probs [B*S, V]. With a diversity penalty it goes where transformers puts its
    HammingDiversityLogitsProcessor: after the sequence bias (our logit_bias and sequence_bias), before the others."""
    if run.options.diversity_penalty == 0 or earlier_tokens.shape[1] == 0:
        return chain(logprobs, history)
    biases = ("logit_bias", "sequence_bias")
    first = Chain(p for p in chain.processors if p.name in biases)
    rest = Chain(p for p in chain.processors if p.name not in biases)
    scores = hamming_diversity(first(logprobs, history), earlier_tokens, run.options.diversity_penalty, group_size)
    return rest(scores, history)


def advance_group(run: Run, finished: FinishedHypotheses, total, beams, model_logprobs, processed, step: int,
                  events: list, where=(0, 0)):
    """One prompt's group: candidates from total [S, V] (running score + processed log-probs of each beam),
    the finished ones handed to `finished`, the next beams returned as (beam in group, token, score).
    where = (prompt, group) labels the BeamEvents it appends to `events`.

    A candidate ending in end-of-text is finished only if it ranks within the first S; the next beams
    are the S best that do not end (there are at least S among 2S: each beam gives one end-of-text).
    """
    S, V = total.shape
    choose = sampled_candidates if run.sampling else best_candidates
    flat = total.reshape(-1)  # [S*V]
    picks = choose(flat, min(2 * S, flat.size), run.rng)  # [2S] best first
    chosen, outcomes = [], []  # outcomes: (outcome, score) of each pick looked at
    for rank, pick in enumerate(picks):
        k, token = divmod(int(pick), V)
        if token == run.eos_token_id:
            entered = None
            if rank < S:
                entered = finished.add(float(flat[pick]),
                                       extend(beams[k], token, model_logprobs[k], processed[k], run), "eos")
            outcomes.append(("pruned", float(flat[pick])) if entered is None else ("finished", entered))
        else:
            chosen.append((k, token, flat[pick]))
            outcomes.append(("running", float(flat[pick])))
        if len(chosen) == S:
            break
    outcomes += [("pruned", float(flat[pick])) for pick in picks[len(outcomes):]]
    for pick, (outcome, score) in zip(picks, outcomes):
        k, token = divmod(int(pick), V)
        events.append(BeamEvent(step, where[0], where[1], tuple(beams[k].tokens), token,
                                float(model_logprobs[k, token]), score, outcome))
    # the step's best candidate (transformers 4.46) or the best running beam (5.x): see uses_446_beam_scorer
    best = flat[picks[0]] if uses_446_beam_scorer(run) else chosen[0][2]
    finished.done = cannot_improve(finished, float(best), step + 1, run)
    return chosen


def extend(beam: Beam, token: int, raw_row, processed_row, run: Run) -> Beam:
    """The beam with `token` appended, and its trace step."""
    return Beam(beam.tokens + [token], beam.steps + [trace_step(token, raw_row, processed_row, run.trace_top,
                                                                  run.tokenizer)])


# ----------------------------------------------------------------------------- the search


def group_rows(B: int, K: int, S: int, g: int) -> np.ndarray:
    """Rows of group g in the [B*K] batch (prompt-major): [B, S]."""
    return np.arange(B)[:, None] * K + g * S + np.arange(S)[None, :]


class BeamSearch:
    """The running state: K beams per prompt in G groups of S (G = num_beam_groups for "diverse-beam", else
    1), their scores, and each prompt's (each group's) finished hypotheses. Rows are prompt-major: row
    b*K + k is beam k of prompt b."""

    def __init__(self, run: Run):
        o = run.options
        self.run, self.B, self.K = run, run.ids.shape[0], o.num_beams
        self.G = o.num_beam_groups  # 1 but for diverse beam search
        self.S = self.K // self.G
        self.chain = run.chain_for_copies(self.S)  # it runs on one group's rows [B*S] at a time
        self.history = np.repeat(run.ids, self.K, axis=0)  # [B*K, t] prompt (left padding included) + generated
        first_of_group = np.arange(self.K) % self.S == 0
        self.scores = np.tile(np.where(first_of_group, np.float32(0), NOT_STARTED), self.B)  # [B*K]
        self.beams = [Beam() for _ in range(self.B * self.K)]
        self.finished = [[FinishedHypotheses(self.S, o.length_penalty) for _ in range(self.G)] for _ in range(self.B)]
        self.events: list[BeamEvent] = []  # every candidate weighed, in order

    @property
    def done(self) -> bool:
        return all(f.done for groups in self.finished for f in groups)

    def step(self, logits, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Choose the next beams from the logits [B*K, V]; -> (the row each new beam continues [B*K],
        its new token [B*K]). A finished group keeps its rows and is fed padding."""
        model_logprobs = log_softmax(logits)  # [B*K, V]
        processed = np.empty_like(model_logprobs)  # [B*K, V]
        sources = np.arange(self.B * self.K)
        tokens = np.full(self.B * self.K, self.run.pad_token_id, dtype=np.int64)
        beams, scores = list(self.beams), self.scores.copy()
        for g in range(self.G):  # in order: group g sees the tokens groups 0..g-1 chose at this step
            rows = group_rows(self.B, self.K, self.S, g)  # [B, S]
            earlier = tokens.reshape(self.B, self.K)[:, : g * self.S]  # [B, g*S]
            flat = rows.ravel()
            processed[flat] = processed_scores(self.run, self.chain, model_logprobs[flat], self.history[flat],
                                               earlier, self.S)
            self.check_candidates(g, flat, model_logprobs, processed, step)
            for b in range(self.B):
                if not self.finished[b][g].done:
                    self.advance(self.finished[b][g], rows[b], model_logprobs, processed, step, sources, tokens,
                                 beams, scores, where=(b, g))
        self.beams, self.scores = beams, scores
        self.history = np.concatenate([self.history[sources], tokens[:, None]], axis=1)  # [B*K, t+1]
        return sources, tokens

    def check_candidates(self, g: int, flat, model_logprobs, processed, step: int):
        """Refuse the step if, for a prompt still searching, every candidate of its group (each beam's
        running score + processed log-probs) is -inf; a single beam left without tokens is fine."""
        alive = np.isfinite(self.scores[flat]) & np.isfinite(processed[flat]).any(axis=-1)  # [B*S]
        nothing_left = np.repeat(~alive.reshape(self.B, self.S).any(axis=1), self.S)  # [B*S] per prompt
        searching = np.repeat([not self.finished[b][g].done for b in range(self.B)], self.S)
        check_choosable(self.chain, model_logprobs[flat], self.history[flat], processed[flat], step,
                        rows=np.flatnonzero(searching), nothing_left=nothing_left)

    def advance(self, finished: FinishedHypotheses, rows, model_logprobs, processed, step: int, sources, tokens,
                beams, scores, where=(0, 0)):
        """One prompt's group (rows [S]; where = (prompt, group)): its next beams written into sources,
        tokens, beams, scores. At max_new_tokens the running beams are finished as they are."""
        total = processed[rows] + self.scores[rows, None]  # [S, V]
        group_beams = [self.beams[i] for i in rows]
        chosen = advance_group(self.run, finished, total, group_beams, model_logprobs[rows], processed[rows], step,
                               self.events, where)
        for slot, (k, token, score) in zip(rows, chosen):
            source = rows[k]
            sources[slot], tokens[slot], scores[slot] = source, token, score
            beams[slot] = extend(self.beams[source], token, model_logprobs[source], processed[source], self.run)
        if step == self.run.max_new_tokens - 1 and not (finished.done and uses_446_beam_scorer(self.run)):
            for slot in rows:
                entered = finished.add(float(scores[slot]), beams[slot], "length")
                if entered is not None:
                    tokens_so_far = beams[slot].tokens
                    self.events.append(BeamEvent(step, *where, tuple(tokens_so_far[:-1]), tokens_so_far[-1],
                                                     float(model_logprobs[sources[slot], tokens_so_far[-1]]),
                                                     entered, "finished"))

    def results(self) -> list[list[Hypothesis]]:
        """Each prompt's num_return_sequences best finished hypotheses (of all its groups), best first."""
        n = self.run.options.num_return_sequences
        return [best_first([h for f in groups for h in f.hyps], n) for groups in self.finished]


def beam_search(run: Run):
    """Beam search ("beam", "beam-sample", "diverse-beam"): for each prompt, num_return_sequences
    hypotheses, best first. All beams of all prompts run as one batch [B * num_beams] through the KV
    cache, which is reordered after each step so that each row follows the beam it now holds. A generator:
    each step yields [] (no sequence is settled until the search ends), then it returns the outcome."""
    search, model, B = BeamSearch(run), run.model, run.ids.shape[0]
    cache = run.new_cache(B)
    logits = model.prefill(run.ids, cache, run.mask)  # once per prompt: [B, V]
    cache.reorder(np.repeat(np.arange(B), search.K))  # then each prompt's cache serves its K beams
    logits = np.repeat(logits, search.K, axis=0)  # [B*K, V]
    for step in range(run.max_new_tokens):
        sources, tokens = search.step(logits, step)
        yield []
        if step == run.max_new_tokens - 1 or search.done:
            break
        cache.reorder(sources)  # each row's keys and values now belong to the beam it holds
        logits = model.forward(tokens[:, None], cache, last_only=True).logits[:, -1]  # [B*K, V]
    return Outcome(search.results(), beam_events=search.events)


def best_first(hyps: list[Hypothesis], n: int) -> list[Hypothesis]:
    if not hyps:  # max_new_tokens = 0
        return [Hypothesis(tokens=[], score=0.0) for _ in range(n)]
    return sorted(hyps, key=lambda h: -h.score)[:n]
