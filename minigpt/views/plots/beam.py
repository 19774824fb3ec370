"""Beam search as a picture: inspection.BeamTree drawn as a tree, left to right, one column per step.

    plot_beam_tree   a box per candidate the search weighed (its token, and p(token | beam) or its beam score,
                     which gives its colour); the returned hypotheses dark, the best one red, the rest faded

Each step weighs only the 2 x num_beams best candidates over all beams (transformers' rule); the subtitle
says so, since a beam with no box after it had none of them. The legend names every line, outline and mark.

What this module is not: the search (strategies/beam.py) or its record (inspection/beam_tree.py).
"""

from ...call.strategies import doing
from ...core.link import Trait
from ...core.tokenizer import Tokenizer
from ..labels import visible
from .canvas import figure, legend_outside, note, require_matplotlib, save, text_colour, token_text


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

    if color_by not in ("probability", "score"):
        raise ValueError(f"color_by must be 'probability' or 'score', got {color_by!r}.")
    tokenizer = tokenizer or Tokenizer()
    y = tree_layout(tree)
    steps = max((n.step for n in tree.nodes), default=0) + 1
    leaves = -min(y.values()) + 1
    fig = figure(max(2.0 * (steps + 1) + 1.6, 9.0), max(3.5, 0.48 * leaves + 1.4) + 1.4)
    ax = fig.add_subplot()
    cmap = colormaps["viridis"]
    values = [n.prob if color_by == "probability" else n.score for n in tree.nodes[1:]] or [0.0]
    norm = Normalize(0, 1) if color_by == "probability" else Normalize(min(values), max(values))

    for node in tree.nodes[1:]:
        parent = tree.nodes[node.parent]
        ax.plot([parent.step + 1, node.step + 1], [y[parent.id], y[node.id]], zorder=1, **edge_style(node))
    draw_nodes(ax, tree, y, tokenizer, lambda value: cmap(norm(value)), color_by)
    ax.text(0, 0.9, "prompt", ha="center", va="bottom", fontsize=9, color="0.3")
    for s in range(steps):
        ax.text(s + 1, 0.9, f"step {s + 1}", ha="center", va="bottom", fontsize=9, color="0.3")
    ax.set_xlim(-0.7, steps + 0.6)
    ax.set_ylim(-leaves + 0.3, 1.5)
    ax.axis("off")
    what = "p(token | beam)" if color_by == "probability" else "beam score (finished: / length^α)"
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.6, pad=0.01, label=f"box colour: {what}")
    ax.set_title(beam_caption(tree, color_by), fontsize=8.5, color="0.3")
    legend_outside(fig, beam_legend(), columns=3)
    fig.suptitle(title, fontsize=11)
    return save(fig, out)


def beam_caption(tree, color_by: str) -> str:
    """What a box is, and which candidates are drawn: the few each step weighs (BeamTree.candidates_per_step)."""
    beams = tree.options.get("num_beams", tree.candidates_per_step // 2)
    weighed = "draws" if tree.strategy in doing(Trait.SAMPLES) else "weighs only the best"
    shown = "p(token | beam)" if color_by == "probability" else "its beam score"
    return (f"a box: a candidate next token and {shown} · each step {weighed} {tree.candidates_per_step} "
            f"(2 × {beams} beams) candidates over all beams, as transformers does:\nonly those are drawn, so a beam "
            f"with no box after it had no candidate among them")


def beam_legend() -> list:
    """A legend entry for every line, outline and mark of the tree."""
    from matplotlib.lines import Line2D

    return [Line2D([], [], color="#d62728", lw=3.2, label="best hypothesis (red line and outline)"),
            Line2D([], [], color="0.15", lw=2.0, label="other returned hypotheses (dark)"),
            Line2D([], [], color="0.55", lw=1.0, alpha=0.6, label="beam dropped at a later step (faded)"),
            Line2D([], [], color="0.55", lw=1.0, alpha=0.35, linestyle="--", label="candidate pruned at its step"),
            note("✓ finished: end-of-text, or the last step"),
            note("grey box: the prompt's last tokens (␣ a space, ↵ a newline)")]


def draw_nodes(ax, tree, y, tokenizer: Tokenizer, colour_of, color_by: str):
    """The prompt's end at the root, then a box per candidate: its token (✓ if finished) and p or score,
    filled by colour_of(that value), outlined red on the best path, black on another returned one."""
    for node in tree.nodes:
        if node.parent < 0:
            label = prompt_tail(tokenizer, tree.prompt, 16)
            ax.text(0, y[node.id], label, ha="center", va="center", fontsize=9, zorder=3,
                    bbox=dict(boxstyle="round,pad=0.4", fc="0.92", ec="0.4"))
            continue
        value = node.prob if color_by == "probability" else node.score
        colour = colour_of(value)
        faded = node.result is None
        detail = f"p={node.prob:.2f}" if color_by == "probability" else f"{node.score:.2f}"
        mark = " ✓" if node.status == "finished" else ""
        edge = "#d62728" if node.result == 0 else ("black" if node.result is not None else "0.5")
        alpha = (0.3 if node.status == "pruned" else 0.6) if faded else 1.0
        seen = [alpha * c + (1 - alpha) for c in colour[:3]]  # the fill as it looks, faded over white
        ax.text(node.step + 1, y[node.id], f"{token_text(tokenizer, node.token, 11)}{mark}\n{detail}", ha="center",
                va="center", fontsize=8, zorder=3, color=text_colour(seen), alpha=0.75 if faded else 1.0,
                bbox=dict(boxstyle="round,pad=0.3", fc=colour, ec=edge, lw=2.0 if not faded else 0.8, alpha=alpha))
