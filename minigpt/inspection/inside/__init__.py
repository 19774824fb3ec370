"""inside: why the model predicts what it does, read off one pass with every intermediate named.

    hooked.py       the forward pass step by step, each intermediate at a TransformerLens hook name, editable
    cache.py        run_with_cache: the arrays of one pass by hook name
"""

from .cache import ActivationCache, act_name, run_with_cache
