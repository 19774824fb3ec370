"""The HTML that minigpt's results show in a notebook (`_repr_html_`): static pieces, no script, no request.

Jupyter, GitHub and nbviewer show a result's HTML; GitHub and nbviewer strip scripts, so every piece here is
plain HTML that reads without JavaScript, and the hover is the browser's own `title`:

    token_span     a token on a background coloured by its probability (colour: the scale of
                   minigpt/web/render.js, so a notebook, the explorer and the report read alike)
    step_title     what the hover of a generated token says: the candidates before and after the chain
    bars           a distribution as horizontal bars, the cut ones faded
    heat_table     a grid of cells coloured by a value in [0, 1] (the logit lens, attention)
    tree_svg       a tree of labelled nodes, one column per step, as inline SVG (the beam tree)
    *_html         each result laid out with the above: a step, a generation, the next-token distribution,
                   the lens, attention, the beam tree

Every number a piece shows is also in a data-* attribute at full precision, for tests and for scripts.
The output is well-formed XML (every tag closed, every text escaped), and bounded: the callers cut what
they pass (MAX_TOKENS, MAX_CELLS).

What this module is not: it imports no result class (it reads their fields; notebook.py tells IPython which
function shows which class) and computes nothing. The interactive views are minigpt/web/render.js.
"""

import math
from html import escape

from ..core.checks import chance, plural
from ..strategies.run import state_text
from .labels import visible

MAX_TOKENS = 400  # the most tokens a coloured text shows; the rest is summarised
MAX_CELLS = 1600  # the most cells a heat map shows
HOVER_TOP = 5  # the candidates a token's hover lists, before and after the chain
BOX = "font-family:monospace;font-size:13px;line-height:1.7"
CELL = "padding:1px 4px;border:1px solid #fff"


# matplotlib's viridis at 0, 0.1, ..., 1: colour-blind safe, and ordered even in grey. The one scale of
# probability in every view: the page and the report (web/render.js holds the same stops), the notebook
# (here) and the pictures (matplotlib's own viridis).
VIRIDIS = ("#440154", "#482475", "#414487", "#355f8d", "#2a788e", "#21918c", "#22a884", "#44bf70", "#7ad151", "#bddf26",
           "#fde725")


def colour(p: float) -> str:
    """A probability in [0, 1] as a colour of the viridis scale, interpolated between its stops."""
    x = 10 * min(1.0, max(0.0, float(p)))
    i = min(9, int(x))
    a, b = (tuple(int(hex_[k:k + 2], 16) for k in (1, 3, 5)) for hex_ in VIRIDIS[i:i + 2])
    return "rgb(" + ", ".join(str(int(u + (x - i) * (v - u) + 0.5)) for u, v in zip(a, b)) + ")"  # as Math.round


SCALE = "viridis, 0 dark violet to 1 yellow"  # the scale in words, under every coloured view


def ink(p: float) -> str:
    """The text colour that reads on colour(p)."""
    return "#fff" if p < 0.55 else "#111"


def attr(value) -> str:
    """A value inside a double-quoted attribute."""
    return escape(str(value), quote=True)


def number(x: float) -> str:
    """A number as data-* holds it: repr, so that float(attribute) gives the same float back."""
    return repr(float(x))


def token_span(text: str, p: float | None, title: str = "", data: dict | None = None) -> str:
    """One token, its background coloured by p (none without a p), `title` on hover, data-* from `data`."""
    style = f"background:{colour(p)};color:{ink(p)};white-space:pre-wrap" if p is not None else "white-space:pre-wrap"
    extra = "".join(f' data-{k}="{attr(v)}"' for k, v in (data or {}).items())
    hover = f' title="{attr(title)}"' if title else ""
    return f'<span style="{style}"{hover}{extra}>{escape(text)}</span>'


