"""What the model computes on the way to a token, as arrays: the data behind `minigpt plot`.

- token_logprobs: log p of each token of a text given the ones before it (minigpt score).
- next_token_distribution: p(next token) at one or more temperatures, and which tokens top-k, top-p
  and min-p keep (the processors of sampling/processors.py, applied as generate() applies them).
- logit_lens: the token each layer would predict if it were the last (nostalgebraist 2020, "interpreting
  GPT: the logit lens"): softmax(unembed(ln_f(residual))) at every layer and position.
- attention_maps: every head's attention weights over the prompt (attention: the same with the prompt, to show).
- beam_tree: every candidate beam search weighed, as a tree, from a real run of generate(..., "beam").

Everything is NumPy and returns dataclasses of arrays or plain lists, each with a short repr and a static
_repr_html_ for notebooks (markup.py). What this module is not: it draws no figure (plots.py does, with
matplotlib) and prints nothing (cli.py does).
"""

import math
from dataclasses import dataclass, field

import numpy as np

from ..call import memory
from ..call.generate import default_tokenizer, generate
from ..views.html import attention_html, beam_tree_html, distribution_html, lens_html, number, token_span
from ..call.memory import Footprint, Part, check_fits
from ..core.model import GPT2
from ..core.checks import check_int, plural
from ..core.numerics import draw, largest, log_softmax, softmax
from ..links.chain import build_chain
from ..core.links import MinP, Temperature, TopK, TopP
from ..strategies.run import token_text

# Shapes: L n_layer, H n_head, T prompt tokens, V vocabulary, M temperatures, N tokens shown.


def text_of(token: int) -> str:
    """A token's text, for a repr or a picture in a notebook."""
    return token_text(default_tokenizer(), int(token))


def prompt_ids(model: GPT2, ids) -> np.ndarray:
    """One prompt of token ids [T], checked: not empty, within the context and the vocabulary. -> [1, T]"""
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.size == 0 or ids.dtype.kind not in "iu":
        raise ValueError(f"ids must be one non-empty prompt of integer token ids [T], got {ids.tolist()!r:.80}.")
    if ids.size > model.config.n_positions:
        raise ValueError(f"the prompt has {ids.size} tokens, more than the model's context of "
                         f"n_positions={model.config.n_positions}; give a shorter prompt.")
    return ids.astype(np.int64)[None]


def check_prompt_pass(model: GPT2, length: int, doing: str, vocab_rows: int, lower: str = "the length of the prompt",
                      logits_positions=1, every_layer=False):
    """Refuse (memory.check_fits) a pass over one prompt of `length` tokens that keeps the logits of
    logits_positions positions (every layer's stream and attention with every_layer), followed by vocab_rows
    float32 rows [V]: what each function below holds at its peak."""
    c = model.config
    check_fits(Footprint((
        Part(f"the forward pass over {length} tokens", memory.forward_pass(c, 1, length, length, logits_positions,
                                                                           every_layer), "the length of the prompt"),
        Part(f"{vocab_rows:,} rows of {c.vocab_size} probabilities", memory.vocabulary_arrays(c, vocab_rows, 1), lower),
    )), doing)


def inspect_prompt(model: GPT2, ids: np.ndarray):
    """One forward pass over the prompt ids [1, T] (checked by prompt_ids) that keeps every residual stream and
    attention map (the logits of the last position only: the lens reads every position out of the residuals)."""
    return model.forward(ids, model.new_cache(1, ids.shape[1]), last_only=True, inspect=True)


# ----------------------------------------------------------------------------- token log-probabilities


def token_logprobs(model: GPT2, ids) -> list[float]:
    """log p(token_i | tokens before it) for i >= 1, read off one forward pass over ids [T]."""
    ids = prompt_ids(model, ids)  # [1, T]
    check_prompt_pass(model, ids.shape[1], "scoring this text", 3 * ids.shape[1], logits_positions=ids.shape[1])
    logits = model.forward(ids, model.new_cache(1, ids.shape[1])).logits[0]  # [T, V]
    logp = log_softmax(logits[:-1])  # [T-1, V]: the distribution over the token after each position
    return [float(logp[t, ids[0, t + 1]]) for t in range(ids.shape[1] - 1)]


def perplexity(logprobs: list[float]) -> float | None:
    """exp(-mean log p) over the scored tokens; None when there is none (a text of one token)."""
    return math.exp(-sum(logprobs) / len(logprobs)) if logprobs else None


# ----------------------------------------------------------------------------- next-token distribution


