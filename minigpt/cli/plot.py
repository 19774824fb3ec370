"""`minigpt plot`: the pictures of inspection/'s data, drawn by views/plots/ (matplotlib, the plots extra).

    minigpt plot probs "The dog" --top-k 5 --top-p 0.9     the next-token distribution and its cut-offs
    minigpt plot beam-tree "I have a dream"                every candidate beam search weighed
    minigpt plot lens "The Eiffel Tower is in"             the logit lens
    minigpt plot attention "Hello, my dog" --layer 0       attention weights
    minigpt plot attribute "The Eiffel Tower is in"        each head's and MLP's share of a logit (inside.py's flags)
    minigpt plot patch --clean "..." --corrupted "..."     activation patching as a heat map
    minigpt plot heads "..." --kind induction              head scores, the best head's attention

Like main.py, it parses, calls the library and prints the file it wrote; nothing here computes.
"""

from pathlib import Path

from .. import inspection
from ..core.links import MIN_P, TOP_K, TOP_P
from ..core.tokenizer import Tokenizer
from ..links.penalties import NO_REPEAT_NGRAM_SIZE
from ..strategies.options import EARLY_STOPPING, LENGTH_PENALTY, MAX_NEW_TOKENS, NUM_BEAMS
from ..views import plots
from ..views.labels import token_label
from ..views.plots.canvas import check_out
from .args import add_model, add_option, command_line_text, integer, model_from, real
from .inside import (add_attribute_flags, add_heads_flags, add_patch_flags, attribution_of, check_top, heads_of,
                     patching_of)


def plot_prompt(args, tok: Tokenizer) -> list[int]:
    """The prompt's ids; an empty prompt is <|endoftext|>, as for generate."""
    return tok.encode(command_line_text(args.prompt)) or [tok.eot]


def plot_title(args, what: str, settings: str = "") -> str:
    """"<what> · <model> · "<prompt>" · <settings>": a local checkpoint by its folder's name."""
    model = Path(args.model).resolve().name if Path(args.model).exists() else args.model
    prompt = command_line_text(args.prompt).replace("\n", "↵")
    prompt = prompt if len(prompt) <= 60 else "…" + prompt[-59:]
    return f"{what} · {model} · “{prompt}”" + (f" · {settings}" if settings else "")


def cmd_plot_probs(args):
    check_out(args.out)  # before the model is even loaded
    tok, (model, _) = Tokenizer(), model_from(args)
    args.temperature = args.temperature or [1.0]
    data = inspection.next_token_distribution(model, plot_prompt(args, tok), temperatures=args.temperature,
                                              top_k=args.top_k, top_p=args.top_p, min_p=args.min_p, top=args.top,
                                              seed=args.seed)
    settings = ", ".join([f"T = {' / '.join(f'{t:g}' for t in args.temperature)}"]
                         + [f"{name.replace('_', '-')} = {value:g}" for name, value in data.cutoffs.items()])
    plots.plot_probs(data, plot_title(args, "next token", settings), args.out, tokenizer=tok)
    print(args.out)


def cmd_plot_beam_tree(args):
    check_out(args.out)  # before the model is even loaded
    tok, (model, _) = Tokenizer(), model_from(args)
    options = {"no_repeat_ngram_size": args.no_repeat_ngram_size} if args.no_repeat_ngram_size else {}
    tree = inspection.beam_tree(model, plot_prompt(args, tok), num_beams=args.num_beams,
                                max_new_tokens=args.max_new_tokens,
                                length_penalty=args.length_penalty, early_stopping=args.early_stopping, **options)
    settings = (f"num_beams = {args.num_beams}, length_penalty = {args.length_penalty:g}, early_stopping = "
                f"{args.early_stopping}" + "".join(f", {k} = {v}" for k, v in options.items()))
    plots.plot_beam_tree(tree, plot_title(args, "beam search", settings), args.out, tokenizer=tok,
                         color_by=args.color_by)
    print(args.out)


def cmd_plot_lens(args):
    check_out(args.out)  # before the model is even loaded
    tok, (model, _) = Tokenizer(), model_from(args)
    lens = inspection.logit_lens(model, plot_prompt(args, tok))
    plots.plot_lens(lens, tok, plot_title(args, "logit lens"), args.out)
    print(args.out)


def cmd_plot_attention(args):
    check_out(args.out)  # before the model is even loaded
    tok, (model, _) = Tokenizer(), model_from(args)
    ids = plot_prompt(args, tok)
    maps = inspection.attention_patterns(model, ids).weights
    where = f"layer {args.layer}" + (f", head {args.head}" if args.head is not None else ", every head")
    plots.plot_attention(maps, args.layer, args.head, [token_label(tok, i) for i in ids],
                         plot_title(args, "attention", where), args.out)
    print(args.out)