def candidate_rows(candidates, chosen: int) -> str:
    """The first HOVER_TOP candidates (objects with .id, .p, .text) as lines of a hover: rank, text, p, * for
    the chosen."""
    return "\n".join(f"{r + 1:>3} {visible(c.text) or '#' + str(c.id):<14} {chance(c.p)}{' *' if c.id == chosen else ''}"
                     for r, c in enumerate(candidates[:HOVER_TOP]))


def step_title(step) -> str:
    """The hover of a generated token (strategies/run.py's Step): its p, the chain's state, the candidates."""
    lines = [f"{visible(step.text)!s} (id {step.token}): log p {step.logprob:.4f} under the model, "
             f"{step.survivors:,} tokens survive the chain"]
    if step.state:
        lines.append(f"state: {state_text(step.state)}")
    if step.raw_candidates:
        lines += ["before the chain:", candidate_rows(step.raw_candidates, step.token)]
    if step.candidates:
        lines += ["after the chain:", candidate_rows(step.candidates, step.token)]
    return "\n".join(lines)


def block(heading: str, body: str, note: str = "") -> str:
    """A result's frame: a heading line, the body, and a note in grey."""
    foot = f'<div style="color:#666;font-size:11px">{escape(note)}</div>' if note else ""
    return (f'<div class="minigpt" style="{BOX}"><div style="font-weight:bold">{escape(heading)}</div>'
            f"{body}{foot}</div>")


def bars(rows, width: int = 240) -> str:
    """rows of (label, p, kept, marked) as a table of bars; a row sampling would cut is faded, the marked bold."""
    top = max([p for _, p, _, _ in rows] + [1e-9])
    lines = []
    for label, p, kept, marked in rows:
        style = ";".join(["opacity:0.35"] * (not kept) + ["font-weight:bold"] * marked)
        lines.append(f'<tr style="{style}" data-p="{number(p)}" data-kept="{str(kept).lower()}">'
                     f'<td style="white-space:pre">{escape(visible(label))}</td>'
                     f'<td><div style="background:{colour(p)};border:1px solid #999;height:12px;'
                     f'width:{max(1, round(width * p / top))}px"></div></td><td>{chance(p)}</td></tr>')
    return f'<table style="border-collapse:collapse">{"".join(lines)}</table>'


def heat_table(columns: list[str], rows: list[tuple[str, list[tuple[str, float, str]]]]) -> str:
    """A grid: `columns` labels the columns; each row is (label, cells), a cell (text, value in [0, 1], title),
    or (text, None, title) for an empty cell."""
    head = "".join(f'<th style="{CELL}">{escape(visible(c))}</th>' for c in columns)
    body = []
    for label, cells in rows:
        tds = "".join(f'<td style="{CELL};background:{colour(v)};color:{ink(v)}" title="{attr(title)}" '
                      f'data-v="{number(v)}">'
                      f"{escape(visible(text))}</td>" if v is not None else "<td></td>" for text, v, title in cells)
        body.append(f'<tr><th style="{CELL};text-align:right">{escape(label)}</th>{tds}</tr>')
    return f'<table style="border-collapse:collapse"><tr><th></th>{head}</tr>{"".join(body)}</table>'


def tree_svg(nodes, step_width: int = 120, row_height: int = 20) -> str:
    """nodes: (id, parent, step, label, title, colour, bold) with the root (parent -1, step -1) first and
    each parent before its children; a column per step, the nodes of a step stacked in order."""
    by_step, position = {}, {}
    for node in nodes[1:]:
        by_step.setdefault(node[2], []).append(node)
    tall = max([len(v) for v in by_step.values()] + [1])
    width, height = 70 + step_width * len(by_step), 16 + row_height * tall
    position[nodes[0][0]] = (10, height / 2)
    for s, column in enumerate(sorted(by_step)):
        for i, node in enumerate(by_step[column]):
            position[node[0]] = (60 + step_width * s, 14 + row_height * i)
    edges, labels = [], []
    for node_id, parent, _, label, title, stroke, bold in nodes[1:]:
        (x, y), (px, py) = position[node_id], position[parent]
        edges.append(f'<line x1="{px + (6 if parent == nodes[0][0] else 56)}" y1="{py}" x2="{x - 4}" y2="{y}" '
                     f'stroke="{stroke}" stroke-width="{2.5 if bold else 0.8}"/>')
        labels.append(f'<text x="{x}" y="{y + 4}" fill="{stroke}" font-weight="{700 if bold else 400}" '
                      f'data-node="{node_id}"><title>{escape(title)}</title>{escape(visible(label)[:10])}</text>')
    root = f'<circle cx="{position[nodes[0][0]][0]}" cy="{position[nodes[0][0]][1]}" r="4" fill="#333"/>'
    return (f'<svg width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" style="font-family:monospace;font-size:12px">'
            f'{root}<g>{"".join(edges)}</g><g>{"".join(labels)}</g></svg>')


