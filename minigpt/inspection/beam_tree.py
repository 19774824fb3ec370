"""Every candidate a beam search weighed, as a tree: a node per candidate, linked to the beam it extends, from a
real run of generate(..., "beam") (the events strategies/beam.py returns). The data behind `minigpt plot
beam-tree` and the page's tree.

What this module is not: the search itself (strategies/beam.py) or a picture of it (views/plots/beam.py).
"""

from dataclasses import dataclass, field

import numpy as np

from ..call.generate import GenerationOutput, generate
from ..call.strategies import build_options
from ..core.checks import chance, plural
from ..core.model import GPT2
from ..core.tokenizer import Tokenizer
from .passes import prompt_ids, texts_of


@dataclass(repr=False)
class BeamNode:
    """One candidate of beam search: a beam extended by one token."""
    id: int
    parent: int  # the node it extends; -1 for the root (the prompt)
    tokens: tuple[int, ...]  # the new tokens from the prompt to here, this node's token last
    step: int  # 0 = the first new token; -1 for the root
    prob: float  # p(token | the tokens before) under the model's raw distribution
    score: float  # the beam score: the running sum of processed log-probs (finished: / n ** length_penalty)
    status: str  # "running" (a beam after this step), "finished" (a hypothesis), "pruned" (weighed, not kept), "root"
    group: int = 0  # diverse beam search's group
    result: int | None = None  # the rank (0 = best) of the returned sequence whose path goes through it
    text: str = ""  # its token's text ("" for the root)

    @property
    def token(self) -> int | None:
        return self.tokens[-1] if self.tokens else None

    def __repr__(self) -> str:
        returned = f", returned #{self.result + 1}" if self.result is not None else ""
        return (f"BeamNode({self.id}: step {self.step} {self.text if self.tokens else '(prompt)'!r} "
                f"p={chance(self.prob)} score={self.score:.4f} {self.status}{returned})")


@dataclass(repr=False)
class BeamTree:
    """Every candidate a beam search run weighed, linked to the beam it extends, and what it returned."""
    prompt: list[int]
    nodes: list[BeamNode]  # nodes[0] is the root; a parent comes before its children
    sequences: list[list[int]]  # the returned sequences, best first: generate(..., strategy).sequences
    scores: list[float]
    strategy: str = "beam"
    options: dict = field(default_factory=dict)
    # how many candidates each step weighs, over all beams, and so how many nodes a step has at most: the
    # 2 * num_beams best (beam-sample: drawn; diverse-beam: 2 * num_beams / num_beam_groups per group), as
    # transformers, so that a beam always has a candidate left that does not end; the others are not drawn
    candidates_per_step: int = 0
    sequence_texts: list[str] = field(default_factory=list)  # the returned sequences' texts, best first

    def __repr__(self) -> str:
        best = f"; best {self.sequence_texts[0][:60]!r} score {self.scores[0]:.3f}" \
            if self.sequences else ""
        steps = max([n.step for n in self.nodes] + [-1]) + 1
        return f"BeamTree({self.strategy}: {len(self.nodes) - 1} candidates over {plural(steps, 'step')}{best})"

    def path(self, node: BeamNode) -> list[BeamNode]:
        """The nodes from the root's first child down to `node`."""
        nodes = []
        while node.parent >= 0:
            nodes.append(node)
            node = self.nodes[node.parent]
        return nodes[::-1]


def beam_tree(model: GPT2, ids, strategy="beam", max_new_tokens=5, num_return_sequences=None,
              tokenizer: Tokenizer | None = None, **options) -> BeamTree:
    """Run generate(model, ids, strategy, max_new_tokens=..., **options) once and link every candidate it weighed
    into a tree (tree_of); num_beams and the rest as generate() takes them, the strategy's defaults included.
    num_return_sequences defaults to num_beams: every hypothesis the search kept is marked."""
    ids = prompt_ids(model, ids)[0].tolist()
    num_beams = build_options(strategy, max_new_tokens=max_new_tokens, **options).num_beams  # checked, defaults in
    tokenizer = tokenizer or Tokenizer()
    settings = dict(max_new_tokens=max_new_tokens, **options)
    out = generate(model, ids, strategy, tokenizer=tokenizer, trace_top=0, **settings,
                   num_return_sequences=num_beams if num_return_sequences is None else num_return_sequences)
    return tree_of(out, num_beams, tokenizer, {"num_beams": num_beams} | settings)


def tree_of(out: GenerationOutput, num_beams: int, tokenizer: Tokenizer | None = None,
            settings: dict | None = None) -> BeamTree:
    """The tree of a beam strategy's run (one prompt): a node per candidate it weighed (out.beam_events), keyed
    by (group, tokens so far), its parent the beam it extends; the nodes on the paths of the returned sequences
    carry their rank in `result`."""
    tokenizer, settings = tokenizer or Tokenizer(), settings or {}
    root = BeamNode(id=0, parent=-1, tokens=(), step=-1, prob=1.0, score=0.0, status="root")
    nodes, index = [root], {}  # index: (group, tokens) -> node id
    for e in out.beam_events:
        key = (e.group, e.parent + (e.token,))
        if key in index:  # a running beam finished at the last step, or (beam sampling) a repeated candidate
            node = nodes[index[key]]
            if e.outcome == "finished" or node.status == "pruned":
                node.status, node.score = e.outcome, e.score
            continue
        parent = index.get((e.group, e.parent), 0)
        index[key] = len(nodes)
        nodes.append(BeamNode(id=len(nodes), parent=parent, tokens=key[1], step=e.step, prob=float(np.exp(e.logprob)),
                              score=e.score, status=e.outcome, group=e.group,
                              text=texts_of(tokenizer, [e.token])[0]))
    for rank, tokens in reversed(list(enumerate(out.sequences))):  # the best rank wins where paths share nodes
        for node in nodes[1:]:
            if tokens[: len(node.tokens)] == list(node.tokens):
                node.result = rank
    return BeamTree(prompt=out.prompt_tokens[0], nodes=nodes, sequences=out.sequences, scores=out.scores,
                    strategy=out.strategy, options=settings, candidates_per_step=2 * num_beams,
                    sequence_texts=out.texts)
