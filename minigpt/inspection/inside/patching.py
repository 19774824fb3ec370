"""Activation patching (Meng et al. 2022, "Locating and Editing Factual Associations in GPT"; Wang et al. 2022, the
IOI paper): run the corrupted prompt with one activation replaced by its value in the clean run, and see how much
of the clean answer comes back. The metric is logit[answer] - logit[wrong] at the last position.

    where       patched                                                   result
    resid_pre   blocks.{l}.hook_resid_pre at position p                   [L, T]
    attn_out    blocks.{l}.hook_attn_out at position p (before the add)   [L, T]
    mlp_out     blocks.{l}.hook_mlp_out at position p (before the add)    [L, T]
    head        blocks.{l}.attn.hook_z of head h, at every position       [L, H]

A patch at layer l and position p changes nothing before either, so the sweep computes only what it changes: the
runs patched at p share the corrupted run's keys and values of positions < p (its KV cache), and run together as
one batch, each row joining the batch at the layer it is patched at, from the corrupted run's stream there.
The sweep equals TransformerLens' patching.get_act_patch_* (which reruns the whole prompt for each patch).

What this module is not: the pass (hooked.py), or a picture of the result (views/).
"""

from dataclasses import dataclass

import numpy as np

from ...call import memory
from ...core.checks import check_vocabulary, is_integer
from ...core.model import GPT2, KVCache
from ..passes import prompt_ids
from .hooked import Hooks, block_step, causal_mask, run_hooked

# Shapes: L n_layer, H n_head, T prompt tokens, C n_embd, R rows of a batch of patched runs.

PLACES = {"resid_pre": "hook_resid_pre", "attn_out": "hook_attn_out", "mlp_out": "hook_mlp_out",
          "head": "attn.hook_z"}  # where -> the point patched in each block


@dataclass(repr=False)
class PatchResult:
    """The metric logit[answer] - logit[wrong] of the corrupted run with each activation patched from the clean."""
    where: str
    values: np.ndarray  # [L, T] (layer x position) or [L, H] (layer x head) float32
    clean_metric: float  # the metric of the clean run, and of the corrupted run, unpatched
    corrupted_metric: float
    answer: int
    wrong: int
    clean_tokens: list[int]
    corrupted_tokens: list[int]

    @property
    def axes(self) -> tuple[str, str]:
        return ("layer", "head") if self.where == "head" else ("layer", "position")

    @property
    def recovered(self) -> np.ndarray:
        """(patched - corrupted) / (clean - corrupted): 0 nothing came back, 1 the whole clean metric."""
        return (self.values - self.corrupted_metric) / np.float32(self.clean_metric - self.corrupted_metric)

    def __repr__(self) -> str:
        l, i = np.unravel_index(np.argmax(self.values), self.values.shape)
        return (f"PatchResult({self.where} {list(self.values.shape)}: metric logit[{self.answer}] - logit[{self.wrong}]"
                f" clean {self.clean_metric:.4f}, corrupted {self.corrupted_metric:.4f}; best patch layer {l} "
                f"{self.axes[1]} {i}: {self.values[l, i]:.4f})")

    def to_json(self) -> dict:
        return {"where": self.where, "axes": list(self.axes), "values": self.values.tolist(),
                "clean_metric": self.clean_metric, "corrupted_metric": self.corrupted_metric, "answer": self.answer,
                "wrong": self.wrong, "clean_tokens": self.clean_tokens, "corrupted_tokens": self.corrupted_tokens}


def answer_and_wrong(clean_logits, corrupted_logits, answer, wrong) -> tuple[int, int]:
    """The defaults: answer the clean argmax, wrong the corrupted argmax, or the clean runner-up when it is the
    answer. clean_logits, corrupted_logits [V] at the last position."""
    answer = int(np.argmax(clean_logits)) if answer is None else answer
    if wrong is None:
        wrong = int(np.argmax(corrupted_logits))
        if wrong == answer:
            rest = clean_logits.copy()
            rest[answer] = -np.inf
            wrong = int(np.argmax(rest))
    if answer == wrong:
        raise ValueError(f"answer and wrong are both token {answer}; give two different tokens.")
    return int(answer), int(wrong)


def patched_rows(where: str, L: int, T: int, H: int) -> dict[int, list[list[tuple[int, int]]]]:
    """The sweep's runs, grouped by the first position they change: {p: [the rows that join at layer l, as
    (l, position or head)] for l in 0..L-1}. A head's patch changes every position: all start at 0."""
    if where == "head":
        return {0: [[(l, h) for h in range(H)] for l in range(L)]}
    return {p: [[(l, p)] for l in range(L)] for p in range(T)}


def patch_edit(rows: list[tuple[int, np.ndarray]], where: str, start: int):
    """An edit that writes clean values into the given rows of a batch: resid_pre/attn_out/mlp_out [R, T', C] at
    its first position (the patched one), head: z [R, T', H, D] of one head at every position."""
    def edit(x):
        for row, (index, clean) in rows:
            if where == "head":
                x[row, :, index] = clean[start:, index]  # [T', D]
            else:
                x[row, 0] = clean[index]  # [C]
        return x
    return edit


