"""How probable a text is: the log-probability of each token of a short text, and the perplexity of a text of any
length, exp(total NLL / tokens scored), with a sliding window.

A text longer than the context is read in windows of at most max_length tokens whose starts advance by
`stride`, as in transformers' guide "Perplexity of fixed-length models":

    window k = tokens [k * stride, k * stride + max_length)
    it scores only the tokens no earlier window scored, each given every token before it in the window

so every token but the first is scored once, with between max_length - stride and max_length - 1 tokens
of context. A smaller stride gives each token more context (a lower, truer perplexity) at the cost of more
windows. stride = max_length means no overlap: each window starts from nothing, and its first token, which
has no context, is not scored at all. The NLL is summed token by token, never a window's mean times its length.

Windows of equal length go through the model together, as many at a time as keep one forward pass under
BATCH_BYTES: memory is bounded by the batch, not by the text. Bits per byte, NLL / ln 2 / the UTF-8 bytes of
the scored tokens, compares models with different tokenizers.
"""

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..call import memory
from ..core.checks import Named, check_int, plural
from ..core.model import GPT2
from ..core.numerics import log_softmax
from ..core.tokenizer import Tokenizer
from .passes import prompt_ids


def cross_entropy(logits, targets):
    """-log softmax(logits)[target] = log sum_j exp(z_j) - z_target for each row of finite logits [N, V] and its
    target [N], with one temporary [N, V] (log_softmax would make three): a text's NLL, token by token. -> [N]"""
    top = logits.max(axis=-1, keepdims=True)  # [N, 1]
    e = np.subtract(logits, top)
    np.exp(e, out=e)
    return top[:, 0] + np.log(e.sum(axis=-1)) - logits[np.arange(len(targets)), targets]


def token_logprobs(model: GPT2, ids) -> list[float]:
    """log p(token_i | tokens before it) for i >= 1, read off one forward pass over ids [T]."""
    ids = prompt_ids(model, ids)  # [1, T]
    memory.check_fits(memory.prompt_pass(model.config, ids.shape[1], 3 * ids.shape[1], logits_positions=ids.shape[1]),
                      "scoring this text")
    logits = model.forward(ids, model.new_cache(1, ids.shape[1])).logits[0]  # [T, V]
    logp = log_softmax(logits[:-1])  # [T-1, V]: the distribution over the token after each position
    return [float(logp[t, ids[0, t + 1]]) for t in range(ids.shape[1] - 1)]


def perplexity_of(logprobs: list[float]) -> float | None:
    """exp(-mean log p) over the scored tokens; None when there is none (a text of one token)."""
    return math.exp(-sum(logprobs) / len(logprobs)) if logprobs else None


BATCH_BYTES = 2**29  # one forward pass over a batch of windows stays under 512 MiB
MAX_LENGTH, STRIDE = Named("max_length", "--max-length"), Named("stride", "--stride")  # score_text's settings


@dataclass(frozen=True)
class Window:
    begin: int  # the window is tokens [begin, end) of the text
    end: int
    first_scored: int  # it scores tokens [first_scored, end): those no earlier window scored
    nll: float = 0.0  # -sum log p of those tokens, in nats

    @property
    def scored(self) -> int:
        return self.end - self.first_scored


@dataclass
class TextScore:
    tokens: int  # how many tokens were scored (all but the first, and with stride = max_length, each window's first)
    nll: float  # their total negative log-likelihood, in nats
    bytes: int  # the UTF-8 bytes of the scored tokens
    windows: list[Window] = field(default_factory=list)

    @property
    def perplexity(self) -> float:
        return math.exp(self.nll / self.tokens)

    @property
    def bits_per_byte(self) -> float:
        return self.nll / math.log(2) / self.bytes


def windows(n_tokens: int, max_length: int, stride: int) -> list[Window]:
    """Where each window begins and ends, and which of its tokens it scores (the transformers guide's loop)."""
    plan, scored_to = [], 0
    for begin in range(0, n_tokens, stride):
        end = min(begin + max_length, n_tokens)
        plan.append(Window(begin, end, max(scored_to, begin + 1)))  # a window's first token has no context
        scored_to = end
        if end == n_tokens:
            break
    return plan


