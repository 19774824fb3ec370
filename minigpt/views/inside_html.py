"""The notebook HTML (`_repr_html_`) of the results of inspection/inside/, from the pieces of html.py:

    attribution_html   the largest parts as signed bars (PuOr's ends), the rest, the leftover, and their sum,
                       which is the model's own logit
    patch_html         the metric after each patch as a heat map, layer 0 at the bottom, the clean tokens as columns
                       (→ the corrupted one where they differ), on PuOr centred on 0: its sign is which token wins
    head_scores_html   the [layer, head] scores on viridis, then the best head's attention, query by query, beside
                       where this kind of head would look
    cache_html         an activation cache as the list of its arrays, name and shape

Tokens are written as every view writes them (labels.py), which needs the tokenizer: notebook.py passes it.
Every number is also in a data-* attribute at full precision.

What this module is not: it imports no result class (notebook.py tells IPython which function shows which) and
computes nothing; the pictures are plots/inside.py, the text views text.py.
"""

from html import escape

import numpy as np

from ..core.checks import plural
from ..core.tokenizer import Tokenizer
from .html import CELL, SCALE, SIGNED, attr, block, heat_table, number, signed_colour
from .labels import logit_name, token_label

MAX_ARRAYS = 40  # the most arrays a cache lists
BEST_ROWS = 12  # the queries of the best head that head scores list

SHOWN_PARTS = 12  # the parts an attribution lists; the rest are summed in one row


def signed_bar(value: float, top: float, half: int = 120) -> str:
    """A bar from the middle of a cell, to the right for a positive value, to the left for a negative one."""
    w = max(1, round(half * abs(value) / top)) if top else 1
    left = half if value >= 0 else half - w
    return (f'<div style="width:{2 * half}px;border-left:1px solid #fff"><div style="margin-left:{left}px;width:{w}px;'
            f'height:12px;background:{signed_colour(0.8 if value >= 0 else -0.8)}"></div></div>')


def attribution_html(a, tok: Tokenizer) -> str:
    """An Attribution: its largest parts as signed bars, the rest in one row, the leftover, and their sum."""
    what = logit_name(tok, a.token, a.versus, a.centered)
    shown = a.top(SHOWN_PARTS)
    rows = shown + ([(f"the other {len(a.labels) - len(shown)} parts",
                      float(a.contributions.sum()) - sum(v for _, v in shown))] if len(shown) < len(a.labels) else [])
    rows.append(("leftover (ln_f bias)", a.leftover))
    top = max(abs(v) for _, v in rows)
    body = "".join(f'<tr data-label="{attr(label)}" data-v="{number(v)}"><td>{escape(label)}</td>'
                   f'<td>{signed_bar(v, top)}</td><td style="text-align:right">{v:+.4f}</td></tr>' for label, v in rows)
    body += (f'<tr data-label="sum" data-v="{number(a.total)}" style="font-weight:bold"><td>sum = {escape(what)}</td>'
             f'<td></td><td style="text-align:right">{a.total:.4f}</td></tr>')
    return block(f"{what} after {token_label(tok, a.tokens[a.position])} (position {a.position}) = {a.logit:.4f}, "
                 f"split by {a.by}", f'<table style="border-collapse:collapse">{body}</table>',
                 f"purple: pushes the logit up, orange: down ({SIGNED}); the parts plus the leftover are the model's "
                 "own logit; L1H2: layer 1's head 2, 0_mlp_out: layer 0's MLP (from 0)")


def position_labels(tok: Tokenizer, clean: list[int], corrupted: list[int]) -> list[str]:
    """Each position's clean token, and "→ the corrupted one" where they differ."""
    return [token_label(tok, c, 10) + (f" → {token_label(tok, d, 10)}" if c != d else "")
            for c, d in zip(clean, corrupted)]


