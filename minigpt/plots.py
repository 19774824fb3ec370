"""Pictures of what the model computes: the data of inspection.py drawn with matplotlib.

    plot_probs       the next-token distribution: bars, the cut-offs of top-k / top-p / min-p, temperatures
    plot_beam_tree   every candidate beam search weighed; the returned hypotheses and the best one highlighted
    plot_lens        the logit lens: each layer's top next token and its probability, as a heat map
    plot_attention   attention weights over the prompt: one head, or every head of a layer as a grid

Each function writes an image file (its format from the file name's suffix, checked by canvas.check_out)
and returns the matplotlib Figure. Tokens are labelled with tokenizer.visible (␣ for a space, ↵ for a
newline), glyphs DejaVu Sans, the default font, has.

What this module is not: it computes nothing about the model (inspection.py does), and matplotlib, the
figure and the file are canvas.py's.
"""

import math

import numpy as np

from .canvas import PlotsUnavailable, figure, require_matplotlib, save
from .tokenizer import Tokenizer, visible
from .views import shown_token


def token_text(tokenizer: Tokenizer, token: int, width: int = 12) -> str:
    """A token as a label, as the command line shows it (views.shown_token): its text made visible, bytes
    that are not whole UTF-8 as <hex>, an id outside GPT-2's vocabulary as #id, cut to `width` characters."""
    return shown_token(tokenizer, token, width)


def text_colour(rgba) -> str:
    """Black or white, whichever reads better on a background colour (by its relative luminance)."""
    r, g, b = rgba[:3]
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "white"


# ----------------------------------------------------------------------------- next-token distribution

CUTOFF_STYLE = {"top_k": ("-", "top-k"), "top_p": ("--", "top-p"), "min_p": (":", "min-p")}


def temperature_colours(n: int):
    """One colour per temperature: a single blue, or dark violet (the lowest T) to orange (the highest)."""
    from matplotlib import colormaps

    if n == 1:
        return [(0.16, 0.40, 0.66, 1.0)]
    return [colormaps["plasma"](x) for x in np.linspace(0.08, 0.78, n)]


def plot_probs(data, title: str, out, tokenizer: Tokenizer | None = None):
    """Bars of p(next token) for the N most probable tokens (inspection.NextTokenDistribution), one bar
    per temperature side by side. A cut-off is a vertical line after the last token it keeps (min-p
    also a horizontal line at its threshold min_p * p_max); bars that sampling drops are faded; the
    selected token is outlined and its label set in bold."""
    require_matplotlib()
    tokenizer = tokenizer or Tokenizer()
    M, N = data.probs.shape
    fig = figure(max(7.0, 0.42 * N + 2.5), 5.0)
    ax = fig.add_subplot()
    colours = temperature_colours(M)
    top = float(data.probs.max()) * 1.18  # the y-axis' top: room above the bars for the cut-offs' labels
    draw_bars(ax, data, colours, top)
    ax.set_ylim(0, top)
    ax.set_xlim(-0.6, N - 0.4)
    draw_cutoffs(ax, data, colours, top)
    ax.set_xticks(np.arange(N))
    labels = ax.set_xticklabels([token_text(tokenizer, int(t)) for t in data.tokens], rotation=55, ha="right",
                                rotation_mode="anchor", fontsize=9)
    for token, label in zip(data.tokens, labels):
        if token == data.selected:
            label.set_color("#d62728")
            label.set_fontweight("bold")
    ax.set_ylabel("probability")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    how = "drawn with seed " + str(data.seed) if data.seed is not None else "greedy: the most probable"
    rest = ", ".join(f"{r:.1%}" for r in data.rest)
    kept = ", ".join(str(c) for c in data.final_count)
    note = (f"selected (red): {token_text(tokenizer, data.selected)!s} ({how}) · sampling keeps {kept} "
            f"token(s); faded bars are cut · tokens not shown: {rest}")
    ax.set_title(note, fontsize=8.5, color="0.3")
    fig.suptitle(title, fontsize=11)
    if M > 1:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=9, frameon=False)
    return save(fig, out)


def draw_bars(ax, data, colours, top: float):
    """A bar per token and temperature, side by side, faded where sampling drops the token. The selected
    token's bar is outlined in red, or with several temperatures marked by a red triangle above its bars."""
    M, N = data.probs.shape
    width = 0.8 / M
    x = np.arange(N)
    for m, t in enumerate(data.temperatures):
        kept = data.final[m] > 0  # [N]
        offsets = x - 0.4 + width * (m + 0.5)
        bars = ax.bar(offsets, data.probs[m], width=width * 0.92, color=colours[m], label=f"T = {t:g}")
        for bar, keep in zip(bars, kept):
            if not keep:
                bar.set_alpha(0.28)
    chosen = np.flatnonzero(data.tokens == data.selected)
    if chosen.size:  # the selected token is among those shown
        if M == 1:
            bars[chosen[0]].set_edgecolor("#d62728")
            bars[chosen[0]].set_linewidth(2.2)
        else:
            ax.plot(chosen[0], data.probs[:, chosen[0]].max() + top * 0.03, marker="v", color="#d62728", markersize=9)