def run_group(model: GPT2, p: int, joins: list, corrupted: dict, cached: KVCache, clean: dict, where: str):
    """The patched runs that change positions >= p, batched: rows join at their layer from the corrupted stream,
    keys and values of positions < p are the corrupted run's. -> the final stream at the last position [R, C]"""
    c, T = model.config, cached.max_length
    rows = sum(len(j) for j in joins)
    cache = KVCache(c, rows, T)
    cache.k[:, :, :, :p], cache.v[:, :, :, :p] = cached.k[:, :1, :, :p], cached.v[:, :1, :, :p]  # the shared prefix
    mask, point = causal_mask(p, T - p), PLACES[where]
    x = np.zeros((0, T - p, c.n_embd), dtype=np.float32)  # [R, T', C]
    for l, joining in enumerate(joins):
        start = len(x)
        stream = corrupted[f"blocks.{l}.hook_resid_pre"][:, p:]  # [1, T', C]
        x = np.concatenate([x, np.repeat(stream, len(joining), axis=0)])  # [R_l, T', C]
        edits = [(start + i, (index, clean[f"blocks.{l}.{point}"][0])) for i, (_, index) in enumerate(joining)]
        hooks = Hooks(edits={f"blocks.{l}.{point}": patch_edit(edits, where, p)} if edits else {})
        x = block_step(x, model.params["h"][l], l, c, cache.k[l][: len(x)], cache.v[l][: len(x)], p, mask, hooks)
    return x[:, -1]  # [R, C]


def patch_footprint(model: GPT2, T: int, where: str) -> memory.Footprint:
    """Two passes that keep every layer's point, then the largest batch of patched runs with its KV cache."""
    c = model.config
    rows = c.n_layer * (c.n_head if where == "head" else 1)
    kept = 2 * 2 * c.n_layer * T * c.n_embd * memory.FLOAT32  # resid_pre and the patched point, clean and corrupted
    lower = "the length of the prompts"
    return memory.Footprint((
        memory.Part("the clean and corrupted activations", kept, lower),
        memory.Part(f"a batch of {rows} patched runs", memory.forward_pass(c, rows, T, T, logits_positions=0)
                    + memory.kv_cache(c, rows, T), lower)))


def patch(model: GPT2, clean_ids, corrupted_ids, where: str, answer: int | None = None,
          wrong: int | None = None) -> PatchResult:
    """Activation patching of the corrupted prompt from the clean one (equal lengths), at `where` ("resid_pre",
    "attn_out", "mlp_out": each layer x position; "head": each layer x head, z at every position), measured by
    logit[answer] - logit[wrong] at the last position. answer defaults to the clean run's most likely next
    token, wrong to the corrupted run's (the clean runner-up if it is the answer). See the module's docstring."""
    clean_ids, corrupted_ids = prompt_ids(model, clean_ids), prompt_ids(model, corrupted_ids)  # [1, T] each
    if where not in PLACES:
        raise ValueError(f"where must be one of {', '.join(PLACES)}, got {where!r}.")
    if clean_ids.shape != corrupted_ids.shape:
        raise ValueError(f"the clean and corrupted prompts must have the same length, got {clean_ids.shape[1]} and "
                         f"{corrupted_ids.shape[1]} tokens; pad or reword one of them.")
    for name, value in (("answer", answer), ("wrong", wrong)):
        if value is not None and not is_integer(value):
            raise ValueError(f"{name} must be a token id (an integer), got {value!r}.")
        check_vocabulary([] if value is None else [value], model.config.vocab_size)
    c, T = model.config, clean_ids.shape[1]
    memory.check_fits(patch_footprint(model, T, where), "this patching sweep")
    names = {f"blocks.{l}.{point}" for l in range(c.n_layer) for point in ("hook_resid_pre", PLACES[where])}
    clean, corrupted = Hooks(keep=names), Hooks(keep=names)
    clean_logits = run_hooked(model, clean_ids, clean)[0, -1]  # [V]
    cached = model.new_cache(1, T)
    corrupted_logits = run_hooked(model, corrupted_ids, corrupted, cached)[0, -1]
    answer, wrong = answer_and_wrong(clean_logits, corrupted_logits, answer, wrong)
    u = model.params["wte"]["weight"][answer] - model.params["wte"]["weight"][wrong]  # [C]
    values = np.zeros((c.n_layer, c.n_head if where == "head" else T), dtype=np.float32)
    for p, joins in patched_rows(where, c.n_layer, T, c.n_head).items():
        metrics = model.final_norm(run_group(model, p, joins, corrupted.kept, cached, clean.kept, where)) @ u  # [R]
        for (l, index), metric in zip((row for joining in joins for row in joining), metrics):
            values[l, index] = metric
    return PatchResult(where=where, values=values, answer=answer, wrong=wrong,
                       clean_metric=float(clean_logits[answer] - clean_logits[wrong]),
                       corrupted_metric=float(corrupted_logits[answer] - corrupted_logits[wrong]),
                       clean_tokens=clean_ids[0].tolist(), corrupted_tokens=corrupted_ids[0].tolist())
