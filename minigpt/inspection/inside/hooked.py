"""The forward pass of core/model.py again, step by step, with every intermediate at a named point: the names
TransformerLens gives them (`blocks.3.attn.hook_z`), so that a tutorial's names work here unchanged.

    embed    hook_embed, hook_pos_embed                      x = wte[ids] + wpe[positions]
    block l  blocks.{l}.hook_resid_pre                       x
             ln1.hook_scale, attn.hook_q/k/v, hook_pattern   sqrt(var + eps); the heads' q k v; softmax(q k^T / sqrt(D))
             attn.hook_z, attn.hook_result, hook_attn_out    pattern v; z_h W_O[h] (no bias); sum_h z_h W_O[h] + b_O
             hook_resid_mid, ln2.hook_scale                  x + attn_out
             mlp.hook_pre, mlp.hook_post, hook_mlp_out       x W_fc + b_fc; gelu(pre); post W_proj + b_proj
             hook_resid_post                                 resid_mid + mlp_out
    final    ln_final.hook_scale                             then logits = ln_f(x) W_E^T

A Hooks object says which points a pass keeps and which it edits: at each point the pass hands the array to
Hooks, and goes on with what it gets back, so one pass both records (run_with_cache) and patches (patching.py).
The arithmetic is the core's own (linear, attention, gelu, unembed, a layer norm written as layer_norm is), in
the same order, so a pass with no edit gives the model's own logits to the last bit.

What this module is not: the forward pass that generation runs (core/model.py stays as plain as it is).
"""

from dataclasses import dataclass, field
from typing import Callable, Container

import numpy as np

from ...core.config import GPTConfig
from ...core.model import GPT2, KVCache, attention, gelu, linear

# Shapes: B rows, T new positions, S positions attended to (cache + new), C n_embd, H n_head, D head_dim,
# M the MLP's width, V vocabulary, L n_layer.

BLOCK_POINTS = ("hook_resid_pre", "ln1.hook_scale", "attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_pattern",
                "attn.hook_z", "attn.hook_result", "hook_attn_out", "hook_resid_mid", "ln2.hook_scale", "mlp.hook_pre",
                "mlp.hook_post", "hook_mlp_out", "hook_resid_post")


def point_shapes(config: GPTConfig, rows: int, length: int) -> dict[str, tuple[int, ...]]:
    """Every named point of a pass over ids [rows, length], in the pass's order, with its shape (batch axis first)."""
    B, T, C, H, D, M = rows, length, config.n_embd, config.n_head, config.head_dim, config.d_mlp
    block = {"hook_resid_pre": (B, T, C), "ln1.hook_scale": (B, T, 1), "attn.hook_q": (B, T, H, D),
             "attn.hook_k": (B, T, H, D), "attn.hook_v": (B, T, H, D), "attn.hook_pattern": (B, H, T, T),
             "attn.hook_z": (B, T, H, D), "attn.hook_result": (B, T, H, C), "hook_attn_out": (B, T, C),
             "hook_resid_mid": (B, T, C), "ln2.hook_scale": (B, T, 1), "mlp.hook_pre": (B, T, M),
             "mlp.hook_post": (B, T, M), "hook_mlp_out": (B, T, C), "hook_resid_post": (B, T, C)}
    shapes = {"hook_embed": (B, T, C), "hook_pos_embed": (B, T, C)}
    for l in range(config.n_layer):
        shapes |= {f"blocks.{l}.{name}": block[name] for name in BLOCK_POINTS}
    return shapes | {"ln_final.hook_scale": (B, T, 1)}


@dataclass
class Hooks:
    """Which named points a pass keeps (`keep`), and which it edits: edits[name](array) -> the array the pass
    goes on with (it may change the array in place: each is the pass's own). `kept` fills up as the pass runs."""
    keep: Container[str] = ()
    edits: dict[str, Callable[[np.ndarray], np.ndarray]] = field(default_factory=dict)
    kept: dict[str, np.ndarray] = field(default_factory=dict)

    def wants(self, name: str) -> bool:
        return name in self.keep or name in self.edits

    def __call__(self, name: str, x: np.ndarray) -> np.ndarray:
        edit = self.edits.get(name)
        if edit is not None:
            x = edit(x)
        if name in self.keep:
            self.kept[name] = x
        return x


def normalize(x, ln: dict, eps: float, hooks: Hooks, name: str):
    """layer_norm of core/model.py, (x - mean) / scale * w + b with scale = sqrt(var + eps) [B, T, 1] at `name`
    (TransformerLens' hook_scale), the same operations in the same order (Ba et al. 2016)."""
    centered = x - x.mean(axis=-1, keepdims=True)  # [B, T, C]
    scale = hooks(name, np.sqrt((centered * centered).mean(axis=-1, keepdims=True) + eps))  # [B, T, 1]
    return centered / scale * ln["weight"] + ln["bias"]  # [B, T, C]