def check_window(model: GPT2, n_tokens: int, max_length, stride) -> tuple[int, int]:
    """max_length (default: the context) and stride (default: half of it), checked."""
    max_length = check_int(MAX_LENGTH, model.config.n_positions if max_length is None else max_length, 2)
    if max_length > model.config.n_positions:
        raise ValueError(f"max_length ({max_length}) exceeds the model's context of "
                         f"n_positions={model.config.n_positions} tokens; give at most {model.config.n_positions}.")
    stride = check_int(STRIDE, max(max_length // 2, 1) if stride is None else stride, 1)
    if stride > max_length:
        raise ValueError(f"stride ({stride}) exceeds max_length ({max_length}), so the tokens between windows "
                         f"would never be scored; give a stride of at most {max_length}.")
    if n_tokens < 2:
        raise ValueError(f"the text has {plural(n_tokens, 'token')}; perplexity needs at least 2, "
                         "since the first token is never scored.")
    return max_length, stride


def windows_at_once(model: GPT2, length: int) -> int:
    """How many windows of `length` tokens go through the model together: a forward pass under BATCH_BYTES."""
    one = memory.forward_pass(model.config, 1, length, length, logits_positions=0) + memory.kv_cache(
        model.config, 1, length)
    return max(1, BATCH_BYTES // one)


def window_nlls(model: GPT2, ids: np.ndarray, batch: list[Window]) -> list[float]:
    """-sum log p(token | the window's tokens before it) over the scored tokens of each window of one length."""
    rows = np.stack([ids[w.begin : w.end] for w in batch])  # [B, L]
    B, L = rows.shape
    x, _, _ = model.residual_stream(rows, model.new_cache(B, L))  # [B, L, C]
    nlls = []
    for row, w in enumerate(batch):
        predicting = slice(w.first_scored - w.begin - 1, L - 1)  # the positions whose next token is scored
        logits = model.unembed(model.final_norm(x[row, predicting]))  # [scored, V]
        targets = rows[row, w.first_scored - w.begin :]  # [scored]
        nlls.append(float(cross_entropy(logits, targets).sum(dtype=np.float64)))
    return nlls


def score_text(model: GPT2, ids, stride: int | None = None, max_length: int | None = None,
               tokenizer: Tokenizer | None = None, progress: Callable[[int], None] | None = None) -> TextScore:
    """The perplexity of the text ids [N] of any length, with a sliding window (see the module's docstring).

    max_length: the window, at most and by default the model's context. stride: how far each window's start
    advances, by default half the window. progress(n) is called as each n windows are done.
    """
    ids = np.asarray(ids, dtype=np.int64)
    max_length, stride = check_window(model, ids.size, max_length, stride)
    plan = windows(ids.size, max_length, stride)
    at_once = windows_at_once(model, max_length)
    memory.check_fits(memory.windows(model.config, BATCH_BYTES, min(at_once, len(plan)), max_length, MAX_LENGTH,
                                     STRIDE), "scoring this text")
    done = []
    for length in sorted({w.end - w.begin for w in plan}, reverse=True):  # the full windows, then the last
        same = [w for w in plan if w.end - w.begin == length]
        for start in range(0, len(same), at_once):
            batch = same[start : start + at_once]
            done += [Window(w.begin, w.end, w.first_scored, nll)
                     for w, nll in zip(batch, window_nlls(model, ids, batch))]
            if progress is not None:
                progress(len(batch))
    done.sort(key=lambda w: w.begin)
    tokenizer = tokenizer or Tokenizer()
    scored = [int(t) for w in done for t in ids[w.first_scored : w.end]]
    return TextScore(tokens=len(scored), nll=sum(w.nll for w in done), windows=done,
                      bytes=sum(len(tokenizer.token_bytes(t)) for t in scored if t < tokenizer.n_vocab))
