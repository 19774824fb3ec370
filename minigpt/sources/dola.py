"""DoLa, decoding by contrasting layers (Chuang et al. 2024, "DoLa: Decoding by Contrasting Layers
Improves Factuality in Large Language Models", ICLR; arXiv:2309.03883): a source of scores (model_scores.py).

A fact the model knows tends to emerge late: an early ("premature") layer, read out as if it were the
last, does not yet predict it, the final ("mature") layer does. DoLa scores each token by how much
the last layers raised its log-probability:

    M = the chosen premature layer: the candidate j (premature_layers) whose read-out distribution q_j
        differs most from the final one q_N (layer_divergence), chosen afresh at every step for every row
    score(x) = log q_N(x) - log q_M(x)   if q_N(x) >= alpha * max_y q_N(y)    (alpha = 0.1)
               -inf                      otherwise (the "adaptive plausibility constraint")

The processor chain (the paper pairs DoLa with repetition_penalty=1.2) and greedy choice or sampling
then work on these scores; the trace records M as Step.state["dola_layer"]. Matches transformers'
`GenerationMixin._dola_decoding` (generate(dola_layers=...)) token for token, but for the differences below.

What this module is not: a strategy (strategies/tokenwise.py uses it) or the processor chain.

Differences from transformers:
- the reference is 4.46's `_dola_decoding`; 5.x moved it to a hub "custom_generate" repository.
- layers are read out through ln_f by default (dola_read_out="lens"); transformers reads them "raw".
- the premature layer is chosen per row, as in the paper; transformers averages over the batch, one for all.
- a dola_layers list naming a layer outside [0, N) is refused; transformers drops such layers silently.
"""

import numpy as np

from ..core.checks import OptionError, is_integer
from ..core.link import NEG_INF, Option, Trait
from ..core.numerics import log_softmax
from ..links.values import refuse
from .model_scores import Batch, ScoreSource


def as_dola_layers(option: Option, value):
    """dola_layers as given -> "low", "high" or a tuple of layer indices; ValueError for anything else."""
    if isinstance(value, str) and value in ("low", "high"):
        return value
    if isinstance(value, (list, tuple, range)) and value and all(is_integer(j) and j >= 0 for j in value):
        return tuple(int(j) for j in value)
    raise refuse(option, value)


def parse_dola_layers(text: str):
    """ "low", "high" or "2,4,6" -> "low", "high" or [2, 4, 6]."""
    if text in ("low", "high"):
        return text
    try:
        return [int(j) for j in text.split(",") if j.strip()]
    except ValueError:
        raise ValueError(f"expected low, high or comma-separated layer indices such as 2,4,6, got {text!r}") from None


def as_read_out(option: Option, value):
    if value not in ("raw", "lens"):
        raise refuse(option, value)
    return value


DOLA_LAYERS = Option("dola_layers", None, "DoLa: contrast the final layer with these premature layers",
                     "guidance and DoLa", Trait.CHOOSES, kind=object, valid="'low', 'high' or a non-empty list of "
                     "layer indices >= 0 (0 is the embeddings), such as [2, 4]", normalise=as_dola_layers,
                     parse=parse_dola_layers, metavar="low|high|2,4,6")
DOLA_READ_OUT = Option("dola_read_out", None, "DoLa: read premature layers through ln_f (lens, the default) or "
                       "without it (raw, as transformers 4.46)", "guidance and DoLa", Trait.CHOOSES, kind=object,
                       valid="one of raw, lens", normalise=as_read_out, parse=str, metavar="lens|raw")
# alpha of the plausibility constraint: the paper's and transformers' value (not an option there either)
RELATIVE_TOP = 0.1