def draw_cutoffs(ax, data, colours, top: float):
    """Each cut-off given: top-k once (it does not depend on the temperature), top-p and min-p once per
    temperature, each labelled with its setting and how many tokens it keeps, the labels stacked down
    from the top. min-p also draws a horizontal line at its threshold min_p * p_max."""
    M, N = data.probs.shape
    labels_drawn = 0
    for name, (style, label) in CUTOFF_STYLE.items():
        if name not in data.cutoffs:
            continue
        for m in range(1) if name == "top_k" else range(M):
            label_y = top * (0.97 - 0.065 * labels_drawn)
            labels_drawn += 1
            colour = "0.15" if name == "top_k" or M == 1 else colours[m]
            at_t = "" if name == "top_k" or M == 1 else f" (T={data.temperatures[m]:g})"
            setting = f"{label} = {data.cutoffs[name]:g}{at_t}"
            draw_cutoff(ax, int(data.kept_count[name][m]), N, label_y, setting, colour, style)
            if name == "min_p":
                threshold = data.cutoffs["min_p"] * float(data.probs[m, 0])
                ax.axhline(threshold, color=colour, linestyle=style, linewidth=1.0, alpha=0.8)


def draw_cutoff(ax, count: int, N: int, label_y: float, setting: str, colour, style: str):
    """A cut-off that keeps `count` tokens: a vertical line after the last one, labelled at height label_y;
    if it keeps all N tokens shown or more, only the label, at the right edge with an arrow."""
    box = dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8)
    if count < N:
        ax.axvline(count - 0.5, color=colour, linestyle=style, linewidth=1.6)
        right_half = count > 0.6 * N  # there the label goes on the line's left, inside the axes
        ax.text(count - (0.55 if right_half else 0.45), label_y, f"{setting}: keeps {count}", color=colour,
                fontsize=8, va="top", ha="right" if right_half else "left", bbox=box)
    else:
        ax.text(N - 0.45, label_y, f"{setting}: keeps {count} →", ha="right", va="top", fontsize=8,
                color=colour, bbox=box)


# ----------------------------------------------------------------------------- beam tree


def tree_layout(tree) -> dict[int, float]:
    """y of every node: leaves one unit apart top to bottom (children by score, best first), a parent
    midway between its first and last child (a tidy tree)."""
    children = {node.id: [] for node in tree.nodes}
    for node in tree.nodes[1:]:
        children[node.parent].append(node)
    y, next_leaf = {}, [0.0]

    def place(node):
        kids = sorted(children[node.id], key=lambda n: -n.score)
        if not kids:
            y[node.id] = -next_leaf[0]
            next_leaf[0] += 1
        else:
            for kid in kids:
                place(kid)
            y[node.id] = (y[kids[0].id] + y[kids[-1].id]) / 2

    place(tree.nodes[0])
    return y


def prompt_tail(tokenizer: Tokenizer, prompt: list[int], width: int) -> str:
    """The prompt's last whole tokens that fit in about `width` characters, made visible, "…" before them
    if some were left out."""
    tokens = [t for t in prompt if t < tokenizer.n_vocab]
    start = len(tokens) - 1
    while start > 0 and len(tokenizer.decode(tokens[start - 1 :])) <= width:
        start -= 1
    return ("…" if start > 0 else "") + visible(tokenizer.decode(tokens[max(start, 0) :]))


def edge_style(node) -> dict:
    """The line into a node: thick red on the best hypothesis, dark on the other returned ones, grey on
    beams dropped later, dashed and fainter into a pruned candidate."""
    if node.result == 0:
        return dict(color="#d62728", lw=3.2)
    if node.result is not None:
        return dict(color="0.15", lw=2.0, alpha=0.9)
    if node.status == "pruned":
        return dict(color="0.55", lw=1.0, alpha=0.35, linestyle="--")
    return dict(color="0.55", lw=1.0, alpha=0.6)


