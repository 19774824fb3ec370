"""Every intermediate of one forward pass, under TransformerLens' hook names: run_with_cache(model, ids) ->
an ActivationCache, read as cache["blocks.0.attn.hook_pattern"] or, as TransformerLens also lets you,
cache["pattern", 0].

    ids [T]     -> arrays without a batch axis: hook_resid_pre [T, C], attn.hook_pattern [H, T, T], ...
    ids [B, T]  -> the same arrays with the batch axis first: [B, T, C], [B, H, T, T], ...

The pass is hooked.run_hooked, the core's arithmetic step by step, so cache.logits are the model's own.
The memory guard prices the arrays kept before the pass starts; `names` keeps fewer of them.

What this module is not: the pass itself (hooked.py), or what is read from a cache (attribution.py, heads.py).
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from ...call import memory
from ...core.checks import plural
from ...core.config import GPTConfig
from ...core.model import GPT2
from ..passes import prompt_rows
from .hooked import BLOCK_POINTS, Hooks, point_shapes, run_hooked

# Shapes: B rows, T tokens, C n_embd, H n_head, D head_dim, M the MLP's width, V vocabulary.

SHORT = {"resid_pre": "hook_resid_pre", "resid_mid": "hook_resid_mid", "resid_post": "hook_resid_post",
         "attn_out": "hook_attn_out", "mlp_out": "hook_mlp_out", "q": "attn.hook_q", "k": "attn.hook_k",
         "v": "attn.hook_v", "pattern": "attn.hook_pattern", "z": "attn.hook_z", "result": "attn.hook_result",
         "pre": "mlp.hook_pre", "post": "mlp.hook_post"}  # TransformerLens' utils.get_act_name, for these points


def act_name(name: str, layer: int | None = None, sub: str | None = None) -> str:
    """A short name as TransformerLens' utils.get_act_name reads it -> the full one: ("pattern", 3) ->
    "blocks.3.attn.hook_pattern", ("scale", 3, "ln1") -> "blocks.3.ln1.hook_scale", ("scale",) ->
    "ln_final.hook_scale", ("embed",) -> "hook_embed"."""
    if layer is None:
        return {"embed": "hook_embed", "pos_embed": "hook_pos_embed", "scale": "ln_final.hook_scale"}.get(name, name)
    if name == "scale":
        return f"blocks.{layer}.{sub or 'ln1'}.hook_scale"
    return f"blocks.{layer}.{SHORT.get(name, name)}"


@dataclass(repr=False)
class ActivationCache(Mapping):
    """The arrays of one pass by hook name (a Mapping: cache[name], `name in cache`, cache.keys()), the logits,
    and the tokens they were computed from. Without a batch axis when the ids had none."""
    arrays: dict[str, np.ndarray]  # hook name -> float32 array, in the pass's order
    logits: np.ndarray  # [T, V] or [B, T, V] float32: the model's own
    tokens: np.ndarray  # [T] or [B, T] int64

    def __getitem__(self, key) -> np.ndarray:
        name = act_name(*key) if isinstance(key, tuple) else key
        if name not in self.arrays:
            raise KeyError(f"{name!r} is not in this cache ({plural(len(self.arrays), 'array')}); give run_with_cache "
                           f"names that include it, or one of its keys such as {next(iter(self.arrays), '')!r}.")
        return self.arrays[name]

    def __iter__(self):
        return iter(self.arrays)

    def __len__(self) -> int:
        return len(self.arrays)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name} {list(a.shape)}" for name, a in list(self.arrays.items())[:3])
        more = ", ..." if len(self.arrays) > 3 else ""
        arrays = plural(len(self.arrays), "array")
        return f"ActivationCache({arrays} over tokens {list(self.tokens.shape)}: {shown}{more})"

    def to_json(self) -> dict:
        """The cache as JSON describes it: the tokens, each name's shape, the logits' shape (not the numbers)."""
        return {"tokens": self.tokens.tolist(), "shapes": {name: list(a.shape) for name, a in self.arrays.items()},
                "logits_shape": list(self.logits.shape)}


def point_names(config: GPTConfig) -> list[str]:
    """Every name a cache can hold, in the pass's order."""
    return list(point_shapes(config, 1, 1))


def chosen_names(config: GPTConfig, names) -> list[str]:
    """The names `names` selects: every name (None), those a callable accepts, or a list of names, checked."""
    every = point_names(config)
    if names is None:
        return every
    if callable(names):
        return [name for name in every if names(name)]
    names = [names] if isinstance(names, str) else list(names)
    unknown = [name for name in names if name not in every]
    if unknown:
        raise ValueError(f"{unknown[0]!r} is not a point of this model's pass; give names such as "
                         f"'blocks.0.{BLOCK_POINTS[0]}' or 'blocks.{config.n_layer - 1}.attn.hook_pattern'.")
    return [name for name in every if name in set(names)]


def cache_footprint(config: GPTConfig, rows: int, length: int, names: list[str]) -> memory.Footprint:
    """What run_with_cache holds at its peak: the arrays kept, the pass (logits of every position) and its
    KV cache."""
    shapes = point_shapes(config, rows, length)
    kept = sum(math.prod(shapes[name]) for name in names) * memory.FLOAT32
    lower = ["names (fewer points kept)", "the length or the number of the prompts"]
    return memory.Footprint((
        memory.Part(f"the activation cache ({plural(len(names), 'array')})", kept, lower),
        memory.Part(f"the forward pass over {rows} x {length} tokens",
                    memory.forward_pass(config, rows, length, length, logits_positions=length), lower[1:]),
        memory.Part("the KV cache", memory.kv_cache(config, rows, length), lower[1:])))


def run_with_cache(model: GPT2, ids, names: Iterable[str] | Callable[[str], bool] | None = None) -> ActivationCache:
    """Run ids [T] (or a batch [B, T] of equal lengths) through the model, keeping every intermediate under
    TransformerLens' hook names (hooked.py lists them), or those `names` selects: a list of names, or a
    function name -> bool (TransformerLens' names_filter). The memory guard refuses, before the pass, a
    cache that would not fit. cache.logits are the model's own logits, to float32 rounding (the same
    operations as model(ids))."""
    ids, single = prompt_rows(model, ids)
    kept = chosen_names(model.config, names)
    memory.check_fits(cache_footprint(model.config, *ids.shape, kept), "this activation cache")
    hooks = Hooks(keep=set(kept))
    logits = run_hooked(model, ids, hooks)  # [B, T, V]
    arrays = {name: hooks.kept[name] for name in kept}
    if single:
        return ActivationCache({name: a[0] for name, a in arrays.items()}, logits[0], ids[0])
    return ActivationCache(arrays, logits, ids)
