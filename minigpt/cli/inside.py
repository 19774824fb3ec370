"""`minigpt attribute | patch | heads`: why the model predicts what it does (inspection/inside/), as tables.

    minigpt attribute "The Eiffel Tower is in" --token " Paris"     each head's and MLP's share of a logit
    minigpt patch --clean "..." --corrupted "..."                  which activation carries the clean answer
    minigpt heads "..." --kind induction                           each head's score as a kind of head

Like main.py, it parses, calls the library, prints (views/text.py lays the tables out); nothing here computes.
Tokens given as text (--token, --versus, --answer, --wrong) are read with the model's tokenizer and must be one
token each. The pictures of the same results are `minigpt plot attribute | patch | heads` (plot.py).
"""

import json

from ..core.checks import plural
from ..core.tokenizer import Tokenizer
from ..inspection.inside import attribute, head_scores, patch
from ..inspection.inside.attribution import BY
from ..inspection.inside.heads import KINDS
from ..inspection.inside.patching import PLACES
from ..views.labels import token_label
from ..views.text import attribution_lines, head_score_lines, patch_lines
from .args import add_model, command_line_text, integer, model_from


def one_token(tok: Tokenizer, text: str | None, flag: str) -> int | None:
    """The id of a text that is one token, or a one-sentence refusal naming the tokens it splits into."""
    if text is None:
        return None
    ids = tok.encode(command_line_text(text))
    if len(ids) != 1:
        pieces = " + ".join(token_label(tok, i) for i in ids) or "nothing"
        hint = f", such as {tok.decode(ids[:1])!r}" if ids else ""
        raise ValueError(f"{flag} {text!r} is {plural(len(ids), 'token')} ({pieces}), not one; give a single "
                         f"token{hint} (minigpt tokenize shows how a text splits).")
    return ids[0]


def prompt_of(tok: Tokenizer, text: str) -> list[int]:
    """A prompt's ids; an empty prompt is <|endoftext|>, as for generate and plot."""
    return tok.encode(command_line_text(text)) or [tok.eot]


def check_position(position: int, T: int) -> int:
    if not -T <= position < T:
        raise ValueError(f"--position takes a position of the prompt's {plural(T, 'token')}, 0 to {T - 1} (or -1 "
                         f"for the last), got {position}.")
    return position


def check_top(top: int) -> int:
    if top < 1:
        raise ValueError(f"--top takes how many rows to show (1 or more), got {top}.")
    return top


def attribution_of(args, tok: Tokenizer, model):
    """attribute() as the flags ask; the token defaults to the model's most likely one at the position."""
    if args.centered and args.versus is not None:
        raise ValueError("--centered measures one token against the vocabulary's mean logit, and --versus already "
                         "compares two tokens; give one of them.")
    ids = prompt_of(tok, args.prompt)
    position = check_position(args.position, len(ids))
    token, versus = one_token(tok, args.token, "--token"), one_token(tok, args.versus, "--versus")
    if token is None:  # what the model predicts there
        token = int(model(ids)[position].argmax())
    return attribute(model, ids, token, versus, position, by=args.by, fold_value_biases=args.fold_value_biases,
                     centered=args.centered)


def patching_of(args, tok: Tokenizer, model):
    """patch() on the two prompts, refused in one sentence (before the model runs) when their lengths differ."""
    clean, corrupted = prompt_of(tok, args.clean), prompt_of(tok, args.corrupted)
    if len(clean) != len(corrupted):
        raise ValueError(f"--clean is {plural(len(clean), 'token')} and --corrupted {plural(len(corrupted), 'token')}"
                         "; patching compares them position by position, so reword one until both have the same "
                         "number of tokens (minigpt tokenize counts them).")
    answer, wrong = one_token(tok, args.answer, "--answer"), one_token(tok, args.wrong, "--wrong")
    return patch(model, clean, corrupted, args.where, answer, wrong)


def heads_of(args, tok: Tokenizer, model):
    return head_scores(model, prompt_of(tok, args.prompt), args.kind)


