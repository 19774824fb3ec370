"""The next-token distribution as a picture: inspection.NextTokenDistribution drawn as bars.

    plot_probs   the N most probable tokens, a bar per temperature; each cut-off (top-k, top-p, min-p) a
                 line after the last token it keeps; faded bars: cut; the token chosen at each temperature

The subtitle states how much of the probability the bars hold, how many tokens sampling draws from (only
when a cut-off is given) and the token chosen at each temperature; the legend names every mark.

What this module is not: the numbers (inspection/), or the figure and its file (canvas.py).
"""

import numpy as np

from ...core.tokenizer import Tokenizer
from .canvas import figure, legend_outside, note, require_matplotlib, save, token_text

CHOSEN = "#d62728"  # the chosen token: its bar's outline or triangle, its label
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
    chosen token is outlined in red (with several temperatures, a red triangle above the bar of the
    temperature that chose it) and its label set in red."""
    require_matplotlib()
    tokenizer = tokenizer or Tokenizer()
    M, N = data.probs.shape
    fig = figure(max(7.0, 0.42 * N + 2.5) + 2.6, 5.2)
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
        if token in data.drawn:
            label.set_color(CHOSEN)
            label.set_fontweight("bold")
    ax.set_xlabel(f"next token: the {N} most probable, most probable first (red: the token chosen)", fontsize=9)
    ax.set_ylabel("probability p(next token)")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_title("\n".join(probs_caption(data, tokenizer)), fontsize=8.5, color="0.3")
    fig.suptitle(title, fontsize=11)
    legend_outside(fig, probs_legend(data, colours), "right upper")
    return save(fig, out)


def at_each(values, temperatures) -> str:
    """ "89.4%" for one temperature; "99.9% at T = 0.5, 87.0% at T = 1" for several."""
    if len(values) == 1:
        return values[0]
    return ", ".join(f"{v} at T = {t:g}" for v, t in zip(values, temperatures))


def probs_caption(data, tokenizer: Tokenizer) -> list[str]:
    """What the bars hold; how many tokens the cut-offs leave (only when some are given); what is chosen."""
    M, N = data.probs.shape
    held = at_each([f"{1 - r:.1%}" for r in data.rest], data.temperatures)
    lines = [f"the {N} tokens shown hold {held} of the probability"]
    if data.cutoffs:
        left = at_each([f"{c:,}" for c in data.final_count], data.temperatures)
        lines.append(f"after the cut-offs, sampling draws from {left} tokens")
    shown = set(int(t) for t in data.tokens)
    names = [token_text(tokenizer, int(t)) + ("" if int(t) in shown else " (not shown)") for t in data.drawn]
    if data.seed is None:
        every = " at every temperature" if M > 1 else ""
        lines.append(f"greedy search chooses the most probable token{every}: {names[0]}")
    else:
        same = "" if M == 1 else " (the same random number, read through each T's distribution)"
        lines.append(f"seed {data.seed} draws {at_each(names, data.temperatures)}{same}")
    return lines


def probs_legend(data, colours) -> list:
    """A legend entry for every mark: the bars (per temperature), faded bars, the chosen token, min-p's line."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    M = len(data.temperatures)
    chosen = f"drawn with seed {data.seed}" if data.seed is not None else "greedy's choice"
    handles = [Patch(color=colours[m], label=f"T = {t:g}" if M > 1 else f"p at temperature {t:g}")
               for m, t in enumerate(data.temperatures)]
    if (data.final == 0).any():
        handles.append(Patch(color=colours[0], alpha=0.28, label="faded: cut (not drawn from)"
                             + ("" if M == 1 else " at that T")))
    if M == 1:
        handles.append(Patch(fc=colours[0], ec=CHOSEN, lw=2.2, label=f"red outline: {chosen}"))
    else:
        handles.append(Line2D([], [], color=CHOSEN, marker="v", ls="none", markersize=8,
                              label=f"{chosen}, at the T\nof the bar below"))
    if "min_p" in data.cutoffs:
        handles.append(Line2D([], [], color="0.15", ls=":", label="min-p's threshold:\nmin_p × p(top token)"))
    if any((count < len(data.tokens)).any() for count in data.kept_count.values()):
        handles.append(note("a vertical line follows the\nlast token a cut-off keeps"))
    return handles


def draw_bars(ax, data, colours, top: float):
    """A bar per token and temperature, side by side, faded where sampling drops the token. The chosen
    token's bar is outlined in red, or with several temperatures marked by a red triangle above the bar
    of each temperature, over the token that temperature chose."""
    M, N = data.probs.shape
    width = 0.8 / M
    x = np.arange(N)
    bars = []
    for m, t in enumerate(data.temperatures):
        kept = data.final[m] > 0  # [N]
        offsets = x - 0.4 + width * (m + 0.5)
        bars.append(ax.bar(offsets, data.probs[m], width=width * 0.92, color=colours[m]))
        for bar, keep in zip(bars[m], kept):
            if not keep:
                bar.set_alpha(0.28)
    for m, token in enumerate(data.drawn):
        at = np.flatnonzero(data.tokens == token)
        if not at.size:  # not among the tokens shown: the subtitle says so
            continue
        if M == 1:
            bars[0][at[0]].set_edgecolor(CHOSEN)
            bars[0][at[0]].set_linewidth(2.2)
        else:
            ax.plot(at[0] - 0.4 + width * (m + 0.5), data.probs[m, at[0]] + top * 0.03, marker="v", color=CHOSEN,
                    markersize=max(5, 9 - M))


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
        ax.text(count - (0.55 if right_half else 0.45), label_y, f"{setting}: keeps {count:,}", color=colour,
                fontsize=8, va="top", ha="right" if right_half else "left", bbox=box)
    else:
        ax.text(N - 0.45, label_y, f"{setting}: keeps {count:,}, more than shown →", ha="right", va="top",
                fontsize=8, color=colour, bbox=box)