def plot_beam_tree(tree, title: str, out, tokenizer: Tokenizer | None = None, color_by: str = "probability"):
    """The beam search tree (inspection.BeamTree): a node per candidate (its token, and p(token) or its
    beam score), coloured by token probability or by sequence score. The paths of the returned
    hypotheses are drawn dark, the best one thick red; pruned candidates and abandoned beams are faded."""
    require_matplotlib()
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.lines import Line2D

    if color_by not in ("probability", "score"):
        raise ValueError(f"color_by must be 'probability' or 'score', got {color_by!r}.")
    tokenizer = tokenizer or Tokenizer()
    y = tree_layout(tree)
    steps = max((n.step for n in tree.nodes), default=0) + 1
    leaves = -min(y.values()) + 1
    fig = figure(2.0 * (steps + 1) + 1.6, max(3.5, 0.48 * leaves + 1.4))
    ax = fig.add_subplot()
    cmap = colormaps["viridis"]
    values = [n.prob if color_by == "probability" else n.score for n in tree.nodes[1:]] or [0.0]
    norm = Normalize(0, 1) if color_by == "probability" else Normalize(min(values), max(values))

    for node in tree.nodes[1:]:
        parent = tree.nodes[node.parent]
        ax.plot([parent.step + 1, node.step + 1], [y[parent.id], y[node.id]], zorder=1, **edge_style(node))

    for node in tree.nodes:
        if node.parent < 0:
            label = prompt_tail(tokenizer, tree.prompt, 16)
            ax.text(0, y[node.id], label, ha="center", va="center", fontsize=9, zorder=3,
                    bbox=dict(boxstyle="round,pad=0.4", fc="0.92", ec="0.4"))
            continue
        value = node.prob if color_by == "probability" else node.score
        colour = cmap(norm(value))
        faded = node.result is None
        detail = f"p={node.prob:.2f}" if color_by == "probability" else f"{node.score:.2f}"
        mark = " ✓" if node.status == "finished" else ""
        edge = "#d62728" if node.result == 0 else ("black" if node.result is not None else "0.5")
        ax.text(node.step + 1, y[node.id], f"{token_text(tokenizer, node.token, 11)}{mark}\n{detail}", ha="center",
                va="center", fontsize=8, zorder=3, color=text_colour(colour), alpha=0.6 if faded else 1.0,
                bbox=dict(boxstyle="round,pad=0.3", fc=colour, ec=edge, lw=2.0 if not faded else 0.8,
                          alpha=(0.3 if node.status == "pruned" else 0.6) if faded else 1.0))

    for s in range(steps):
        ax.text(s + 1, 0.9, f"step {s + 1}", ha="center", va="bottom", fontsize=9, color="0.3")
    ax.set_xlim(-0.7, steps + 0.6)
    ax.set_ylim(-leaves + 0.3, 1.5)
    ax.axis("off")
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.6, pad=0.01,
                 label="p(token | beam)" if color_by == "probability" else "beam score (finished: / length^α)")
    handles = [Line2D([], [], color="#d62728", lw=3.2, label="best hypothesis"),
               Line2D([], [], color="0.15", lw=2.0, label="other returned hypotheses"),
               Line2D([], [], color="0.55", lw=1.0, alpha=0.6, label="beam dropped later"),
               Line2D([], [], color="0.55", lw=1.0, alpha=0.35, linestyle="--", label="candidate pruned"),
               Line2D([], [], color="none", label="✓ finished (end-of-text or last step)")]
    ax.legend(handles=handles, loc="lower left", fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=11)
    return save(fig, out)


# ----------------------------------------------------------------------------- heat maps


def annotate_cells(ax, image, texts, fontsize):
    """Write texts [R, C] into the cells of an imshow image, black or white by the cell's colour."""
    values = image.get_array()
    for (r, c), text in np.ndenumerate(np.asarray(texts, dtype=object)):
        if text is None or np.ma.is_masked(values[r, c]):
            continue
        ax.text(c, r, text, ha="center", va="center", fontsize=fontsize,
                color=text_colour(image.cmap(image.norm(values[r, c]))))