def cmd_attribute(args):
    tok = Tokenizer()
    top = check_top(args.top)
    result = attribution_of(args, tok, model_from(args)[0])
    print(json.dumps(result.to_json()) if args.json else "\n".join(attribution_lines(tok, result, top)))


def cmd_patch(args):
    tok = Tokenizer()
    result = patching_of(args, tok, model_from(args)[0])
    print(json.dumps(result.to_json()) if args.json else "\n".join(patch_lines(tok, result)))


def cmd_heads(args):
    tok = Tokenizer()
    top = check_top(args.top)
    result = heads_of(args, tok, model_from(args)[0])
    print(json.dumps(result.to_json()) if args.json else "\n".join(head_score_lines(tok, result, top)))


def add_attribute_flags(a):
    """The flags of attribute, shared with `minigpt plot attribute`."""
    a.add_argument("prompt", help="the text the model reads (empty: <|endoftext|>)")
    a.add_argument("--token", metavar="TEXT", help="the token whose logit is split, as text, e.g. ' Paris' "
                                                   "(default: the model's most likely next token there)")
    a.add_argument("--versus", metavar="TEXT", help="split the logit difference token - versus instead")
    a.add_argument("--by", choices=BY, default="head",
                   help="head: each head, MLP, the embeddings and the attention biases; layer: each layer's attention "
                        "and MLP (default head)")
    a.add_argument("--fold-value-biases", action="store_true",
                   help="move each head's constant part (its value bias through W_O) into bias, as "
                        "TransformerLens does by default")
    a.add_argument("--centered", action="store_true",
                   help="measure the token against the vocabulary's mean logit (TransformerLens' center_unembed)")
    a.add_argument("--position", type=integer, default=-1, metavar="N",
                   help="the position whose next token is explained, from 0 (default -1: the last)")
    add_model(a)


def add_patch_flags(p):
    """The flags of patch, shared with `minigpt plot patch`."""
    p.add_argument("--clean", required=True, metavar="TEXT", help="the prompt whose answer is measured")
    p.add_argument("--corrupted", required=True, metavar="TEXT",
                   help="a prompt of as many tokens that leads elsewhere; it is run with one activation from --clean")
    p.add_argument("--where", choices=PLACES, default="resid_pre",
                   help="what is patched: the residual stream, attention or MLP output at each layer and position, "
                        "or each head's output at every position (default resid_pre)")
    p.add_argument("--answer", metavar="TEXT", help="the metric is logit[answer] - logit[wrong] at the last position "
                                                    "(default: the clean prompt's most likely next token)")
    p.add_argument("--wrong", metavar="TEXT", help="(default: the corrupted prompt's most likely next token, or the "
                                                   "clean runner-up if it is the answer)")
    add_model(p)


def add_heads_flags(h):
    """The flags of heads, shared with `minigpt plot heads`."""
    h.add_argument("prompt", help="the text the model reads; for induction, a text that repeats itself")
    h.add_argument("--kind", choices=KINDS, required=True,
                   help="previous_token: attention on the token before; duplicate_token: on an earlier copy of this "
                        "token; induction: on the token after an earlier copy")
    add_model(h)


def add_inside_commands(sub):
    a = sub.add_parser("attribute", help="each head's and MLP's share of a token's logit (direct logit attribution)")
    add_attribute_flags(a)
    a.add_argument("--top", type=integer, default=10, metavar="N", help="how many parts to list (default 10)")
    a.add_argument("--json", action="store_true", help="print the result's JSON: every part, the leftover, the logit")
    a.set_defaults(run=cmd_attribute)

    p = sub.add_parser("patch", help="activation patching: which layer and position carry the clean prompt's answer")
    add_patch_flags(p)
    p.add_argument("--json", action="store_true", help="print the result's JSON: the metric of every patch")
    p.set_defaults(run=cmd_patch)

    h = sub.add_parser("heads", help="each head's score as a previous-token, duplicate-token or induction head")
    add_heads_flags(h)
    h.add_argument("--top", type=integer, default=5, metavar="N", help="how many heads to list (default 5)")
    h.add_argument("--json", action="store_true", help="print the result's JSON: the [layer, head] scores")
    h.set_defaults(run=cmd_heads)