@dataclass(repr=False)
class NextTokenDistribution:
    """p(next token | prompt) at each temperature, and what each cut-off keeps of it."""
    tokens: np.ndarray  # [N] int64: the N most probable tokens, most probable first (the same order at every T)
    temperatures: tuple[float, ...]  # [M]
    probs: np.ndarray  # [M, N] float32: softmax(logits / T) of those tokens, before any cut-off
    rest: np.ndarray  # [M] float32: the probability of every token not shown
    cutoffs: dict[str, float]  # the cut-offs given, by processor name: {"top_k": 10, "top_p": 0.9, "min_p": 0.05}
    kept: dict[str, np.ndarray]  # name -> [M, N] bool: which shown tokens the cut-off keeps, applied alone after T
    kept_count: dict[str, np.ndarray]  # name -> [M] int64: how many tokens of the whole vocabulary it keeps
    final: np.ndarray  # [M, N] float32: the distribution sampling draws from: T, then every cut-off, renormalised
    final_count: np.ndarray  # [M] int64: how many tokens of the vocabulary that distribution keeps
    selected: int  # the chosen token: the most probable, or with a seed the one drawn at the first temperature
    seed: int | None = None
    chain: list[str] = field(default_factory=list)  # the processors of `final` at the first temperature, in order
    # [M] int64: the token chosen at each temperature: the most probable (the same at every T), or with a seed
    # the one generate(..., "sample", seed=seed, temperature=T) draws first; drawn[0] is `selected`
    drawn: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def draw_temperature(self) -> float:
        """The temperature `selected` was chosen at: the first one."""
        return self.temperatures[0]

    def __repr__(self) -> str:
        top = ", ".join(f"{text_of(t)!r} {p:.3f}" for t, p in zip(self.tokens[:3], self.probs[0]))
        cuts = "".join(f", {k}={v} keeps {self.kept_count[k][0]:,}" for k, v in self.cutoffs.items())
        return (f"NextTokenDistribution({plural(len(self.tokens), 'token')} shown at T={self.temperatures[0]}{cuts}: "
                f"{top}; chosen {text_of(self.selected)!r})")


    def _repr_html_(self) -> str:
        return distribution_html(self, text_of)


def next_token_distribution(model: GPT2, ids, temperatures=(1.0,), top_k=None, top_p=None, min_p=None, top=20,
                            seed=None) -> NextTokenDistribution:
    """The distribution of the token after prompt `ids` [T], as sampling sees it.

    At each temperature T: p = softmax(logits / T); each given cut-off (TopK, TopP, MinP of
    sampling/processors.py) applied alone to logits / T says which tokens it keeps; `final` is the chain
    generate(..., "sample") builds (temperature, top-k, top-p, min-p, in transformers' order),
    renormalised. With a seed, `selected` is the token generate(..., "sample", seed=seed) would draw first
    at the first temperature; without one, the most probable token (greedy decoding's choice).
    """
    ids = prompt_ids(model, ids)
    temperatures = tuple(temperatures)
    if not temperatures:
        raise ValueError("temperatures must hold at least one temperature, e.g. (1.0,).")
    tempers = [Temperature(t) for t in temperatures]  # checks each range
    top = check_int("top", top, 1)
    if seed is not None:
        check_int("seed", seed, 0)
    check_prompt_pass(model, ids.shape[1], "the next-token distribution", 2 * len(temperatures) + 6,
                      lower="the number of temperatures")  # p and the final distribution at each, the chain's
    logits = model.forward(ids, model.new_cache(1, ids.shape[1]), last_only=True).logits[:, -1]  # [1, V]
    V = logits.shape[-1]
    tokens = largest(logits[0], top)  # [N] most probable first, ties by id
    given = (("top_k", top_k), ("top_p", top_p), ("min_p", min_p))
    cutoffs = {name: value for name, value in given if value is not None}
    processors = {"top_k": TopK, "top_p": TopP, "min_p": MinP}
    alone = {name: processors[name](value) for name, value in cutoffs.items()}  # checks each value
    settings = dict(top_k=top_k or 0, top_p=1.0 if top_p is None else top_p, min_p=min_p or 0.0)

    probs, final, final_count, chains = [], [], [], []
    kept = {name: [] for name in cutoffs}
    kept_count = {name: [] for name in cutoffs}
    for t, temper in zip(temperatures, tempers):
        tempered = temper(logits, ids)  # [1, V]
        probs.append(softmax(tempered)[0])
        for name, processor in alone.items():
            allowed = np.isfinite(processor(tempered, ids))[0]  # [V]
            kept[name].append(allowed[tokens])
            kept_count[name].append(int(allowed.sum()))
        chain = build_chain(sampling=True, prompt_length=ids.shape[1], eos_token_id=model.config.eos_token_id,
                            vocab_size=V, temperature=t, **settings)
        chains.append(chain.describe())
        final.append(softmax(chain(logits, ids))[0])  # [V]
        final_count.append(int((final[-1] > 0).sum()))
    if seed is None:  # greedy: the argmax, whatever the temperature
        drawn = [int(tokens[0])] * len(temperatures)
    else:  # the same seed, so the same uniform number, read through each temperature's distribution
        drawn = [draw(f, np.random.default_rng(seed)) for f in final]
    return NextTokenDistribution(
        tokens=tokens, temperatures=temperatures,
        probs=np.stack([p[tokens] for p in probs]),  # [M, N]
        rest=np.array([1 - p[tokens].sum(dtype=np.float32) for p in probs], dtype=np.float32),
        cutoffs=cutoffs, kept={k: np.stack(v) for k, v in kept.items()},
        kept_count={k: np.array(v, dtype=np.int64) for k, v in kept_count.items()},
        final=np.stack([f[tokens] for f in final]), final_count=np.array(final_count, dtype=np.int64),
        selected=drawn[0], seed=seed, chain=chains[0], drawn=np.array(drawn, dtype=np.int64))