def plot_lens(lens, tokenizer: Tokenizer, title: str, out):
    """The logit lens (inspection.LogitLens) as a heat map: a row per layer (the embeddings at the bottom,
    the model's output at the top), a column per position; each cell is coloured by the probability of
    the top token and names it. The input tokens are along the bottom, the true next tokens along the
    top; a cell whose prediction is the true next token is outlined."""
    require_matplotlib()
    from matplotlib import colormaps
    from matplotlib.patches import Rectangle

    rows, T = lens.top_probs.shape
    fig = figure(max(6.0, 1.05 * T + 2.8), max(3.5, 0.5 * rows + 2.4))
    ax = fig.add_subplot()
    image = ax.imshow(lens.top_probs, cmap=colormaps["Blues"], vmin=0, vmax=1, aspect="auto", origin="lower")
    texts = [[token_text(tokenizer, int(t), 9) for t in row] for row in lens.top_tokens]
    annotate_cells(ax, image, texts, fontsize=9 if T <= 12 else 8 if T <= 16 else 7)
    for t in range(T - 1):
        for layer in range(rows):
            if lens.top_tokens[layer, t] == lens.tokens[t + 1]:
                ax.add_patch(Rectangle((t - 0.5, layer - 0.5), 1, 1, fill=False, ec="#d62728", lw=1.8))
    ax.set_xticks(range(T))
    ax.set_xticklabels([token_text(tokenizer, t) for t in lens.tokens], rotation=45, ha="right",
                       rotation_mode="anchor", fontsize=9)
    ax.set_xlabel("input token (position)")
    top = ax.secondary_xaxis("top")
    top.set_xticks(range(T))
    top.set_xticklabels([token_text(tokenizer, t) for t in lens.tokens[1:]] + ["?"], rotation=45, ha="left",
                        rotation_mode="anchor", fontsize=9)
    top.set_xlabel("true next token (outlined in red where a layer predicts it)", fontsize=9)
    ax.set_yticks(range(rows))
    ax.set_yticklabels(["embeddings"] + [f"h{l} out" for l in range(rows - 2)] + [f"h{rows - 2} = output"], fontsize=9)
    ax.set_ylabel("residual stream after")
    fig.colorbar(image, ax=ax, shrink=0.8, pad=0.01, label="p(top token)")
    fig.suptitle(title, fontsize=11)
    return save(fig, out)


def check_index(name: str, value, size: int, what: str):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not 0 <= value < size:
        raise ValueError(f"{name} must be a whole number from 0 to {size - 1} (the model has {size} {what}), "
                         f"got {value!r}.")


def attention_panel(ax, weights, labels, cmap, annotate: bool, fontsize: float):
    """One head's weights [T, T] as an image, the masked future (above the diagonal) left blank."""
    T = weights.shape[0]
    future = np.triu(np.ones((T, T), dtype=bool), k=1)
    image = ax.imshow(np.ma.masked_array(weights, future), cmap=cmap, vmin=0, vmax=1)
    ax.set_facecolor("0.96")
    if annotate:
        annotate_cells(ax, image, [[f"{w:.2f}".lstrip("0") if w < 1 else "1" for w in row] for row in weights],
                       fontsize=fontsize)
    ax.set_xticks(range(T))
    ax.set_yticks(range(T))
    ax.set_xticklabels(labels, rotation=90, fontsize=fontsize + 1)
    ax.set_yticklabels(labels, fontsize=fontsize + 1)
    ax.tick_params(length=0)
    return image


def plot_attention(maps, layer: int, head, tokens, title: str, out):
    """Attention weights maps [L, H, T, T] (inspection.attention_maps) of one layer as heat maps: row t
    is the query at position t, column s the key it looks at, each row summing to 1. One head, or with
    head None every head of the layer in a grid. tokens: the text of each prompt token."""
    require_matplotlib()
    from matplotlib import colormaps

    L, H, T, _ = maps.shape
    check_index("layer", layer, L, "layers, 0-based")
    if head is not None:
        check_index("head", head, H, "heads per layer, 0-based")
    if len(tokens) != T:
        raise ValueError(f"tokens must name each of the {T} positions of the attention maps, got {len(tokens)}.")
    labels = [visible(t) if len(t) <= 12 else visible(t[:11]) + "…" for t in tokens]
    cmap = colormaps["Blues"]
    if head is not None:
        size = max(4.5, 0.45 * T + 2.0)
        fig = figure(size + 1.2, size)
        ax = fig.add_subplot()
        image = attention_panel(ax, maps[layer, head], labels, cmap, annotate=T <= 16, fontsize=7.5)
        ax.set_xlabel("key: the token looked at")
        ax.set_ylabel("query: the token looking")
        fig.colorbar(image, ax=ax, shrink=0.8, label="attention weight")
    else:
        cols = math.ceil(math.sqrt(H))
        rows = math.ceil(H / cols)
        panel = max(2.4, 0.22 * T + 1.2)
        fig = figure(cols * panel + 1.0, rows * panel + 0.8)
        axes = fig.subplots(rows, cols, squeeze=False)
        for h, ax in enumerate(axes.flat):
            if h >= H:
                ax.axis("off")
                continue
            image = attention_panel(ax, maps[layer, h], labels, cmap, annotate=False, fontsize=6)
            ax.set_title(f"head {h}", fontsize=9)
            if h % cols:
                ax.set_yticklabels([])
            if h < H - cols:
                ax.set_xticklabels([])
        fig.colorbar(image, ax=axes, shrink=0.6, label="attention weight")
    fig.suptitle(title, fontsize=11)
    return save(fig, out)


__all__ = ["PlotsUnavailable", "plot_probs", "plot_beam_tree", "plot_lens", "plot_attention", "token_text"]