# ----------------------------------------------------------------------------- generate()'s results


def step_html(step) -> str:
    """The token coloured by its probability, then the candidates before and after the chain as bars."""
    p = math.exp(step.logprob)
    token = token_span(step.text, p, step_title(step), {"id": step.token, "p": number(p)})
    tables = "".join(f'<div style="margin-right:24px"><div>{label}</div>'
                     f'{bars([(c.text, c.p, True, c.id == step.token) for c in candidates])}</div>'
                     for label, candidates in (("before the chain", step.raw_candidates),
                                               ("after the chain", step.candidates)) if candidates)
    return block(f"step: chose {step.text!r} (id {step.token}), p {chance(p)} under the model",
                 f'<div>{token}</div><div style="display:flex">{tables}</div>',
                 f"{step.survivors:,} tokens survive the chain" + (f"; {state_text(step.state)}" if step.state
                                                                    else ""))


def generation_html(out, limit: int = 16) -> str:
    """A GenerationOutput: each of its first `limit` sequences after its prompt, every token coloured by its
    probability under the model, its hover the candidates before and after the chain and the sampler's state
    at that step."""
    rows = []
    for j, steps in list(enumerate(out.steps))[:limit]:
        spans = "".join(token_span(s.text, math.exp(s.logprob), step_title(s),
                                   {"id": s.token, "p": number(math.exp(s.logprob)), "step": i})
                        for i, s in enumerate(steps[:MAX_TOKENS]))
        more = f" … {len(steps) - MAX_TOKENS} more tokens" if len(steps) > MAX_TOKENS else ""
        rows.append(f'<div data-sequence="{j}" style="margin:4px 0"><b style="white-space:pre-wrap">'
                    f"{escape(out.prompt_texts[out.prompt_index[j]])}</b>{spans}{more} <small>"
                    f"({len(steps)} tokens, {out.finish_reasons[j]}, score {out.scores[j]:.3f})</small></div>")
    if len(out.steps) > limit:
        rows.append(f"<div>… {len(out.steps) - limit} more sequences</div>")
    chain = " → ".join(out.chain) or "none (the model's own distribution)"
    return block(f"{out.strategy or 'generate'}: {plural(len(out.sequences), 'sequence')}; chain: {chain}",
                 "".join(rows), f"background: each token's probability under the model ({SCALE}); hover a token for the candidates "
                 "before and after the chain")

# ----------------------------------------------------------------------------- inspection/'s results


def distribution_html(distribution) -> str:
    """At each temperature, the shown tokens as bars: faded where the cut-offs remove them, the chosen bold."""
    columns = []
    for m, t in enumerate(distribution.temperatures):
        rows = [(text, float(p), bool(distribution.final[m, n] > 0), int(tok) == int(distribution.drawn[m]))
                for n, (tok, text, p) in enumerate(zip(distribution.tokens, distribution.texts, distribution.probs[m]))]
        columns.append(f'<div style="margin-right:24px" data-temperature="{number(t)}"><div>T = {t}: '
                       f"{distribution.final_count[m]:,} tokens kept</div>{bars(rows)}</div>")
    cuts = ", ".join(f"{k}={v}" for k, v in distribution.cutoffs.items()) or "no cut-off"
    return block(f"p(next token), {cuts}; chain: {' → '.join(distribution.chain) or 'none'}",
                 f'<div style="display:flex">{"".join(columns)}</div>',
                 "faded: cut by the chain; bold: the token chosen"
                 + (" (the most probable)" if distribution.seed is None else f" (seed {distribution.seed})"))


