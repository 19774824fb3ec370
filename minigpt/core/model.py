"""GPT-2's forward pass in NumPy: token ids -> embeddings -> transformer blocks -> logits.

The model of Radford et al. 2019, "Language Models are Unsupervised Multitask Learners", as OpenAI
released it and as Hugging Face transformers' GPT2LMHeadModel computes it (our reference for numbers):
pre-norm blocks, learned position embeddings, the tanh approximation of GELU, and an output layer tied
to the token embeddings. Everything is float32.

Parameters are nested dicts that mirror the checkpoint's names (`h[0]["attn"]["c_attn"]["weight"]`
is the tensor `h.0.attn.c_attn.weight`), so each function below reads like the paper. GPT-2's weights
were saved from a TensorFlow "Conv1D", so every weight matrix is [in, out]: a linear layer is `x @ W + b`.

What this module is not: it does not read files (weights/) or choose tokens (chain.py).
"""

import math
from dataclasses import dataclass

import numpy as np

from .checks import check_vocabulary
from .config import GPTConfig

# Shapes: B batch, T new tokens, S positions attended to (cache + new), C n_embd, H n_head, D head_dim,
# M the MLP's width, V vocab_size.


def layer_norm(x, weight, bias, eps):
    """(x - mean) / sqrt(var + eps) * weight + bias over the last axis (Ba et al. 2016)."""
    centered = x - x.mean(axis=-1, keepdims=True)  # [B, T, C]
    var = (centered * centered).mean(axis=-1, keepdims=True)  # [B, T, 1]
    centered /= np.sqrt(var + eps)
    return centered * weight + bias  # [B, T, C]


def gelu(x):
    """GELU, tanh approximation (Hendrycks & Gimpel 2016), as GPT-2 uses it ("gelu_new"):

        0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))

    computed from the inside out in one temporary y, since x is the MLP's widest array. The constants are
    Python floats: a NumPy float64 scalar would turn every later matmul into float64. x * x * x, because
    NumPy's float32 x**3 calls pow() and is two orders of magnitude slower.
    """
    y = x * x * x  # x^3
    y *= 0.044715
    y += x
    y *= math.sqrt(2.0 / math.pi)
    np.tanh(y, out=y)
    y += 1.0
    y *= x
    y *= 0.5
    return y


def softmax(x, out=None):
    """exp(x - max) / sum(exp(x - max)) over the last axis; -inf entries get probability 0.
    out=x computes it in x's own memory.

    The attention scores [B, H, T, S] are the largest temporary of a long prompt's forward pass; working
    in place saves allocating and filling two more arrays of that size (numerics.softmax, which guards
    rows of only -inf, cannot: it makes x - max and exp as new arrays). No row here is all -inf, since
    every query may look at itself, so the guard is not needed."""
    e = np.subtract(x, x.max(axis=-1, keepdims=True), out=out)
    np.exp(e, out=e)
    e /= e.sum(axis=-1, keepdims=True)
    return e


def linear(x, weight, bias):
    """x @ W + b, with the leading axes folded so that it is a single matrix product."""
    y = x.reshape(-1, x.shape[-1]) @ weight  # [B*T, in] @ [in, out] -> [B*T, out]
    y += bias
    return y.reshape(*x.shape[:-1], -1)  # [B, T, out]


def attention(q, k, v, mask):
    """softmax(q k^T / sqrt(D), masked) v (Vaswani et al. 2017). mask is True where a query may look.
    Returns the output [B, H, T, D] and the attention weights [B, H, T, S] (each row sums to 1)."""
    q = q * (1.0 / math.sqrt(q.shape[-1]))  # scaling q ([T, D]) costs less than scaling the scores ([T, S])
    scores = q @ k.swapaxes(-1, -2)  # [B, H, T, D] @ [B, H, D, S] -> [B, H, T, S]
    np.copyto(scores, -np.inf, where=~mask)  # mask [B, 1, T, S]
    weights = softmax(scores, out=scores)  # [B, H, T, S], in the scores' own memory
    return weights @ v, weights  # [B, H, T, S] @ [B, H, S, D] -> [B, H, T, D]


