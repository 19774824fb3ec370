"""The distribution of the token after a prompt, as sampling sees it: p(next token) at one or more temperatures,
which tokens top-k, top-p and min-p keep of it (the links of core/links.py, applied as generate() applies them),
and the token a seed would draw. The data behind `minigpt plot probs` and the page's bars.

What this module is not: a picture of it (views/plots/probs.py) or the chain itself (links/chain.py).
"""

from dataclasses import dataclass, field

import numpy as np

from ..call import memory
from ..core.checks import Named, chance, check_int, plural
from ..core.links import MinP, Temperature, TopK, TopP
from ..core.model import GPT2
from ..core.numerics import draw, largest, softmax
from ..core.tokenizer import Tokenizer
from ..links.chain import build_chain
from ..strategies.options import SEED
from .passes import prompt_ids, texts_of

# Shapes: V vocabulary, M temperatures, N tokens shown.


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
    texts: list[str] = field(default_factory=list)  # [N] the shown tokens' texts
    selected_text: str = ""

    @property
    def draw_temperature(self) -> float:
        """The temperature `selected` was chosen at: the first one."""
        return self.temperatures[0]

    def __repr__(self) -> str:
        top = ", ".join(f"{text!r} {chance(p, 3)}" for text, p in zip(self.texts[:3], self.probs[0]))
        cuts = "".join(f", {k}={v} keeps {self.kept_count[k][0]:,}" for k, v in self.cutoffs.items())
        return (f"NextTokenDistribution({plural(len(self.tokens), 'token')} shown at T={self.temperatures[0]}{cuts}: "
                f"{top}; chosen {self.selected_text!r})")


def next_token_distribution(model: GPT2, ids, temperatures=(1.0,), top_k=None, top_p=None, min_p=None, top=20,
                            seed=None, tokenizer: Tokenizer | None = None) -> NextTokenDistribution:
    """The distribution of the token after prompt `ids` [T], as sampling sees it.

    At each temperature T: p = softmax(logits / T); each given cut-off (TopK, TopP, MinP of
    core/links.py) applied alone to logits / T says which tokens it keeps; `final` is the chain
    generate(..., "sample") builds (temperature, top-k, top-p, min-p, in transformers' order),
    renormalised. With a seed, `selected` is the token generate(..., "sample", seed=seed) would draw first
    at the first temperature; without one, the most probable token (greedy decoding's choice).
    """
    ids = prompt_ids(model, ids)
    temperatures = tuple(temperatures)
    if not temperatures:
        raise ValueError("temperatures must hold at least one temperature, e.g. (1.0,).")
    tempers = [Temperature(t) for t in temperatures]  # checks each range
    top = check_int(Named("top", "--top"), top, 1)
    if seed is not None:
        check_int(SEED.said(), seed, 0)
    rows = 2 * len(temperatures) + 6  # p and the final distribution at each temperature, and the chain's arrays
    memory.check_fits(memory.prompt_pass(model.config, ids.shape[1], rows, lower="the number of temperatures"),
                      "the next-token distribution")
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
        selected=drawn[0], seed=seed, chain=chains[0], drawn=np.array(drawn, dtype=np.int64),
        texts=texts_of(tokenizer, tokens), selected_text=texts_of(tokenizer, [drawn[0]])[0])