def cmd_plot_attribute(args):
    check_out(args.out)  # before the model is even loaded
    tok, top = Tokenizer(), check_top(args.top)
    result = attribution_of(args, tok, model_from(args)[0])
    settings = ", ".join([f"by {args.by}"] + [flag for flag in ("fold_value_biases", "centered") if vars(args)[flag]])
    plots.plot_attribution(result, tok, plot_title(args, "attribution", settings), args.out, top)
    print(args.out)


def cmd_plot_patch(args):
    check_out(args.out)
    tok = Tokenizer()
    result = patching_of(args, tok, model_from(args)[0])
    args.prompt = args.clean  # the title names the clean prompt
    plots.plot_patch(result, tok, plot_title(args, "patching", f"corrupted “{command_line_text(args.corrupted)}”"),
                     args.out)
    print(args.out)


def cmd_plot_heads(args):
    check_out(args.out)
    tok = Tokenizer()
    result = heads_of(args, tok, model_from(args)[0])
    plots.plot_heads(result, tok, plot_title(args, "head detectors", args.kind), args.out)
    print(args.out)


def add_inside_plots(views):
    """plot attribute | patch | heads: the flags of the commands of the same names (inside.py), and --out."""
    for name, help, flags, run in (
            ("attribute", "each head's and MLP's share of a token's logit, as signed bars", add_attribute_flags,
             cmd_plot_attribute),
            ("patch", "activation patching: the metric after each patch, as a heat map", add_patch_flags,
             cmd_plot_patch),
            ("heads", "head scores, and the best head's attention beside its detection pattern", add_heads_flags,
             cmd_plot_heads)):
        v = views.add_parser(name, help=help)
        flags(v)
        v.add_argument("--out", default=f"{name}.png", metavar="FILE.png",
                       help=f"the picture to write (default {name}.png)")
        if name == "attribute":
            v.add_argument("--top", type=integer, default=15, metavar="N", help="how many parts to draw (default 15)")
        v.set_defaults(run=run)


def add_plot_commands(sub):
    """minigpt plot probs | beam-tree | lens | attention | attribute | patch | heads: each writes a picture
    (matplotlib: the plots extra)."""
    plot = sub.add_parser("plot", help='pictures of what the model computes (needs pip install -e ".[plots]")')
    views = plot.add_subparsers(dest="view", required=True)

    def view(name, help, run, out):
        v = views.add_parser(name, help=help)
        v.add_argument("prompt", help="the text the model reads (empty: <|endoftext|>)")
        add_model(v)
        v.add_argument("--out", default=out, metavar="FILE.png", help=f"the picture to write (default {out})")
        v.set_defaults(run=run)
        return v

    v = view("probs", "the next-token distribution: the top N tokens, the cut-offs, "
                      "temperatures", cmd_plot_probs, "probs.png")
    v.add_argument("--temperature", type=real, action="append", metavar="T",
                   help="a temperature to draw the distribution at (repeatable: each is overlaid; default 1)")
    for option in (TOP_K, TOP_P, MIN_P):
        add_option(v, option, default=None)
    v.add_argument("--top", type=integer, default=20, metavar="N", help="how many tokens to show (default 20)")
    v.add_argument("--seed", type=integer, metavar="N",
                   help="select the token sampling would draw with this seed (default: the most probable)")

    v = view("beam-tree", "every candidate beam search weighed, as a tree", cmd_plot_beam_tree, "beam-tree.png")
    add_option(v, NUM_BEAMS, default=3)  # a tree a picture can show: 3 beams, 5 steps
    add_option(v, MAX_NEW_TOKENS, default=5)
    for option in (LENGTH_PENALTY, EARLY_STOPPING, NO_REPEAT_NGRAM_SIZE):
        add_option(v, option, default=option.default)
    v.add_argument("--color-by", choices=("probability", "score"), default="probability",
                   help="colour a node by p(token | beam) or by its beam score (default probability)")

    view("lens", "the logit lens: each layer's top next token at each position", cmd_plot_lens, "lens.png")

    v = view("attention", "attention weights over the prompt: one head, or every head of a layer", cmd_plot_attention,
             "attention.png")
    v.add_argument("--layer", type=integer, required=True, metavar="L", help="the layer, from 0")
    v.add_argument("--head", type=integer, metavar="H", help="one head, from 0 (default: every head, as a grid)")

    add_inside_plots(views)
