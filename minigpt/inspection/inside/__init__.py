"""inside: why the model predicts what it does, read off passes whose every intermediate has a name.

    hooked.py       the forward pass step by step, each intermediate at a TransformerLens hook name, editable
    cache.py        run_with_cache: the arrays of one pass by hook name (ActivationCache)
    attribution.py  attribute: each head's, MLP's and embedding's share of a logit (direct logit attribution)
    patching.py     patch: the corrupted run with one activation from the clean run, at every layer and position
    heads.py        head_scores: previous-token, duplicate-token and induction heads

Each result is a small dataclass with a short repr and to_json(); views/ draws them. The numbers equal
TransformerLens 4.x's on dense checkpoints (tests/inspection/test_inside.py, scripts/reference/inside.py).
What this folder is not: the forward pass that generation runs (core/model.py), or any view.
"""

from .attribution import Attribution, attribute
from .cache import ActivationCache, act_name, run_with_cache
from .heads import HeadScores, head_scores
from .patching import PatchResult, patch