def premature_layers(n_layer: int, dola_layers) -> list[int]:
    """The candidate premature layers for "low", "high" or a list of layer indices.

    As transformers' _dola_decoding chooses them for an N-layer model: "low" is range(s, N // 2, 2) and
    "high" range(N // 2, N, 2) (for N > 40: range(s, 20, 2) and range(N - 20, N, 2)), where s, the first
    layer, skips the embeddings (layer 0), whose read-out through the tied output matrix mostly echoes the
    current token: s = 2 for N > 2, 1 for N = 2, 0 for N = 1; "low" is [s] when s = N // 2. A list names
    layers directly: 0 is the embeddings, j the residual stream after block j.
    """
    N = n_layer
    if isinstance(dola_layers, str):
        first = 2 if N > 2 else 1 if N == 2 else 0  # GPT-2 ties its output matrix to the embeddings
        if dola_layers == "low":
            layers = [first] if first == N // 2 else list(range(first, N // 2 if N <= 40 else 20, 2))
        else:
            layers = list(range(N // 2, N, 2) if N <= 40 else range(N - 20, N, 2))
        if not layers:
            raise OptionError("{setting} names no layer of this {N}-layer model; list the layers instead, such as "
                              "[0, 1] (0 is the embeddings).", setting=DOLA_LAYERS.said(dola_layers), N=N)
        return layers
    outside = [j for j in dola_layers if not 0 <= j < N]
    if outside:
        raise OptionError("{o} must name layers in [0, {N}) of this {N}-layer model (0 is the embeddings, {N} the "
                          "final layer DoLa contrasts with); got {outside}.", o=DOLA_LAYERS.said(), N=N,
                          outside=repr(outside))
    return list(dola_layers)


def layer_divergence(final_logits, premature_logits):
    """1/2 KL(m || q_N) + 1/2 KL(m || q_j), m = (q_N + q_j) / 2: how far each layer's read-out q_j is from
    the final q_N. final [B, V], premature [L, B, V] -> [L, B]

    The paper names the Jensen-Shannon divergence, 1/2 KL(q_N || m) + 1/2 KL(q_j || m); transformers (like
    the authors' code) computes this one instead (torch's kl_div(log q, m) is KL(m || q)), and so do we,
    for the same choices. It is symmetric and 0 only for q_j = q_N, but it is not the JSD.
    """
    log_final, log_premature = log_softmax(final_logits)[None], log_softmax(premature_logits)  # [1, B, V], [L, B, V]
    m = 0.5 * (np.exp(log_final) + np.exp(log_premature))  # [L, B, V]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_m = np.log(m)
        kl_final = np.nansum(m * (log_m - log_final), axis=-1)  # [L, B]; 0 log 0 = 0
        kl_premature = np.nansum(m * (log_m - log_premature), axis=-1)
    return 0.5 * (kl_final + kl_premature)


def contrast(final_logits, premature_logits, alpha: float = RELATIVE_TOP):
    """log q_N - log q_M where log q_N >= log max q_N + log alpha, else -inf. [B, V], [B, V] -> [B, V]"""
    log_final, log_premature = log_softmax(final_logits), log_softmax(premature_logits)  # [B, V] each
    plausible = log_final >= log_final.max(axis=-1, keepdims=True) + np.float32(np.log(alpha))
    return np.where(plausible, log_final - log_premature, NEG_INF)


class ContrastingLayers(ScoreSource):
    """Next-token scores by DoLa, for greedy decoding and sampling.

    start() reads the prompts, advance(tokens [B]) one more token per row; each returns (logits [B, V],
    scores [B, V], state): the final layer's logits (the model's own distribution, which the trace and the
    score report), the DoLa scores the processor chain starts from, and {"dola_layer": M} for each row.

    The read-out of layer j (dola_read_out): "lens", the default, reads it as the logit lens and the model's
    own last layer do, unembed(ln_f(residual)); "raw" applies lm_head to the residual stream as it is, as
    transformers does (GPT-2's hidden_states[j], j < N, are not normalised; only the last one is). Without
    ln_f an early layer's logits are scaled by its stream's norm (small early, large late in GPT-2), so the
    comparison mixes what the layer predicts with how large its stream is, and early read-outs come out
    nearly uniform (DoLa then barely departs from greedy); "lens" compares predictions only. Both are
    checked token for token against transformers' own _dola_decoding, "lens" with ln_f inserted before its
    lm_head (scripts/make_dola_reference.py)."""

    def __init__(self, batch: Batch, layers, read_out: str | None = None):
        self.batch = batch
        self.layers = premature_layers(batch.model.config.n_layer, layers)
        self.read_out_name = read_out or "lens"
        self.read_out = batch.model.unembed if self.read_out_name == "raw" else batch.model.read_out
        self.cache = batch.new_cache(batch.ids.shape[0])

    def describe(self) -> str:
        return f"dola(layers={self.layers}, read_out={self.read_out_name!r}, relative_top={RELATIVE_TOP})"

    def scores(self, result):
        final = result.logits[:, -1]  # [B, V]
        premature = np.stack([self.read_out(result.residuals[j][:, -1]) for j in self.layers])  # [L, B, V]
        chosen = (layer_divergence(final, premature).argmax(axis=0) if len(self.layers) > 1
                  else np.zeros(len(final), int))  # [B] the index in self.layers of each row's M
        rows = np.arange(len(final))
        return final, contrast(final, premature[chosen, rows]), [{"dola_layer": self.layers[c]} for c in chosen]

    def start(self):
        return self.scores(self.batch.model.forward(self.batch.ids, self.cache, self.batch.mask, last_only=True,
                                                  inspect=True))

    def advance(self, tokens):
        return self.scores(self.batch.model.forward(tokens[:, None], self.cache, last_only=True, inspect=True))
