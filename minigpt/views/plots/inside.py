"""Pictures of why the model predicts what it does (inspection/inside/): attribution, patching, head detectors.

    plot_attribution   an Attribution: its largest parts as signed bars, the rest and the leftover, and their
                       sum, which is the model's logit
    plot_patch         a PatchResult: the metric after each patch as a heat map over layers x positions (the
                       tokens on the axis) or layers x heads, on PuOr centred on 0, the colour bar marking the
                       clean and the corrupted metric
    plot_heads         HeadScores: the [layer, head] scores, and the best head's attention beside the pattern
                       this kind of head would have

Signs matter in the first two, so they use the diverging PuOr (colour-blind safe: purple above 0, orange below);
the head scores are shares in [0, 1], on viridis as every other picture. Layers and heads count from 0.

What this module is not: the numbers (inspection/inside/), or the figure and its file (canvas.py).
"""

import numpy as np

from ...core.tokenizer import Tokenizer
from ..labels import logit_name
from .canvas import annotate_cells, figure, legend_outside, note, require_matplotlib, save, token_text
from .maps import KEY, QUERY, attention_panel

UP, DOWN, SUM = "#542788", "#b35806", "#444444"  # PuOr's purple and orange ends; the sum in grey
PARTS = {"head": "L1H2: layer 1's head 2; 0_mlp_out: layer 0's MLP; bias: the attention output biases",
         "layer": "0_attn_out, 0_mlp_out: layer 0's attention and MLP, their biases included"}


def attribution_rows(a, top: int) -> list[tuple[str, float, str]]:
    """(label, value, colour) from the top bar down: the largest parts, the others summed, the leftover, the sum."""
    shown = a.top(top)
    rows = [(label, v, UP if v >= 0 else DOWN) for label, v in shown]
    if len(shown) < len(a.labels):
        rest = float(a.contributions.sum()) - sum(v for _, v in shown)
        rows.append((f"the other {len(a.labels) - len(shown)} parts", rest, UP if rest >= 0 else DOWN))
    rows.append(("leftover (ln_f bias)", a.leftover, UP if a.leftover >= 0 else DOWN))
    return rows + [("sum = the logit", a.total, SUM)]


def plot_attribution(a, tokenizer: Tokenizer, title: str, out, top: int = 15):
    """An Attribution as horizontal bars, one per part (the `top` largest), then the rest, the leftover and their
    sum; a dashed line marks the sum on the axis."""
    require_matplotlib()
    from matplotlib.patches import Patch

    rows = attribution_rows(a, top)
    what = logit_name(tokenizer, a.token, a.versus, a.centered)
    fig = figure(8.5, max(4.0, 0.32 * len(rows) + 2.6))
    ax = fig.add_subplot()
    y = np.arange(len(rows))[::-1]
    values = [v for _, v, _ in rows]
    ax.barh(y, values, color=[c for _, _, c in rows], height=0.7)
    ax.axvline(0, color="black", lw=0.8)
    ax.axvline(a.total, color=SUM, lw=1, ls="--")
    span = max(abs(v) for v in values + [1e-9])
    for yy, v in zip(y, values):
        ax.text(v + 0.01 * span * (1 if v >= 0 else -1), yy, f"{v:+.3f}", va="center",
                ha="left" if v >= 0 else "right", fontsize=8)
    ax.set_xlim(min(0, min(values)) - 0.18 * span, max(0, max(values)) + 0.18 * span)
    ax.set_yticks(y)
    ax.set_yticklabels([label for label, _, _ in rows], fontsize=9)
    ax.get_yticklabels()[-1].set_fontweight("bold")
    ax.set_xlabel(f"contribution to {what} (in logits)")
    ax.set_ylabel("part of the model (layers and heads from 0)")
    ax.set_title(f"after {token_text(tokenizer, a.tokens[a.position])} (position {a.position}), by {a.by}: the "
                 f"{min(top, len(a.labels))} largest of {len(a.labels)} parts; parts + leftover = the model's own "
                 f"{a.logit:.3f}", fontsize=9)
    legend_outside(fig, [
        Patch(color=UP, label="purple: pushes the logit up"), Patch(color=DOWN, label="orange: pushes it down"),
        Patch(color=SUM, label="grey, and the dashed line: the sum of the bars above it, the model's logit"),
        note(PARTS[a.by])], columns=2)
    fig.suptitle(title, fontsize=11)
    return save(fig, out)


def patch_labels(tokenizer: Tokenizer, result) -> list[str]:
    """The x axis: each head, or each position's clean token with the corrupted one under it where they differ."""
    if result.where == "head":
        return [f"head {h}" for h in range(result.values.shape[1])]
    return [token_text(tokenizer, c, 10) + (f"\n→ {token_text(tokenizer, d, 10)}" if c != d else "")
            for c, d in zip(result.clean_tokens, result.corrupted_tokens)]