def head_results(z, c_proj: dict, n_head: int):
    """Each head's share of the attention output before its bias, result_h = z_h W_O[h] (Elhage et al. 2021,
    "A Mathematical Framework for Transformer Circuits"): W_O's rows h*D..(h+1)*D. sum_h result_h + b_O =
    attn_out. z [B, T, H, D] -> [B, T, H, C]"""
    w = c_proj["weight"].reshape(n_head, -1, c_proj["weight"].shape[-1])  # [C, C] -> [H, D, C]
    per_head = z.transpose(0, 2, 1, 3) @ w  # [B, H, T, D] @ [H, D, C] -> [B, H, T, C]
    return per_head.transpose(0, 2, 1, 3)  # [B, T, H, C]


def attention_step(h, attn: dict, n_head: int, k_cache, v_cache, start: int, mask, hooks: Hooks, at: str):
    """self_attention of core/model.py with its q, k, v, pattern, z and per-head results at named points.
    h is ln_1's output [B, T, C]; returns attn_out [B, T, C] (before its point)."""
    B, T, C = h.shape
    qkv = linear(h, **attn["c_attn"]).reshape(B, T, 3, n_head, C // n_head)  # [B, T, 3, H, D]
    q, k, v = (hooks(at + name, qkv[:, :, i]) for i, name in enumerate(("hook_q", "hook_k", "hook_v")))  # [B, T, H, D]
    k_cache[:, :, start : start + T] = k.transpose(0, 2, 1, 3)  # [B, H, T, D]
    v_cache[:, :, start : start + T] = v.transpose(0, 2, 1, 3)
    values = v_cache[:, :, : start + T]  # [B, H, S, D]
    z, pattern = attention(q.transpose(0, 2, 1, 3), k_cache[:, :, : start + T], values, mask)  # [B, H, T, D]
    if hooks.wants(at + "hook_pattern"):
        edited = hooks(at + "hook_pattern", pattern)  # [B, H, T, S]
        z = z if edited is pattern else edited @ values
    z = hooks(at + "hook_z", z.transpose(0, 2, 1, 3))  # [B, T, H, D]
    if hooks.wants(at + "hook_result"):
        hooks(at + "hook_result", head_results(z, attn["c_proj"], n_head))  # [B, T, H, C]
    return linear(z.reshape(B, T, C), **attn["c_proj"])  # merge heads, then W_O: [B, T, C]


def block_step(x, layer: dict, l: int, config: GPTConfig, k_cache, v_cache, start: int, mask, hooks: Hooks):
    """block of core/model.py, x + attn(ln_1(x)) then x + mlp(ln_2(x)), each intermediate at its point.
    x [B, T, C] -> [B, T, C]; k_cache, v_cache are this layer's [B, H, max_length, D]."""
    at, eps = f"blocks.{l}.", config.layer_norm_epsilon
    x = hooks(at + "hook_resid_pre", x)
    h = normalize(x, layer["ln_1"], eps, hooks, at + "ln1.hook_scale")
    attended = attention_step(h, layer["attn"], config.n_head, k_cache, v_cache, start, mask, hooks, at + "attn.")
    x = hooks(at + "hook_resid_mid", x + hooks(at + "hook_attn_out", attended))
    h = normalize(x, layer["ln_2"], eps, hooks, at + "ln2.hook_scale")
    pre = hooks(at + "mlp.hook_pre", linear(h, **layer["mlp"]["c_fc"]))  # [B, T, M]
    post = hooks(at + "mlp.hook_post", gelu(pre))  # gelu leaves pre as it was
    return hooks(at + "hook_resid_post", x + hooks(at + "hook_mlp_out", linear(post, **layer["mlp"]["c_proj"])))


def causal_mask(start: int, length: int):
    """Query t (at slot start + t) may look at slots 0..start + t: [1, 1, T, S], every token real."""
    slots = np.arange(start + length)
    return (slots[None, :] <= (start + np.arange(length))[:, None])[None, None]


def embed_step(model: GPT2, ids, start: int, hooks: Hooks):
    """The residual stream's start, wte[ids] + wpe[positions], each at its point. ids [B, T] -> [B, T, C]"""
    p = model.params
    positions = np.broadcast_to(np.arange(start, start + ids.shape[1]), ids.shape)  # [B, T], every token real
    return hooks("hook_embed", p["wte"]["weight"][ids]) + hooks("hook_pos_embed", p["wpe"]["weight"][positions])


def final_step(model: GPT2, x, hooks: Hooks):
    """ln_f with its scale at ln_final.hook_scale, then the tied unembedding: [B, T, C] -> logits [B, T, V]."""
    hidden = normalize(x, model.params["ln_f"], model.config.layer_norm_epsilon, hooks, "ln_final.hook_scale")
    return model.unembed(hidden)


def run_hooked(model: GPT2, ids, hooks: Hooks, cache: KVCache | None = None):
    """The whole pass over ids [B, T] (every token real), appended to `cache` (a new one if None), each
    intermediate handed to hooks. -> logits [B, T, V]"""
    ids = np.asarray(ids, dtype=np.int64)
    cache = model.new_cache(*ids.shape) if cache is None else cache
    start, T = cache.length, ids.shape[1]
    mask = causal_mask(start, T)
    cache.mask[:, start : start + T] = 1
    x = embed_step(model, ids, start, hooks)  # [B, T, C]
    for l, layer in enumerate(model.params["h"]):
        x = block_step(x, layer, l, model.config, cache.k[l], cache.v[l], start, mask, hooks)
    cache.length = start + T
    return final_step(model, x, hooks)  # [B, T, V]
