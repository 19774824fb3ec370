"""Pictures of what the model computes: the data of inspection/ drawn with matplotlib, in one import.

    plot_probs       the next-token distribution: bars, the cut-offs of top-k / top-p / min-p, temperatures
                     (probs.py)
    plot_beam_tree   every candidate beam search weighed; the returned hypotheses and the best one highlighted
                     (beam.py)
    plot_lens        the logit lens: each layer's top next token and its probability, as a heat map
    plot_attention   attention weights over the prompt: one head, or every head of a layer as a grid
                     (both maps.py)
    plot_attribution each part's share of a logit, as signed bars with their sum
    plot_patch       activation patching: the metric after each patch, over layers x positions or heads
    plot_heads       head detectors: the [layer, head] scores, the best head's attention beside its pattern
                     (the three in inside.py)

Each function writes an image file (its format from the file name's suffix, checked by canvas.check_out)
and returns the matplotlib Figure; with out=None it writes nothing (a notebook shows the Figure). Every
picture follows one rule: its title and subtitle state what it shows and the settings that matter, a legend
or caption names every mark (colour, outline, arrow, fade, ✓), every axis is labelled, and tokens are
labelled as `minigpt tokenize` shows them (labels.visible: ␣ for a space, ↵ for a newline, glyphs that
DejaVu Sans, the default font, has).

What this module is not: it computes nothing about the model (inspection/ does), and matplotlib, the
figure and the file are canvas.py's.
"""

from .beam import plot_beam_tree
from .canvas import PlotsUnavailable, require_matplotlib, token_text
from .inside import plot_attribution, plot_heads, plot_patch
from .maps import plot_attention, plot_lens
from .probs import plot_probs

__all__ = ["PlotsUnavailable", "plot_probs", "plot_beam_tree", "plot_lens", "plot_attention", "plot_attribution",
           "plot_patch", "plot_heads", "token_text", "require_matplotlib"]