def self_attention(x, c_attn, c_proj, n_head, k_cache, v_cache, start, mask):
    """Multi-head causal self-attention. The new keys and values are written into the cache at
    [start, start + T), and the queries attend to everything the cache holds up to there.
    Returns the output [B, T, C] and the attention weights [B, H, T, S]."""
    B, T, C = x.shape
    qkv = linear(x, **c_attn)  # [B, T, 3C]
    q, k, v = qkv.reshape(B, T, 3, n_head, C // n_head).transpose(2, 0, 3, 1, 4)  # 3 x [B, H, T, D]
    k_cache[:, :, start : start + T] = k
    v_cache[:, :, start : start + T] = v
    out, weights = attention(q, k_cache[:, :, : start + T], v_cache[:, :, : start + T], mask)  # [B, H, T, D]
    out = out.transpose(0, 2, 1, 3).reshape(B, T, C)  # merge heads: [B, T, H, D] -> [B, T, C]
    return linear(out, **c_proj), weights  # [B, T, C], [B, H, T, S]


def mlp(x, c_fc, c_proj):
    """Position-wise feed-forward: gelu(x W1 + b1) W2 + b2."""
    return linear(gelu(linear(x, **c_fc)), **c_proj)  # [B, T, C] -> [B, T, M] -> [B, T, C]


def block(x, ln_1, attn, ln_2, mlp_params, n_head, eps, k_cache, v_cache, start, mask):
    """One pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x)).
    Returns the new residual stream [B, T, C] and the block's attention weights [B, H, T, S]."""
    attended, weights = self_attention(layer_norm(x, **ln_1, eps=eps), **attn, n_head=n_head,
                                       k_cache=k_cache, v_cache=v_cache, start=start, mask=mask)
    x = x + attended
    return x + mlp(layer_norm(x, **ln_2, eps=eps), **mlp_params), weights  # [B, T, C]


def unembed(x, w_out):
    """Logits x @ wte^T. GPT-2's output layer is its token embedding matrix (tied weights), held here
    as w_out = wte^T, a contiguous [C, V], so that the widest matmul of all reads W along its long axis."""
    return (x.reshape(-1, x.shape[-1]) @ w_out).reshape(*x.shape[:-1], -1)  # [B*T, C] @ [C, V] -> [B, T, V]


def left_pad(prompts: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Prompts of different lengths -> ids [B, T] and attention_mask [B, T], padding on the left so
    that every row's last token sits in the last column, where the next token is read off."""
    T = max(len(p) for p in prompts)
    ids = np.full((len(prompts), T), pad_id, dtype=np.int64)
    mask = np.zeros((len(prompts), T), dtype=np.int64)
    for row, prompt in enumerate(prompts):
        ids[row, T - len(prompt) :] = prompt
        mask[row, T - len(prompt) :] = 1
    return ids, mask


def unpad(ids, attention_mask) -> list[list[int]]:
    """An already padded batch ids [B, T] with its attention_mask [B, T] (1 real, 0 padding) -> its prompts."""
    ids, mask = np.asarray(ids), np.asarray(attention_mask)
    if ids.ndim != 2 or mask.shape != ids.shape:
        raise ValueError(f"attention_mask must have the shape of the batch prompt_ids [B, T]; got {mask.shape} for "
                         f"{ids.shape}.")
    if not np.isin(mask, (0, 1)).all():
        raise ValueError("attention_mask must hold only 1 (a real token) and 0 (padding).")
    return [row[m == 1].tolist() for row, m in zip(ids, mask)]


def position_ids(attention_mask):
    """Positions count only real tokens, as transformers' generate() does for left padding: a row's first
    real token is at position 0, whatever padding comes before it (cumsum(mask) - 1). A padding slot gets
    position 1, the value transformers fills in; it never matters, since no real token attends to padding."""
    positions = np.cumsum(attention_mask, axis=-1) - 1  # [B, S]
    return np.where(attention_mask == 1, positions, 1)


def nest(flat: dict) -> dict:
    """{"h.0.attn.c_attn.weight": w} -> {"h": [{"attn": {"c_attn": {"weight": w}}}]}: parameters that
    mirror the checkpoint, so that `block(x, **h[0])` reads like the model."""
    tree = {}
    for name, value in flat.items():
        *parents, leaf = name.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    tree["h"] = [tree["h"][str(i)] for i in range(len(tree["h"]))]
    return tree


PREFILL_SCORES_BYTES = 2**28  # one piece of a prompt's forward pass keeps its attention scores under 256 MiB


def prefill_chunk(config: GPTConfig, rows: int, length: int) -> int:
    """How many positions of a prompt [rows, length] go through the model at a time: all of them, unless their
    attention scores [rows, H, T, length] float32 would pass PREFILL_SCORES_BYTES. It depends on the shapes
    alone, never on the machine, so the same call gives the same numbers everywhere."""
    per_position = rows * config.n_head * length * 4
    return max(1, min(length, PREFILL_SCORES_BYTES // max(per_position, 1)))


class KVCache:
    """Preallocated keys and values of every layer: prefill writes the prompt, each step appends one
    token in place, so no step copies what earlier steps computed."""

    def __init__(self, config: GPTConfig, batch_size: int, max_length: int):
        shape = (config.n_layer, batch_size, config.n_head, max_length, config.head_dim)
        self.k = np.zeros(shape, dtype=np.float32)  # [L, B, H, max_length, D]
        self.v = np.zeros(shape, dtype=np.float32)
        self.mask = np.zeros((batch_size, max_length), dtype=np.int64)  # 1 where a real token sits
        self.length = 0  # positions filled so far
        self.max_length = max_length

    @property
    def batch_size(self) -> int:
        return self.k.shape[1]

    def reorder(self, indices):
        """Keep batch rows `indices` (in that order, repeats allowed): beam search's reshuffle.
        When the batch size stays, only the rows that change are written, and only their filled positions."""
        indices = np.asarray(indices, dtype=np.int64)
        if len(indices) != self.batch_size:  # a new batch size (contrastive search's copies): new arrays
            self.k, self.v, self.mask = self.k[:, indices], self.v[:, indices], self.mask[indices]
            return
        rows = np.flatnonzero(indices != np.arange(len(indices)))  # a beam that continues itself stays put
        sources, n = indices[rows], self.length
        self.k[:, rows, :, :n] = self.k[:, sources, :, :n]  # the right side is gathered first, then written
        self.v[:, rows, :, :n] = self.v[:, sources, :, :n]
        self.mask[rows] = self.mask[sources]

    def crop(self, length: int):
        """Forget every position from `length` on (speculative decoding drops rejected tokens)."""
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot crop a cache of length {self.length} to {length}.")
        self.mask[:, length:] = 0
        self.length = length


@dataclass
class ForwardResult:
    logits: np.ndarray  # [B, T, V] float32, or [B, 1, V] with last_only
    hidden: np.ndarray  # [B, T, C] float32: the final hidden state, after ln_f
    # With inspect=True (None otherwise), every stage the logit lens and the attention plots look at:
    residuals: list | None = None  # n_layer + 1 arrays [B, T, C]: the embeddings, then the stream after each block
    patterns: list | None = None  # n_layer arrays [B, H, T, S]: each block's attention weights over S positions


class GPT2:
    """GPT-2 with its weights. `model(ids)` gives logits; `model.forward` works through a KV cache."""

    def __init__(self, config: GPTConfig, params: dict):
        # The output layer is tied to the token embeddings: lm_head.weight = wte^T, kept once as a contiguous
        # [C, V] ([in, out], like every other weight) with wte [V, C] a view of the same bytes. No copy
        # when the loader stored wte that way (checkpoint.read_transposed).
        w_out = np.ascontiguousarray(params["wte"]["weight"].T)  # [C, V]
        self.config = config
        self.params = params | {"wte": {"weight": w_out.T}, "lm_head": {"weight": w_out}}

    def __repr__(self):
        c = self.config
        return (f"GPT2(n_layer={c.n_layer}, n_head={c.n_head}, n_embd={c.n_embd}, vocab_size={c.vocab_size}, "
                f"n_positions={c.n_positions})")

    def __call__(self, ids, attention_mask=None):
        """Logits for every position: ids [T] -> [T, V]; ids [B, T] -> [B, T, V] (left padding in attention_mask)."""
        ids = np.asarray(ids)
        single = ids.ndim == 1
        if single:
            ids = ids[None]
        if ids.ndim != 2:
            raise ValueError("ids must be a list of token ids [T] or a batch [B, T], got an array of shape "
                             f"{ids.shape}.")
        cache = self.new_cache(ids.shape[0], ids.shape[1])
        logits = self.forward(ids, cache, attention_mask).logits
        return logits[0] if single else logits

    def new_cache(self, batch_size: int, max_length: int) -> KVCache:
        if max_length > self.config.n_positions:
            raise ValueError(f"{max_length} positions exceed the model's context of "
                             f"n_positions={self.config.n_positions} tokens.")
        return KVCache(self.config, batch_size, max_length)

    def forward(self, ids, cache: KVCache, attention_mask=None, last_only=False, inspect=False) -> ForwardResult:
        """Run T new tokens per row through the model, appending them to the cache.

        ids [B, T]; attention_mask [B, T] (1 real, 0 padding) for these new tokens, None for all real.
        inspect=True also returns the residual stream after every block and every block's attention weights.
        """
        x, residuals, attention_weights = self.residual_stream(ids, cache, attention_mask, inspect)
        if last_only:
            x = x[:, -1:]
        hidden = self.final_norm(x)  # [B, T, C]
        logits = self.unembed(hidden)  # [B, T, V]
        if not inspect:
            return ForwardResult(logits=logits, hidden=hidden)
        return ForwardResult(logits=logits, hidden=hidden, residuals=residuals, patterns=attention_weights)

    def residual_stream(self, ids, cache: KVCache, attention_mask=None, inspect=False) -> tuple:
        """The blocks of forward(): the residual stream [B, T, C] after the last block (before ln_f), and with
        inspect the stream after every block and every block's attention weights (else empty lists)."""
        p, c = self.params, self.config
        ids = self._check_ids(ids, cache)
        B, T = ids.shape
        start = cache.length
        cache.mask[:, start : start + T] = 1 if attention_mask is None else self._check_mask(attention_mask, ids.shape)
        seen = cache.mask[:, : start + T]  # [B, S]
        # Query t (at cache slot start + t) may look at slot s if s <= start + t and s holds a real token.
        # Every query may look at itself, so a padding row is never all -inf (its output is unused).
        slots = np.arange(start + T)
        causal = slots[None, :] <= (start + np.arange(T))[:, None]  # [T, S]
        mask = (causal & (seen[:, None, :] == 1)) | (slots[None, :] == (start + np.arange(T))[:, None])
        mask = mask[:, None]  # [B, 1, T, S]

        positions = position_ids(seen)[:, start:]  # [B, T]
        x = p["wte"]["weight"][ids] + p["wpe"]["weight"][positions]  # [B, T, C]
        residuals, attention_weights = [x], []
        for i, layer in enumerate(p["h"]):
            x, weights = block(x, layer["ln_1"], layer["attn"], layer["ln_2"], layer["mlp"], c.n_head,
                               c.layer_norm_epsilon, cache.k[i], cache.v[i], start, mask)
            if inspect:
                residuals.append(x)
                attention_weights.append(weights)
            del weights  # this layer's [B, H, T, S] goes before the next layer makes its own
        cache.length = start + T
        return x, (residuals if inspect else []), attention_weights

    def prefill(self, ids, cache: KVCache, attention_mask=None) -> np.ndarray:
        """The next-token logits [B, V] after prompts ids [B, T], run through the model in pieces of
        prefill_chunk() positions. Each piece attends to the pieces before it through the cache, so the result
        is one pass's, up to float32 rounding (sums taken in another order), as a decode step's is."""
        ids = self._check_ids(ids, cache)
        mask = np.ones(ids.shape, dtype=np.int64) if attention_mask is None else self._check_mask(attention_mask,
                                                                                                   ids.shape)
        chunk = prefill_chunk(self.config, ids.shape[0], cache.length + ids.shape[-1])
        for start in range(0, ids.shape[-1], chunk):
            logits = self.forward(ids[:, start : start + chunk], cache, mask[:, start : start + chunk],
                                  last_only=True).logits
        return logits[:, -1]  # [B, V]

    def final_norm(self, x):
        """The last layer norm, ln_f: the residual stream [..., C] -> the final hidden state [..., C]."""
        return layer_norm(x, **self.params["ln_f"], eps=self.config.layer_norm_epsilon)

    def unembed(self, hidden):
        """Logits [..., V] from final hidden states [..., C], through the output matrix tied to wte."""
        return unembed(hidden, self.params["lm_head"]["weight"])

    def read_out(self, residual):
        """The logit lens (nostalgebraist 2020): logits [..., V] read from any layer's residual stream [..., C]
        as if it were the last, unembed(ln_f(residual)). At the last layer this is the model's own logits."""
        return self.unembed(self.final_norm(residual))

    def _check_ids(self, ids, cache):
        ids = np.asarray(ids)
        if ids.ndim != 2 or ids.shape[1] == 0:
            raise ValueError(f"ids must be a non-empty batch [B, T] of token ids, got shape {ids.shape}.")
        if ids.dtype.kind not in "iu":
            raise ValueError(f"token ids must be integers (at most int64), got dtype {ids.dtype}.")
        check_vocabulary(ids, self.config.vocab_size)
        if ids.shape[0] != cache.batch_size:
            raise ValueError(f"ids have batch size {ids.shape[0]} but the cache holds {cache.batch_size} rows.")
        if cache.length + ids.shape[1] > cache.max_length:
            raise ValueError(f"{cache.length + ids.shape[1]} tokens exceed the cache's {cache.max_length} positions "
                             f"(the model's context is n_positions={self.config.n_positions}).")
        return ids.astype(np.int64, copy=False)

    @staticmethod
    def _check_mask(attention_mask, shape):
        mask = np.asarray(attention_mask)
        if mask.shape != shape:
            raise ValueError(f"attention_mask has shape {mask.shape}, but ids have shape {shape}.")
        if not np.isin(mask, (0, 1)).all():
            raise ValueError("attention_mask must hold only 0 (padding) and 1 (real token).")
        return mask
