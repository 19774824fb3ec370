"""Heat maps of what happens inside the model over one prompt: the logit lens and attention.

    plot_lens        inspection.LogitLens: a row per residual stream (the embeddings, then after each block),
                     a column per position; each cell names the top token read out there, shaded by its p
    plot_attention   inspection.attention_patterns: row t the query at position t, column s the key it looks at;
                     one head, or every head of a layer in a grid

Every axis is labelled (query and key in the grid too) and the legend below names every mark: the red
outline of a lens cell that predicts the true next token, the blank future that GPT-2 cannot attend to.

What this module is not: the arrays themselves (inspection/), or the figure and its file (canvas.py).
"""

import math

import numpy as np

from ...core.tokenizer import Tokenizer
from ..labels import visible
from .canvas import annotate_cells, figure, legend_outside, note, require_matplotlib, save, token_text


def plot_lens(lens, tokenizer: Tokenizer, title: str, out):
    """The logit lens (inspection.LogitLens) as a heat map: a row per layer (the embeddings at the bottom,
    the model's output at the top, named by lens.row_labels), a column per position; each cell is coloured
    by the probability of the top token and names it. The input tokens are along the bottom, the true next
    tokens along the top; a cell whose prediction is the true next token is outlined in red."""
    require_matplotlib()
    from matplotlib import colormaps
    from matplotlib.patches import Patch, Rectangle

    rows, T = lens.top_probs.shape
    fig = figure(max(6.0, 1.05 * T + 4.0), max(3.5, 0.55 * rows + 3.2))
    ax = fig.add_subplot()
    image = ax.imshow(lens.top_probs, cmap=colormaps["viridis"], vmin=0, vmax=1, aspect="auto", origin="lower")
    texts = [[token_text(tokenizer, int(t), 9) for t in row] for row in lens.top_tokens]
    annotate_cells(ax, image, texts, fontsize=9 if T <= 12 else 8 if T <= 16 else 7)
    for t in range(T - 1):
        for layer in range(rows):
            if lens.top_tokens[layer, t] == lens.tokens[t + 1]:
                ax.add_patch(Rectangle((t - 0.5, layer - 0.5), 1, 1, fill=False, ec="#d62728", lw=1.8))
    ax.set_xticks(range(T))
    ax.set_xticklabels([token_text(tokenizer, t) for t in lens.tokens], rotation=45, ha="right",
                       rotation_mode="anchor", fontsize=9)
    ax.set_xlabel("input token, by position")
    top = ax.secondary_xaxis("top")
    top.set_xticks(range(T))
    top.set_xticklabels([token_text(tokenizer, t) for t in lens.tokens[1:]] + ["?"], rotation=45, ha="left",
                        rotation_mode="anchor", fontsize=9)
    top.set_xlabel("true next token (? : not yet written)", fontsize=9)
    ax.set_yticks(range(rows))
    ax.set_yticklabels([label.replace(" (", "\n(") for label in lens.row_labels], fontsize=9)
    ax.set_ylabel("residual stream read out")
    fig.colorbar(image, ax=ax, shrink=0.8, pad=0.01, label="p(top token)")
    legend_outside(fig, [
        note("each cell: the token that stream would predict next, softmax(W_e · ln_f(x)), shaded by its probability"),
        Patch(fill=False, ec="#d62728", lw=1.8, label="red outline: the prediction is the true next token")])
    fig.suptitle(title, fontsize=11)
    return save(fig, out)


def check_index(name: str, value, size: int, what: str):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not 0 <= value < size:
        raise ValueError(f"{name} must be a whole number from 0 to {size - 1} (the model has {size} {what}), "
                         f"got {value!r}.")


KEY, QUERY = "key: the token looked at", "query: the token looking"


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


def attention_legend(annotated: bool) -> list:
    """What the blank cells, the shading and (one head) the numbers mean."""
    from matplotlib.patches import Patch

    return [Patch(fc="0.96", ec="0.7", label="blank: the future, which GPT-2 cannot attend to (causal mask)"),
            note("shade" + (" and number" if annotated else "") + ": how much the query (row) attends to the key "
                 "(column); each row sums to 1")]


def plot_attention(maps, layer: int, head, tokens, title: str, out):
    """Attention weights maps [L, H, T, T] (inspection.attention_patterns) of one layer as heat maps: row t
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
    cmap = colormaps["viridis"]
    if head is not None:
        size = max(4.5, 0.45 * T + 2.0)
        fig = figure(size + 1.2, size + 0.8)
        ax = fig.add_subplot()
        image = attention_panel(ax, maps[layer, head], labels, cmap, annotate=T <= 16, fontsize=7.5)
        ax.set_xlabel(KEY)
        ax.set_ylabel(QUERY)
        fig.colorbar(image, ax=ax, shrink=0.8, label="attention weight")
    else:
        cols = math.ceil(math.sqrt(H))
        rows = math.ceil(H / cols)
        panel = max(2.4, 0.22 * T + 1.2)
        fig = figure(cols * panel + 1.0, rows * panel + 1.6)
        axes = fig.subplots(rows, cols, squeeze=False)
        for h, ax in enumerate(axes.flat):
            if h >= H:
                ax.axis("off")
                continue
            image = attention_panel(ax, maps[layer, h], labels, cmap, annotate=False, fontsize=6)
            ax.set_title(f"head {h}", fontsize=9)
            if h % cols:
                ax.set_yticklabels([])
            else:
                ax.set_ylabel(QUERY, fontsize=9)
            if h < H - cols:
                ax.set_xticklabels([])
            else:
                ax.set_xlabel(KEY, fontsize=9)
        fig.colorbar(image, ax=axes, shrink=0.6, label="attention weight")
    legend_outside(fig, attention_legend(head is not None and T <= 16))
    fig.suptitle(title, fontsize=11)
    return save(fig, out)