def plot_patch(result, tokenizer: Tokenizer, title: str, out):
    """A PatchResult as a heat map: a row per layer (0 at the bottom), a column per position or head; each cell
    the metric of the corrupted run with that one activation from the clean run, on PuOr centred on 0."""
    require_matplotlib()
    from matplotlib import colormaps

    L, N = result.values.shape
    top = float(max(np.abs(result.values).max(), abs(result.clean_metric), abs(result.corrupted_metric), 1e-9))
    fig = figure(max(8.5, 0.9 * N + 3.5), max(3.8, 0.5 * L + 3.0))
    ax = fig.add_subplot()
    image = ax.imshow(result.values, cmap=colormaps["PuOr"], vmin=-top, vmax=top, aspect="auto", origin="lower")
    if N <= 24:
        annotate_cells(ax, image, [[f"{v:+.2f}" for v in row] for row in result.values], fontsize=8)
    ax.set_xticks(range(N))
    ax.set_xticklabels(patch_labels(tokenizer, result), rotation=0 if result.where == "head" else 45,
                       ha="center" if result.where == "head" else "right", rotation_mode="anchor", fontsize=9)
    ax.set_xlabel("head patched (its output at every position)" if result.where == "head" else
                  "position patched: the clean token (→ the corrupted one, where they differ)")
    ax.set_yticks(range(L))
    ax.set_ylabel("layer (from 0)")
    metric = f"{logit_name(tokenizer, result.answer)} - {logit_name(tokenizer, result.wrong)}"
    bar = fig.colorbar(image, ax=ax, shrink=0.9, pad=0.01, label=f"{metric}\nafter the patch")
    for value, name in ((result.clean_metric, "clean"), (result.corrupted_metric, "corrupted")):
        bar.ax.axhline(value, color="black", lw=1.5)
        bar.ax.text(-0.1, value, name, ha="right", va="center", fontsize=8, transform=bar.ax.get_yaxis_transform())
    ax.set_title(f"patching {result.where}: the corrupted prompt run with one activation from the clean one\n"
                 f"unpatched: clean {result.clean_metric:.3f}, corrupted {result.corrupted_metric:.3f}", fontsize=9)
    legend_outside(fig, [note(f"each cell: {metric} at the last position after that one patch"),
                         note("purple above 0, orange below (PuOr, centred on 0)"),
                         note("the black lines on the colour bar: the clean and the corrupted runs, unpatched")])
    fig.suptitle(title, fontsize=11)
    return save(fig, out)


def plot_heads(scores, tokenizer: Tokenizer, title: str, out):
    """HeadScores: the [layer, head] scores (0 to 1, the best outlined), then the best head's attention and the
    detection pattern side by side, a row per query and a column per key."""
    require_matplotlib()
    from matplotlib import colormaps
    from matplotlib.patches import Patch, Rectangle

    L, H = scores.scores.shape
    T = len(scores.tokens)
    (name, best), = scores.top(1)
    l, h = map(int, name[1:].split("H"))
    panel = max(3.2, 0.16 * T + 1.6)
    fig = figure(2.2 + 0.5 * H + 2 * panel, panel + 2.4)
    grid, attention, detection = fig.subplots(1, 3, width_ratios=[0.5 * H + 1, panel, panel])
    cmap = colormaps["viridis"]
    image = grid.imshow(scores.scores, cmap=cmap, vmin=0, vmax=1, origin="lower")
    annotate_cells(grid, image, [[f"{v:.3f}" for v in row] for row in scores.scores], fontsize=7)
    grid.add_patch(Rectangle((h - 0.5, l - 0.5), 1, 1, fill=False, ec="#d62728", lw=2))
    grid.set_xticks(range(H))
    grid.set_yticks(range(L))
    grid.set_xlabel("head (from 0)")
    grid.set_ylabel("layer (from 0)")
    grid.set_title(f"{scores.kind} score", fontsize=10)
    fig.colorbar(image, ax=grid, location="bottom", shrink=0.9, label="share of attention on the pattern")
    labels = [token_text(tokenizer, t, 8) for t in scores.tokens]
    fontsize = 7 if T <= 24 else 5
    article = "an" if scores.kind[0] in "aeiou" else "a"
    for ax, weights, heading in ((attention, scores.patterns[l, h], f"{name}'s attention (score {best:.3f})"),
                                 (detection, scores.detection, f"where {article} {scores.kind} head looks")):
        shown = attention_panel(ax, weights, labels, cmap, annotate=False, fontsize=fontsize)
        ax.set_xlabel(KEY, fontsize=9)
        ax.set_ylabel(QUERY, fontsize=9)
        ax.set_title(heading, fontsize=10)
    fig.colorbar(shown, ax=[attention, detection], shrink=0.8, label="attention weight (the pattern: 0 or 1)")
    legend_outside(fig, [
        Patch(fill=False, ec="#d62728", lw=2, label="red outline: the best head, whose attention is drawn"),
        Patch(fc="0.96", ec="0.7", label="blank: the future, which GPT-2 cannot attend to"),
        note("score: the share of a head's attention that falls where the pattern is 1 (TransformerLens' "
             "detect_head)")])
    fig.suptitle(title, fontsize=11)
    return save(fig, out)