# ----------------------------------------------------------------------------- logit lens


@dataclass(repr=False)
class LogitLens:
    """What each layer would predict: at layer l and position t, the most probable next token read out of
    the residual stream as if the remaining blocks were skipped."""
    tokens: list[int]  # [T] the prompt
    # [L+1, T] int64: row 0 reads the embeddings, row l the output of block l-1, row L the model's output
    top_tokens: np.ndarray
    top_probs: np.ndarray  # [L+1, T] float32: their probabilities, softmax(unembed(ln_f(residual)))
    row_labels: list[str] = field(default_factory=list)  # [L+1] what each row reads: lens_row_labels(L)

    def __post_init__(self):
        if not self.row_labels:
            self.row_labels = lens_row_labels(self.top_tokens.shape[0] - 1)

    def __repr__(self) -> str:
        rows, T = self.top_tokens.shape
        return (f"LogitLens({rows} rows ({self.row_labels[0]} .. {self.row_labels[-1]}) x {T} positions; "
                f"after the last token the model predicts {text_of(self.top_tokens[-1, -1])!r} "
                f"{self.top_probs[-1, -1]:.3f})")


    def _repr_html_(self) -> str:
        return lens_html(self, text_of)


def lens_row_labels(n_layer: int) -> list[str]:
    """What each row of the lens reads, bottom up: "embeddings", "after block 1", ..., and the last block's
    output, "after block L (the model's prediction)"."""
    return ["embeddings"] + [f"after block {l}" for l in range(1, n_layer)] + [
        f"after block {n_layer} (the model's prediction)"] if n_layer else ["embeddings (the model's prediction)"]


def logit_lens(model: GPT2, ids) -> LogitLens:
    """The logit lens (nostalgebraist 2020): p_l = softmax(W_e ln_f(x_l)) for each residual stream x_l
    (the embeddings, then the stream after each block), through the model's own final layer norm and
    tied output matrix. At l = L it is the model's own next-token distribution."""
    ids = prompt_ids(model, ids)  # [1, T]
    T = ids.shape[1]
    check_prompt_pass(model, T, "the logit lens of this prompt", 4 * T, every_layer=True)  # read-out, softmax
    result = inspect_prompt(model, ids)
    top_tokens, top_probs = [], []
    for residual in result.residuals:  # L+1 arrays [1, T, C]
        probs = softmax(model.read_out(residual[0]))  # [T, V]
        best = probs.argmax(axis=-1)  # [T]
        top_tokens.append(best)
        top_probs.append(probs[np.arange(best.size), best])
    return LogitLens(tokens=ids[0].tolist(), top_tokens=np.stack(top_tokens).astype(np.int64),
                     top_probs=np.stack(top_probs), row_labels=lens_row_labels(model.config.n_layer))


# ----------------------------------------------------------------------------- attention


def attention_maps(model: GPT2, ids) -> np.ndarray:
    """Every head's attention weights over the prompt: [L, H, T, T] float32, row t (a query) holding
    softmax(q_t k^T / sqrt(D)) over the positions 0..t (zero after t: causal)."""
    ids = prompt_ids(model, ids)  # [1, T]
    T, c = ids.shape[1], model.config
    stacked = math.ceil(c.n_layer * c.n_head * T * T / c.vocab_size)  # np.stack's [L, H, T, T], in rows of V
    check_prompt_pass(model, T, "the attention maps of this prompt", stacked, every_layer=True)
    return np.stack([weights[0] for weights in inspect_prompt(model, ids).attention])  # L x [H, T, T]


