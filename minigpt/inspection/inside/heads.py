"""Head detectors: how much of each head's attention falls where a kind of head would look, as TransformerLens'
head_detector.detect_head measures it (error_measure "mul", its default):

    score(l, h) = sum_ij pattern_lh[i, j] * detection[i, j] / sum_ij pattern_lh[i, j]      (the sum is T)

    previous_token    detection[i, i-1] = 1                         the token just before
    duplicate_token   detection[i, j] = 1 if tokens[j] == tokens[i], j < i     an earlier copy of this token
    induction         detection[i, j] = 1 if tokens[j-1] == tokens[i], 1 <= j <= i   the token after an earlier copy

Induction heads (Olsson et al. 2022, "In-context Learning and Induction Heads") show best on a random sequence
repeated: in its second half each token's earlier copy is followed by the token that comes next.

What this module is not: the attention maps themselves (patterns.py), or a picture (views/).
"""

from dataclasses import dataclass

import numpy as np

from ...core.model import GPT2
from ..passes import prompt_ids
from .cache import run_with_cache

# Shapes: L n_layer, H n_head, T prompt tokens.

KINDS = ("previous_token", "duplicate_token", "induction")


@dataclass(repr=False)
class HeadScores:
    """Each head's share of attention on a kind's detection pattern, over one prompt."""
    kind: str
    scores: np.ndarray  # [L, H] float32, in [0, 1]
    tokens: list[int]  # [T]
    detection: np.ndarray  # [T, T] float32: 1 where this kind of head would look
    patterns: np.ndarray  # [L, H, T, T] float32: each head's attention, to show beside the detection pattern
    exclude_bos: bool = False
    exclude_current_token: bool = False

    def top(self, n: int = 5) -> list[tuple[str, float]]:
        """The n heads of highest score, as ("L{l}H{h}", score), highest first."""
        order = np.argsort(-self.scores, axis=None, kind="stable")[:n]
        H = self.scores.shape[1]
        return [(f"L{i // H}H{i % H}", float(self.scores.flat[i])) for i in order]

    def __repr__(self) -> str:
        best = ", ".join(f"{name} {score:.3f}" for name, score in self.top(3))
        return f"HeadScores({self.kind}, {list(self.scores.shape)} over {len(self.tokens)} tokens; best: {best})"

    def to_json(self) -> dict:
        return {"kind": self.kind, "tokens": self.tokens, "scores": self.scores.tolist(),
                "exclude_bos": self.exclude_bos, "exclude_current_token": self.exclude_current_token,
                "detection": self.detection.astype(int).tolist()}


def detection_pattern(kind: str, tokens) -> np.ndarray:
    """Where a head of this kind would look: [T, T] float32 of 0 and 1, lower triangular (see the docstring)."""
    tokens = np.asarray(tokens)
    T = tokens.size
    if kind == "previous_token":
        return np.eye(T, k=-1, dtype=np.float32)
    duplicate = np.tril(tokens[:, None] == tokens[None, :], k=-1)  # [T, T]: an earlier copy, itself excluded
    if kind == "duplicate_token":
        return duplicate.astype(np.float32)
    induction = np.zeros((T, T), dtype=np.float32)
    induction[:, 1:] = duplicate[:, :-1]  # one to the right of each earlier copy
    return np.tril(induction)


def head_scores(model: GPT2, ids, kind: str, exclude_bos: bool = False, exclude_current_token: bool = False):
    """score[l, h] = the share of head (l, h)'s attention over the prompt ids [T] that falls on the detection
    pattern of `kind` ("previous_token", "duplicate_token" or "induction"), as TransformerLens' detect_head with
    its defaults. exclude_bos / exclude_current_token zero the attention to position 0 / to the query itself
    first (TransformerLens' options of the same names). -> HeadScores"""
    ids = prompt_ids(model, ids)[0]  # [T]
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}.")
    if ids.size < 2:
        raise ValueError("a head detector needs a prompt of at least 2 tokens, so that a head can look back.")
    L = model.config.n_layer
    cache = run_with_cache(model, ids, [f"blocks.{l}.attn.hook_pattern" for l in range(L)])
    patterns = np.stack([cache["pattern", l] for l in range(L)])  # [L, H, T, T]
    weights = patterns.copy()
    if exclude_bos:
        weights[..., 0] = 0
    if exclude_current_token:
        weights[..., np.arange(ids.size), np.arange(ids.size)] = 0
    detection = detection_pattern(kind, ids)
    scores = (weights * detection).sum(axis=(-2, -1)) / weights.sum(axis=(-2, -1))  # [L, H]
    return HeadScores(kind=kind, scores=scores, tokens=ids.tolist(), detection=detection, patterns=patterns,
                      exclude_bos=exclude_bos, exclude_current_token=exclude_current_token)
