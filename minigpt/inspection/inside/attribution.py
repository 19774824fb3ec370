"""Direct logit attribution: the final residual stream at one position is a sum of what each part of the model
wrote into it, and the logit of a token is (nearly) linear in that sum, so each part gets its share.

    x_final = embed + pos_embed + sum_l (sum_h result_lh + b_O^l) + sum_l mlp_out_l
    logit   = ln_f(x_final) . u = sum_parts ((part - mean(part)) / scale) . (w_f * u)  +  b_f . u

with scale = ln_f's sqrt(var + eps), frozen at its value in the pass (TransformerLens' apply_ln_to_stack), u the
token's unembedding column (or the difference of two), w_f and b_f ln_f's weight and bias. The last term, ln_f's
bias, belongs to no part: it is the `leftover`. The parts and the leftover add up to the model's own logit, and
every call checks that they do (Elhage et al. 2021, "A Mathematical Framework for Transformer Circuits";
TransformerLens' get_full_resid_decomposition and decompose_resid, whose labels these are).

What this module is not: the pass (hooked.py, cache.py), or a picture of the parts (views/).
"""

from dataclasses import dataclass

import numpy as np

from ...core.checks import check_vocabulary, is_integer
from ...core.model import GPT2
from ..passes import prompt_ids
from .cache import ActivationCache, run_with_cache

# Shapes: L n_layer, H n_head, C n_embd, D head_dim, V vocabulary, N parts.

BY = ("head", "layer")
SUM_RTOL = 1e-5  # the parts' sum may differ from the logit by this much of the sum of their magnitudes


@dataclass(repr=False)
class Attribution:
    """Each part's share of one logit (or logit difference) at one position, and the leftover (ln_f's bias)."""
    tokens: list[int]  # [T] the prompt
    position: int  # the position read, from 0
    token: int
    versus: int | None  # the logit difference token - versus; None: the token's own logit
    labels: list[str]  # [N] "L0H3", "0_mlp_out", "embed", "pos_embed", "bias" (or "0_attn_out" by layer)
    contributions: np.ndarray  # [N] float32
    leftover: float  # b_f . u: the final layer norm's bias term
    logit: float  # what the parts add up to: the model's own logit, difference, or logit minus the mean logit
    by: str = "head"
    fold_value_biases: bool = False
    centered: bool = False

    @property
    def total(self) -> float:
        """The parts plus the leftover: equal to `logit` up to float32 rounding (checked when made)."""
        return float(self.contributions.sum(dtype=np.float32) + np.float32(self.leftover))

    def top(self, n: int = 10) -> list[tuple[str, float]]:
        """The n parts of largest magnitude, largest first."""
        order = np.argsort(-np.abs(self.contributions), kind="stable")[:n]
        return [(self.labels[i], float(self.contributions[i])) for i in order]

    def __repr__(self) -> str:
        what = f"{self.token} - {self.versus}" if self.versus is not None else f"{self.token}"
        best = ", ".join(f"{label} {value:+.3f}" for label, value in self.top(3))
        return (f"Attribution(logit {what} at position {self.position} = {self.logit:.4f} over "
                f"{len(self.labels)} parts by {self.by} + leftover {self.leftover:.4f}; largest: {best})")

    def to_json(self) -> dict:
        return {"tokens": self.tokens, "position": self.position, "token": self.token, "versus": self.versus,
                "by": self.by, "fold_value_biases": self.fold_value_biases, "centered": self.centered,
                "logit": self.logit, "leftover": self.leftover, "total": self.total,
                "parts": [{"label": label, "contribution": float(value)}
                          for label, value in zip(self.labels, self.contributions)]}


def value_bias_parts(model: GPT2, l: int):
    """Each head's constant output, (b_1 W_V + b_V) W_O[h]: what the head writes whatever it attends to, since
    its pattern's rows sum to 1 (b_1 is ln_1's bias). -> [H, C]"""
    layer, H = model.params["h"][l], model.config.n_head
    C = model.config.n_embd
    c_attn, w_o = layer["attn"]["c_attn"], layer["attn"]["c_proj"]["weight"]
    value = layer["ln_1"]["bias"] @ c_attn["weight"][:, 2 * C :] + c_attn["bias"][2 * C :]  # [C] = H heads x [D]
    return np.einsum("hd,hdc->hc", value.reshape(H, -1), w_o.reshape(H, -1, C))  # [H, C]


def head_parts(model: GPT2, cache: ActivationCache, t: int, fold_value_biases: bool) -> tuple[list[str], list]:
    """By head: every head's result, every MLP's output, embed, pos_embed, and bias (the attention output biases,
    with fold_value_biases the heads' constant parts too), in TransformerLens' order. -> labels, N x [C]"""
    L, H = model.config.n_layer, model.config.n_head
    heads = [cache[f"blocks.{l}.attn.hook_result"][t] for l in range(L)]  # L x [H, C]
    bias = sum(layer["attn"]["c_proj"]["bias"] for layer in model.params["h"])  # [C]
    if fold_value_biases:
        constants = [value_bias_parts(model, l) for l in range(L)]  # L x [H, C]
        heads = [h - k for h, k in zip(heads, constants)]
        bias = bias + sum(k.sum(axis=0) for k in constants)
    labels = [f"L{l}H{h}" for l in range(L) for h in range(H)] + [f"{l}_mlp_out" for l in range(L)]
    parts = [row for h in heads for row in h] + [cache[f"blocks.{l}.hook_mlp_out"][t] for l in range(L)]
    return labels + ["embed", "pos_embed", "bias"], parts + [cache["hook_embed"][t], cache["hook_pos_embed"][t], bias]


