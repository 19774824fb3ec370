"""The notebook HTML (`_repr_html_`) of the results of inspection/inside/: an activation cache as the list of its
arrays, an attribution as signed bars, a patching sweep and head scores as heat maps. Static HTML from the
pieces of html.py (block, heat_table, the viridis scale), every number also in a data-* attribute.

What this module is not: it imports no result class (notebook.py tells IPython which function shows which) and
computes nothing; the pictures and the page's panel are drawn elsewhere.
"""

from html import escape

from .html import CELL, MAX_CELLS, SCALE, block, colour, heat_table, number

MAX_PARTS = 20  # the most parts an attribution lists
MAX_ARRAYS = 40  # the most arrays a cache lists


def signed_bars(rows, width: int = 160) -> str:
    """rows of (label, value) as bars either side of a middle line: right for a value > 0, left for < 0."""
    top = max([abs(v) for _, v in rows] + [1e-9])
    lines = []
    for label, v in rows:
        bar = (f'<div style="background:{colour(0.8 if v > 0 else 0.2)};height:12px;'
               f'width:{max(1, round(width * abs(v) / top))}px;margin-{"right" if v > 0 else "left"}:auto"></div>')
        left, right = ("", bar) if v > 0 else (bar, "")
        lines.append(f'<tr data-label="{escape(label, quote=True)}" data-v="{number(v)}">'
                     f'<td style="text-align:right">{escape(label)}</td><td style="width:{width}px">{left}</td>'
                     f'<td style="width:{width}px;border-left:1px solid #999">{right}</td><td>{v:+.4f}</td></tr>')
    return f'<table style="border-collapse:collapse">{"".join(lines)}</table>'


def attribution_html(attribution) -> str:
    """The largest parts of an attribution as signed bars, with what they add up to."""
    a = attribution
    what = f"logit[{a.token}] - logit[{a.versus}]" if a.versus is not None else f"logit[{a.token}]"
    what += " - mean logit" if a.centered else ""
    shown = a.top(MAX_PARTS)
    return block(f"direct logit attribution of {what} at position {a.position}: {a.logit:.4f}", signed_bars(shown),
                 f"the {len(shown)} largest of {len(a.labels)} parts by {a.by}"
                 f"{' (value biases folded into bias)' if a.fold_value_biases else ''}; with the leftover "
                 f"(ln_f's bias, {a.leftover:+.4f}) they add up to {a.total:.4f}")


def patch_html(result) -> str:
    """Layers x positions (or heads): each cell the share of the clean metric that patching it brings back."""
    L, N = result.values.shape
    first = max(0, N - MAX_CELLS // max(L, 1))
    columns = [f"H{i}" if result.where == "head" else f"{i}:{result.clean_tokens[i]}" for i in range(first, N)]
    recovered = result.recovered
    grid = [(f"layer {l}", [("", min(1.0, max(0.0, float(recovered[l, i]))),
                             f"layer {l}, {result.axes[1]} {i}: metric {result.values[l, i]:.4f} "
                             f"(recovered {recovered[l, i]:.3f})") for i in range(first, N)]) for l in range(L)]
    return block(f"activation patching at {result.where}: logit[{result.answer}] - logit[{result.wrong}], clean "
                 f"{result.clean_metric:.4f}, corrupted {result.corrupted_metric:.4f}", heat_table(columns, grid),
                 f"colour: the share of the clean metric recovered, 0 to 1 ({SCALE}); hover a cell for its metric")


def head_scores_html(scores) -> str:
    """Layers x heads, each cell the head's score."""
    L, H = scores.scores.shape
    grid = [(f"layer {l}", [(f"{scores.scores[l, h]:.2f}", float(scores.scores[l, h]), f"L{l}H{h}")
                            for h in range(H)]) for l in range(L)]
    return block(f"{scores.kind} heads over {len(scores.tokens)} tokens", heat_table([f"H{h}" for h in range(H)], grid),
                 f"the share of each head's attention on the {scores.kind} pattern ({SCALE})")


def cache_html(cache) -> str:
    """The arrays of an activation cache, name and shape."""
    rows = "".join(f'<tr data-name="{escape(name, quote=True)}"><td style="{CELL}">{escape(name)}</td>'
                   f'<td style="{CELL}">{list(array.shape)}</td></tr>'
                   for name, array in list(cache.items())[:MAX_ARRAYS])
    more = len(cache) - MAX_ARRAYS
    return block(f"activation cache of {len(cache)} arrays, logits {list(cache.logits.shape)}",
                 f'<table style="border-collapse:collapse">{rows}</table>',
                 f"and {more} more: cache.keys() lists them" if more > 0 else "")