@dataclass(repr=False)
class Attention:
    """attention_maps with the prompt it read, for display: weights [L, H, T, T] over tokens [T]."""
    tokens: list[int]
    weights: np.ndarray

    def __repr__(self) -> str:
        L, H, T, _ = self.weights.shape
        return f"Attention({L} layers x {H} heads over {T} tokens: {''.join(map(text_of, self.tokens))[:60]!r})"


    def _repr_html_(self) -> str:
        return attention_html(self, text_of)


def attention(model: GPT2, ids) -> Attention:
    """attention_maps(model, ids) with the prompt, as an object that shows itself in a notebook."""
    return Attention(tokens=[int(i) for i in ids], weights=attention_maps(model, ids))


# ----------------------------------------------------------------------------- beam tree


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

    @property
    def token(self) -> int | None:
        return self.tokens[-1] if self.tokens else None

    def __repr__(self) -> str:
        returned = f", returned #{self.result + 1}" if self.result is not None else ""
        return (f"BeamNode({self.id}: step {self.step} {text_of(self.token) if self.tokens else '(prompt)'!r} "
                f"p={self.prob:.4f} score={self.score:.4f} {self.status}{returned})")

    def _repr_html_(self) -> str:
        return token_span(text_of(self.token) if self.tokens else "", self.prob, repr(self), {"p": number(self.prob)})


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

    def __repr__(self) -> str:
        best = f"; best {''.join(map(text_of, self.sequences[0]))[:60]!r} score {self.scores[0]:.3f}" \
            if self.sequences else ""
        steps = max([n.step for n in self.nodes] + [-1]) + 1
        return f"BeamTree({self.strategy}: {len(self.nodes) - 1} candidates over {plural(steps, 'step')}{best})"

    def _repr_html_(self) -> str:
        return beam_tree_html(self, text_of)

    def path(self, node: BeamNode) -> list[BeamNode]:
        """The nodes from the root's first child down to `node`."""
        nodes = []
        while node.parent >= 0:
            nodes.append(node)
            node = self.nodes[node.parent]
        return nodes[::-1]


def beam_tree(model: GPT2, ids, num_beams=3, max_new_tokens=5, length_penalty=1.0, early_stopping=False,
              strategy="beam", num_return_sequences=None, **options) -> BeamTree:
    """Run generate(model, ids, strategy, ...) once, recording every candidate it weighs (sampling/beam.py's
    BeamEvent), and link them into a tree: a node per (group, tokens so far), its parent the beam it
    extends. The nodes on the paths of the returned sequences carry their rank in `result`.
    num_return_sequences defaults to num_beams: every hypothesis the search kept."""
    ids = prompt_ids(model, ids)[0].tolist()
    num_beams = check_int("num_beams", num_beams, 1)  # before it becomes the default num_return_sequences
    events = []
    out = generate(model, ids, strategy, num_beams=num_beams, max_new_tokens=max_new_tokens,
                   length_penalty=length_penalty, early_stopping=early_stopping,
                   num_return_sequences=num_beams if num_return_sequences is None else num_return_sequences,
                   record=events, trace_top=0, **options)
    root = BeamNode(id=0, parent=-1, tokens=(), step=-1, prob=1.0, score=0.0, status="root")
    nodes, index = [root], {}  # index: (group, tokens) -> node id
    for e in events:
        key = (e.group, e.parent + (e.token,))
        if key in index:  # a running beam finished at the last step, or (beam sampling) a repeated candidate
            node = nodes[index[key]]
            if e.outcome == "finished" or node.status == "pruned":
                node.status, node.score = e.outcome, e.score
            continue
        parent = index.get((e.group, e.parent), 0)
        index[key] = len(nodes)
        nodes.append(BeamNode(id=len(nodes), parent=parent, tokens=key[1], step=e.step, prob=float(np.exp(e.logprob)),
                              score=e.score, status=e.outcome, group=e.group))
    for rank, tokens in reversed(list(enumerate(out.sequences))):  # the best rank wins where paths share nodes
        for node in nodes[1:]:
            if tokens[: len(node.tokens)] == list(node.tokens):
                node.result = rank
    settings = dict(num_beams=num_beams, max_new_tokens=max_new_tokens, length_penalty=length_penalty,
                    early_stopping=early_stopping, **options)
    return BeamTree(prompt=ids, nodes=nodes, sequences=out.sequences, scores=out.scores, strategy=strategy,
                    options=settings, candidates_per_step=2 * num_beams)


__all__ = ["token_logprobs", "perplexity", "NextTokenDistribution", "next_token_distribution", "LogitLens",
           "logit_lens", "attention_maps", "Attention", "attention", "BeamNode", "BeamTree", "beam_tree"]
