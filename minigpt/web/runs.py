"""The explorer's live runs: one paused generate() call per branch of the page, so that a click costs one step.

    Next      the branch's run takes one more step (or shows one it has already taken, after an Undo)
    Run N     it takes N more, each sent to the page as it comes
    Undo      the page shows one step fewer; the run keeps what it computed
    a click   on a bar forces that token: a new branch, the same run with {step: token} forced

A branch is named by everything that decides its text: the prompt, the prefix, the strategy, the options and
the forced tokens. The same name gives the same run, so the same text at the same step has the same pending
token on every branch; a forced token takes the place of the draw, which is still taken, so a branch goes on
with its parent's stream of draws. A run the store no longer holds is started again and replayed to where
the page is: the same tokens, computed again.

The store holds at most LIVE_RUNS runs, and at most `budget` bytes of them as call/memory.py prices each;
the least recently used go first. What this module is not: the endpoints (explore.py) or generate() itself.
"""

import json
from collections import OrderedDict
from dataclasses import dataclass, field

from ..call.generate import LiveRun, peak_memory
from ..call.strategies import STRATEGIES
from ..core.link import Trait
from ..inspection.stages import StagedChain, chain_stages

LIVE_RUNS = 8  # branches kept live at once
BUDGET_SHARE = 0.25  # of the memory available at launch, the most the live runs may hold
DEFAULT_BUDGET = 1 << 30  # bytes, when the memory available is not known


@dataclass
class Branch:
    """A live run and what was computed along it."""
    live: LiveRun
    nbytes: int  # its peak, as call/memory.py prices it
    stages: list = field(default_factory=list)  # the first row's ChainStages at each step (strategies that choose)
    prefix_logprobs: list[float] = field(default_factory=list)  # log p of each prefix token under the model
    ended_rows: set[int] = field(default_factory=set)  # the rows whose sequence has ended

    @property
    def steps(self):
        return self.live.steps[0]

    def advance(self, top: int):
        """One more step of every row whose sequence goes on."""
        emitted = {row for row, _ in self.live.advance()}
        self.ended_rows |= set(range(len(self.live.steps))) - emitted
        if 0 in emitted and isinstance(self.live.run.chain, StagedChain):
            self.stages.append(chain_stages(self.live.run.chain, 0, top))

    def finish_reason(self, eos: int) -> str | None:
        """Why the first row's sequence ended ("eos", "stop", "length"), or None while it goes on."""
        if self.live.ended:
            return self.live.outcome.hypotheses[0][0].finish_reason
        if 0 not in self.ended_rows:
            return None
        return "eos" if self.steps and self.steps[-1].token == eos else "stop"

    def needs(self, n: int) -> bool:
        """Whether some row that goes on has fewer than n steps."""
        return any(len(steps) < n and row not in self.ended_rows for row, steps in enumerate(self.live.steps))


def branch_key(prompt: list[int], prefix: list[int], strategy: str, options: dict, forced: dict[int, int]) -> str:
    """Everything that decides a branch's text, as one string (the options as JSON, their values made plain)."""
    return json.dumps([prompt, prefix, strategy, options, sorted(forced.items())], sort_keys=True, default=repr)


class LiveRuns:
    """The branches' live runs, least recently used first."""

    def __init__(self, budget: int | None):
        self.budget = DEFAULT_BUDGET if budget is None else int(budget * BUDGET_SHARE)
        self.branches: OrderedDict[str, Branch] = OrderedDict()

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for b in self.branches.values())

    def branch(self, key: str, start) -> Branch:
        """The live branch named `key`, or a new one: start() -> (LiveRun, its peak in bytes), after making room."""
        if key in self.branches:
            self.branches.move_to_end(key)
            return self.branches[key]
        while self.branches and (len(self.branches) >= LIVE_RUNS or self.nbytes > self.budget):
            self.branches.popitem(last=False)
        self.branches[key] = Branch(*start())
        return self.branches[key]


def start_live(model, ids: list[int], strategy: str, options: dict, top: int, tokenizer, forced: dict[int, int]):
    """A LiveRun for a branch, able to go as far as the page lets it, and its peak memory."""
    live = LiveRun(model, ids, strategy, trace_top=top, tokenizer=tokenizer, forced=forced, **options)
    if Trait.CHOOSES in STRATEGIES[strategy].does:  # the loop reads run.chain at each step: keep each link's scores
        live.run.chain = StagedChain(live.run.chain)
    return live, peak_memory(model, live.prompts, live.run.options, top).nbytes