def layer_parts(model: GPT2, cache: ActivationCache, t: int) -> tuple[list[str], list]:
    """By layer: embed, pos_embed, then each layer's attention and MLP outputs, biases included."""
    labels, parts = ["embed", "pos_embed"], [cache["hook_embed"][t], cache["hook_pos_embed"][t]]
    for l in range(model.config.n_layer):
        labels += [f"{l}_attn_out", f"{l}_mlp_out"]
        parts += [cache[f"blocks.{l}.hook_attn_out"][t], cache[f"blocks.{l}.hook_mlp_out"][t]]
    return labels, parts


def unembedding(model: GPT2, token: int, versus: int | None, centered: bool):
    """u: the token's column of W_U = wte^T, minus the versus token's, or (centered) minus the mean column. -> [C]"""
    wte = model.params["wte"]["weight"]  # [V, C]
    if versus is not None:
        return wte[token] - wte[versus]
    return wte[token] - wte.mean(axis=0) if centered else wte[token].copy()


def check_sum(contributions, leftover, logit):
    """The parts plus the leftover must give the logit to float32 rounding; anything else is a bug, said so."""
    total = contributions.sum(dtype=np.float32) + leftover
    scale = np.abs(contributions).sum(dtype=np.float32) + abs(leftover) + abs(logit)
    if not abs(total - logit) <= SUM_RTOL * scale + 1e-6:
        raise ArithmeticError(f"the attribution's parts add up to {total:.6g}, not to the logit {logit:.6g}: a part "
                              "is missing or counted twice; please report this as a bug of minigpt.")


def attribute(model: GPT2, ids, token: int, versus: int | None = None, position: int = -1, by: str = "head",
              fold_value_biases: bool = False, centered: bool = False, cache: ActivationCache | None = None):
    """Direct logit attribution of `token` (minus `versus`) at `position` of the prompt ids [T]: the share of
    every head (L{l}H{h}), MLP ({l}_mlp_out), the embeddings and the attention output biases (bias), or with
    by="layer" of each layer's attention and MLP outputs; see the module's docstring for the formula.

    What "a head's contribution" means changes with the settings:
      - by default, everything the head writes, (pattern . (ln_1(x) W_V + b_V)) W_O[h], read in Hugging Face's
        basis: the parts add up to the logit the model gives;
      - fold_value_biases=True moves the head's constant (b_1 W_V + b_V) W_O[h], which it writes whatever it
        attends to, into `bias`: the head keeps only what depends on where it looks (TransformerLens' default);
      - centered=True (with no versus) measures the token against the vocabulary's mean logit: u - mean(u), as
        TransformerLens' center_unembed does; a part that pushes every token up alike counts zero.
    `cache` may be a run_with_cache of these ids (by head it needs attn.hook_result, by layer hook_attn_out).
    """
    ids = prompt_ids(model, ids)[0]  # [T]
    if by not in BY:
        raise ValueError(f"by must be 'head' or 'layer', got {by!r}.")
    for name, value in (("token", token), ("versus", versus)):
        if value is not None and not is_integer(value):
            raise ValueError(f"{name} must be a token id (an integer), got {value!r}.")
        check_vocabulary([] if value is None else [value], model.config.vocab_size)
    T = ids.size
    if not is_integer(position) or not -T <= position < T:
        raise ValueError(f"position must be an integer from {-T} to {T - 1} for a prompt of {T} tokens, "
                         f"got {position!r}.")
    t = int(position) % T
    if cache is None:
        names = ["hook_embed", "hook_pos_embed", "ln_final.hook_scale"] + [
            f"blocks.{l}.{point}" for l in range(model.config.n_layer)
            for point in ("attn.hook_result" if by == "head" else "hook_attn_out", "hook_mlp_out")]
        cache = run_with_cache(model, ids, names)
    labels, parts = head_parts(model, cache, t, fold_value_biases) if by == "head" else layer_parts(model, cache, t)
    stack = np.stack(parts)  # [N, C]
    stack -= stack.mean(axis=-1, keepdims=True)  # ln_f's centring, part by part
    u = unembedding(model, token, versus, centered)  # [C]
    ln_f = model.params["ln_f"]
    contributions = (stack / cache["ln_final.hook_scale"][t]) @ (ln_f["weight"] * u)  # [N]
    leftover = np.float32(ln_f["bias"] @ u)
    logits = cache.logits[t]  # [V]
    logit = logits[token] - (logits[versus] if versus is not None else logits.mean() if centered else 0)
    check_sum(contributions, leftover, np.float32(logit))
    versus = None if versus is None else int(versus)
    return Attribution(tokens=ids.tolist(), position=t, token=int(token), versus=versus,
                       labels=labels, contributions=contributions, leftover=float(leftover), logit=float(logit), by=by,
                       fold_value_biases=fold_value_biases, centered=centered and versus is None)
