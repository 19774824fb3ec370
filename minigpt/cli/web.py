"""The command line's web views: `minigpt explore` (a local page) and `minigpt report` (one HTML file).

    minigpt explore --model tiny                     serve the page on http://127.0.0.1:8000/ until Ctrl-C
    minigpt report "The stream" --model tiny --out run.html --strategy sample --seed 1

report takes every option of generate (main.py passes its flag builder in, since main.py comes after this
module), generates once with every step traced, and writes render.report_html's file.

What this module is not: the service (server.py), the endpoints (explore.py) or the renderer (render.py, web/).
"""

import sys
import webbrowser
from pathlib import Path

from ..call.generate import generate
from ..call.strategies import chosen_strategy, doing
from ..core.link import Trait
from ..core.tokenizer import Tokenizer
from ..inspection.beam_tree import tree_of
from ..strategies.options import NUM_BEAMS, NUM_RETURN_SEQUENCES
from ..web.explore import Explorer
from ..web.render import generation_data, report_html
from ..web.server import ExploreServer, serve
from .args import add_model, command_line_text, integer, model_from

LOOPBACK = ("127.0.0.1", "localhost")


def cmd_explore(args):
    tok = Tokenizer()
    model, _ = model_from(args)
    draft = model_from(args, args.draft_model)[0] if args.draft_model else None
    explorer = Explorer(model, tok, name=args.model, draft=draft, draft_name=args.draft_model or "")
    try:
        server = ExploreServer(explorer, host=args.host, port=args.port)
    except OSError as e:
        raise OSError(f"cannot serve on {args.host}:{args.port} ({e.strerror}); choose another --port, "
                      "or --port 0 for any free one.") from None
    if args.host not in LOOPBACK:
        print(f"minigpt explore: warning: serving on {args.host}, not only this machine's loopback: anyone who can "
              "reach it can run the model.", file=sys.stderr)
    print(f"minigpt explore: {server.url}  (Ctrl-C stops it)", flush=True)
    if args.open:
        webbrowser.open(server.url)
    serve(server)
    print("minigpt explore: stopped", file=sys.stderr)


def check_report_out(out: str) -> Path:
    path = Path(out)
    if path.is_dir():
        raise ValueError(f"{out} is a folder; give the report a file name, such as {path / 'run.html'}.")
    if not path.parent.is_dir():
        raise ValueError(f"cannot write {out}: the folder {path.parent} does not exist; create it first "
                         f"(mkdir -p {path.parent}) or write the report elsewhere.")
    return path


def cmd_report(args, generation_options):
    path = check_report_out(args.out)  # before the model is even loaded
    if args.top < 1:
        raise ValueError(f"--top takes how many candidates each step keeps (1 or more), got {args.top}.")
    tok = Tokenizer()
    model, _ = model_from(args)
    options = generation_options(args, tok)
    prompt_ids = tok.encode(command_line_text(args.prompt))
    strategy = chosen_strategy(args.strategy, options)
    beams = strategy in doing(Trait.KEEPS_BEAMS)
    if beams:  # every hypothesis the search kept, unless asked for fewer
        options.setdefault(NUM_RETURN_SEQUENCES.name, options.get(NUM_BEAMS.name, NUM_BEAMS.default))
    out = generate(model, prompt_ids, strategy, trace_top=args.top, tokenizer=tok, **options)
    tree = tree_of(out, options.get(NUM_BEAMS.name, NUM_BEAMS.default), tok, options) if beams else None
    data = generation_data(tok, out, out.prompt_tokens[0], options, args.model, tree)
    path.write_text(report_html(data, f"minigpt report: {out.strategy} on {args.model}"), encoding="utf-8")
    print(path)


def add_web_commands(sub, add_generation_flags, generation_options):
    """explore and report; add_generation_flags(parser) gives report every flag of generate."""
    e = sub.add_parser("explore", help="a local web page to step through generation token by token",
                       description="Serve a page on this machine that shows the tokens, the next-token distribution "
                                   "before and after the chain, branches, the logit lens, attention and the beam tree. "
                                   "Nothing is loaded from the internet.")
    add_model(e)
    e.add_argument("--draft-model", metavar="NAME_OR_PATH", help="a small model for speculative decoding (optional)")
    e.add_argument("--port", type=integer, default=8000, metavar="P", help="(default 8000; 0 picks a free port)")
    e.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1, this machine "
                                                       "only; any other is warned about); requests must name it in "
                                                       "their Host header")
    e.add_argument("--open", action="store_true", help="open the page in the web browser")
    e.set_defaults(run=cmd_explore)

    r = sub.add_parser("report", help="generate once and write one HTML file that shows every step, offline",
                       description="Generate as `minigpt generate` does, then write one self-contained HTML file: the "
                                   "text coloured by probability (hover a token for its candidates before and after "
                                   "the chain and the sampler's state), the chain, the settings, the beam tree.")
    add_generation_flags(r, "the text to continue (may be empty: GPT-2 then starts from <|endoftext|>)")
    r.add_argument("--out", required=True, metavar="FILE.html", help="the file to write")
    r.add_argument("--top", type=integer, default=10, metavar="K", help="candidates kept per step (default 10)")
    r.set_defaults(run=lambda args: cmd_report(args, generation_options))