def patch_html(result, tok: Tokenizer) -> str:
    """A PatchResult as a heat map, a row per layer (layer 0 at the bottom), a column per position or head, each
    cell the metric with that patch, on a diverging scale centred on 0."""
    L, N = result.values.shape
    columns = [f"head {h}" for h in range(N)] if result.where == "head" else \
        position_labels(tok, result.clean_tokens, result.corrupted_tokens)
    top = float(max(abs(result.values).max(), abs(result.clean_metric), abs(result.corrupted_metric), 1e-9))
    grid = [(f"layer {l}", [(f"{v:+.2f}", float(v), f"layer {l}, {columns[i]}: {v:.4f}")
                            for i, v in enumerate(result.values[l])]) for l in reversed(range(L))]
    metric = f"{logit_name(tok, result.answer)} - {logit_name(tok, result.wrong)}"
    return block(f"patching {result.where}: {metric}, clean {result.clean_metric:.4f}, corrupted "
                 f"{result.corrupted_metric:.4f}", heat_table(columns, grid, signed=top, shown=str),
                 f"each cell: the metric of the corrupted run with that one activation from the clean run ({SIGNED})")


def best_head_rows(scores, tok: Tokenizer, l: int, h: int) -> str:
    """The best head's attention, query by query, beside where the pattern looks: for the last BEST_ROWS queries
    that the pattern gives a place to look, the key the head weighs most, that weight, the pattern's keys and the
    share of the row on them."""
    weights, labels = scores.patterns[l, h], [token_label(tok, t, 12) for t in scores.tokens]
    queries = [q for q in range(len(labels)) if scores.detection[q].any()][-BEST_ROWS:]
    rows = []
    for q in queries:
        k, keys = int(weights[q].argmax()), np.flatnonzero(scores.detection[q])
        share = float((weights[q] * scores.detection[q]).sum())
        rows.append(f'<tr data-query="{q}" data-key="{k}" data-share="{number(share)}"><td>{escape(labels[q])} ({q})'
                    f"</td><td>{escape(labels[k])} ({k})</td><td>{weights[q, k]:.3f}</td><td>"
                    f"{escape(', '.join(f'{labels[j]} ({j})' for j in keys))}</td><td>{share:.3f}</td></tr>")
    head = "".join(f'<th style="{CELL}">{c}</th>' for c in ("query (position)", "looks most at", "weight",
                                                             "where the pattern looks", "weight there"))
    return f'<table style="border-collapse:collapse"><tr>{head}</tr>{"".join(rows)}</table>'


def head_scores_html(scores, tok: Tokenizer) -> str:
    """HeadScores: the [layer, head] grid (layer 0 at the bottom), then the best head's attention, query by
    query, beside where the pattern looks."""
    L, H = scores.scores.shape
    grid = [(f"layer {l}", [(f"{v:.3f}", float(v), f"L{l}H{h}: {v:.4f}") for h, v in enumerate(scores.scores[l])])
            for l in reversed(range(L))]
    (name, best), T = scores.top(1)[0], len(scores.tokens)
    l, h = map(int, name[1:].split("H"))
    return block(f"{scores.kind} scores over {plural(T, 'token')}; best {name} {best:.3f}",
                 heat_table([f"head {h}" for h in range(H)], grid, shown=str)
                 + f"<div>{escape(name)}'s attention, for the last queries the pattern gives a place to look:</div>"
                 + best_head_rows(scores, tok, l, h),
                 f"score: the share of a head's attention on the detection pattern ({SCALE}); positions from 0")


def cache_html(cache) -> str:
    """An ActivationCache: each name and its shape, in the pass's order (the first MAX_ARRAYS)."""
    rows = "".join(f'<tr data-name="{attr(name)}"><td>{escape(name)}</td><td data-shape="{attr(list(a.shape))}">'
                   f"{list(a.shape)}</td></tr>" for name, a in list(cache.items())[:MAX_ARRAYS])
    more = len(cache) - MAX_ARRAYS
    return block(f"activation cache: {plural(len(cache), 'array')} over tokens {list(cache.tokens.shape)}",
                 f'<table style="border-collapse:collapse">{rows}</table>',
                 f"and {more} more: cache.keys() lists them" if more > 0 else "cache[name] gives the array")
