"""inspection: what the model computes on the way to a token, as arrays and small result objects.

    passes.py        one prompt checked, one forward pass that keeps every stage
    scoring.py       log p of each token of a text; the perplexity of a text of any length (sliding window)
    distribution.py  p(next token) at several temperatures, and what each cut-off keeps of it
    lens.py          the logit lens: what each layer would predict if it were the last
    patterns.py      every head's attention pattern
    beam_tree.py     every candidate a beam search weighed, as a tree
    compare.py       strategies side by side on one prompt
    inside/          why a token wins: every intermediate by name, attribution, patching, head detectors
    watermark.py     how green a text is: whether it carries the watermark

Each result has a short repr; views/ draws them (text, JSON, HTML, pictures), and in a notebook they show
themselves (views/notebook.py). What this ring is not: a view, or the forward pass (core/model.py).
"""

from .beam_tree import BeamNode, BeamTree, beam_tree
from .distribution import NextTokenDistribution, next_token_distribution
from .lens import LogitLens, logit_lens
from .patterns import AttentionPatterns, attention_patterns
from .scoring import TextScore, perplexity_of, score_text, token_logprobs
from .watermark import WatermarkScore, watermark_score