def lens_html(lens) -> str:
    """A row per layer (the model's prediction on top), a column per position: each layer's top token."""
    rows, T = lens.top_tokens.shape
    first = max(0, T - MAX_CELLS // rows)  # the last positions, if the grid would be too big
    labels = lens.texts
    grid = [(lens.row_labels[r], [(lens.top_texts[r][t], float(lens.top_probs[r, t]),
                                   f"{lens.row_labels[r]}, after {labels[t]!r}: {lens.top_texts[r][t]!r} "
                                   f"p {chance(lens.top_probs[r, t])}") for t in range(first, T)])
            for r in reversed(range(rows))]
    return block("logit lens: the token each layer would predict after each position",
                 heat_table(labels[first:], grid), f"colour: that token's probability ({SCALE})"
                 + (f"; the first {first} positions left out" if first else ""))


def attention_html(maps) -> str:
    """The first and the last layer, each averaged over its heads: row t the query, column s the key."""
    L, H, T, _ = maps.weights.shape
    first = max(0, T - int(math.sqrt(MAX_CELLS / 2)))  # the last positions, if the grids would be too big
    labels = maps.texts
    tables = []
    for layer in sorted({0, L - 1}):
        mean = maps.weights[layer].mean(axis=0)  # [T, T]
        grid = [(labels[q], [("", float(mean[q, k]) if k <= q else None, f"{labels[q]!r} → {labels[k]!r} "
                             f"{mean[q, k]:.3f}") for k in range(first, T)])
                for q in range(first, T)]
        tables.append(f'<div style="margin-right:24px" data-layer="{layer}"><div>layer {layer}</div>'
                      f"{heat_table(labels[first:], grid)}</div>")
    return block(f"attention, {L} layers x {H} heads: the first and last layer, mean of the heads",
                 f'<div style="display:flex">{"".join(tables)}</div>',
                 "row: the query token; column: the token it looks at (none after it: causal); colour: the weight "
                 f"({SCALE})"
                 + (f"; the first {first} positions left out" if first else ""))


def node_colour(node) -> str:
    """A beam tree node's colour, as render.js's renderBeamTree: the returned blue (the best darker), finished
    green, running black, pruned grey."""
    if node.result is not None:
        return "#2f5fd0" if node.result == 0 else "#6c8fe0"
    return {"finished": "#1b7f3b", "running": "#333"}.get(node.status, "#aab")


def beam_node_html(node) -> str:
    """One candidate of a beam tree: its token coloured by p, its repr on hover."""
    return token_span(node.text, node.prob, repr(node), {"p": number(node.prob)})


def candidate_html(candidate) -> str:
    return token_span(candidate.text, candidate.p, f"id {candidate.id}, p {chance(candidate.p)}",
                      {"id": candidate.id, "p": number(candidate.p)})


def beam_tree_html(tree) -> str:
    """The tree as inline SVG, a column per step (blue: the returned, bold the best; green: finished; grey:
    pruned), its hover each candidate's p and score; then the hypotheses, best first."""
    nodes = [(n.id, n.parent, n.step, n.text, repr(n), node_colour(n), n.result == 0) for n in tree.nodes]
    hyps = "".join(f'<div data-score="{number(score)}">#{r + 1} score {score:.3f}: '
                   f'<span style="white-space:pre-wrap">{escape(text)}</span></div>'
                   for r, (text, score) in enumerate(zip(tree.sequence_texts, tree.scores)))
    return block(repr(tree), f'<div style="overflow-x:auto">{tree_svg(nodes)}</div>{hyps}',
                 "blue: the returned sequences (bold: the best); green: finished; black: kept; grey: pruned; "
                 "hover a token for its p and score")
