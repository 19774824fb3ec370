"""How minigpt's results show themselves in a notebook: IPython is told which function of html.py (or, for
inspection/inside/'s results, inside_html.py) draws which class, through its own display formatter (`for_type`),
when minigpt is imported in a running IPython.

The results stay plain data (they import no view), and a notebook needs no step of its user's: `import minigpt`
in Jupyter is enough. Outside IPython nothing happens, and every result still has its short repr.

What this module is not: the HTML itself (html.py) or the results (call/, strategies/, inspection/).
"""

import sys
from functools import cache

from ..call.generate import REPR_ROWS, GenerationOutput
from ..core.tokenizer import Tokenizer
from ..inspection import AttentionPatterns, BeamNode, BeamTree, LogitLens, NextTokenDistribution
from ..inspection.inside import ActivationCache, Attribution, HeadScores, PatchResult
from ..strategies.run import Candidate, Step
from .html import (attention_html, beam_node_html, beam_tree_html, candidate_html, distribution_html, generation_html,
                   lens_html, step_html)
from .inside_html import attribution_html, cache_html, head_scores_html, patch_html


@cache
def tokenizer() -> Tokenizer:
    """GPT-2's tokenizer, read once, for the results that hold token ids without their texts."""
    return Tokenizer()


HTML = {  # each result class -> the function that draws it as HTML
    GenerationOutput: lambda out: generation_html(out, REPR_ROWS**2), Step: step_html, Candidate: candidate_html,
    NextTokenDistribution: distribution_html, LogitLens: lens_html, AttentionPatterns: attention_html,
    BeamTree: beam_tree_html, BeamNode: beam_node_html, ActivationCache: cache_html,
    Attribution: lambda a: attribution_html(a, tokenizer()), PatchResult: lambda r: patch_html(r, tokenizer()),
    HeadScores: lambda s: head_scores_html(s, tokenizer()),
}


def show_in_notebooks() -> bool:
    """Register HTML with the running IPython's display formatter; False when no IPython runs."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return False
    formatter = shell.display_formatter.formatters["text/html"]
    for cls, draw in HTML.items():
        formatter.for_type(cls, draw)
    return True
