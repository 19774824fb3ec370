"""The chain link by link: the distribution of the next token before the chain, after each of its links, and
what each link cut. The data behind the explorer's three panels of bars.

    the model's scores -> repetition_penalty -> temperature -> top_k -> top_p -> ... -> what the token is drawn from
         stage 0             stage 1             stage 2        stage 3   stage 4           the last stage

A StagedChain is the run's own chain keeping, at each call, the scores after every link ([B, V] arrays, alive
until its next call), so what the page shows is what the run computed, XTC's draw included. `chain_stages`
reads one row of them: at each stage p = softmax(scores); how many tokens survive (p > 0); what share of the
stage before it the link kept; and, for the stages listed, the most probable tokens with p and score.

What this module is not: the chain (core/chain.py, links/chain.py) or the page that draws it (web/).
"""

from dataclasses import dataclass, field

import numpy as np

from ..core.chain import Chain
from ..core.numerics import largest, softmax
from ..links.chain import WARPER_ORDER

TEMPERATURES = WARPER_ORDER["temperature"]  # the links that only reshape: every other warper cuts


class StagedChain(Chain):
    """A chain that keeps the scores after each of its links at its last call (see the module docstring)."""

    def __init__(self, chain: Chain):
        super().__init__(chain.processors, chain.chooser)
        self.scores: list[np.ndarray] = []  # [input, after link 1, ..., after the last link], each [B, V]

    def __call__(self, logits, ids):
        logits = np.array(logits, dtype=np.float32)  # a copy: the caller's array is never modified
        ids = np.asarray(ids, dtype=np.int64).reshape(logits.shape[0], -1)  # [B, t]
        self.scores = [logits]
        for processor in self.processors:
            logits = processor(logits, ids)
            self.scores.append(logits)
        return logits


@dataclass
class Stage:
    """The distribution after one link (stage 0: before the first)."""
    after: str  # the link's repr; "" for the chain's input
    survivors: int  # tokens with p > 0
    kept_mass: float  # the probability, in the stage before, of the tokens this link did not mask (1 for stage 0)
    tokens: list[int] = field(default_factory=list)  # listed stages: the most probable tokens, most probable first
    probs: list[float] = field(default_factory=list)  # their p at this stage
    scores: list[float] = field(default_factory=list)  # their scores at this stage (logits, logits / T, ...)

    @property
    def mass(self) -> float:
        """The probability the listed tokens hold together."""
        return float(sum(self.probs))


@dataclass
class ChainStages:
    stages: list[Stage]  # stage 0, then one per link
    logits: dict[int, float]  # the chain's input score of every listed token
    removed_by: dict[int, int]  # every listed token a link masked (-inf) -> the stage of the link that did (>= 1)
    cutoffs_from: int  # the stage the cut-offs start from: after the penalties and temperature, before any cut


def cutoffs_start(links) -> int:
    """The stage after every link before the first warper that cuts: what temperature made of the distribution,
    before top-k, top-p and the others cut it (the last stage when nothing cuts)."""
    warpers = tuple(cls for slot in WARPER_ORDER.values() for cls in slot if cls not in TEMPERATURES)
    return next((i for i, link in enumerate(links) if isinstance(link, warpers)), len(links))


def chain_stages(chain: StagedChain, row: int, top: int, listed=None) -> ChainStages:
    """One row of the chain's last call, stage by stage; the `top` most probable tokens of the listed stages
    (default: the input, cutoffs_start's and the last)."""
    arrays = [scores[row] for scores in chain.scores]  # [V] each
    start = cutoffs_start(chain.processors)
    listed = sorted({0, start, len(arrays) - 1} if listed is None else set(listed))
    probs = [softmax(scores) for scores in arrays]  # [V] each
    stages = [Stage(after="" if i == 0 else repr(chain.processors[i - 1]), survivors=int(np.count_nonzero(p > 0)),
                    kept_mass=1.0 if i == 0 else float(probs[i - 1][np.isfinite(arrays[i])].sum(dtype=np.float64)))
              for i, p in enumerate(probs)]
    for i in listed:
        best = [int(t) for t in largest(arrays[i], top) if probs[i][t] > 0]
        stages[i].tokens, stages[i].probs = best, [float(probs[i][t]) for t in best]
        stages[i].scores = [float(arrays[i][t]) for t in best]
    shown = sorted({t for i in listed for t in stages[i].tokens})
    removed_by = {}
    for t in shown:
        gone = [i for i in range(1, len(arrays)) if np.isneginf(arrays[i][t]) and not np.isneginf(arrays[i - 1][t])]
        if gone:
            removed_by[t] = gone[0]
    return ChainStages(stages, {t: float(arrays[0][t]) for t in shown}, removed_by, start)
