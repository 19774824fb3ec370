"""The `minigpt` command line: parse, call the library, print. Nothing here computes.

    minigpt generate "Alan Turing theorized that"     stream a continuation
    minigpt tokenize "Hello, my dog is a little"      one row per token
    minigpt score --json "The quick brown fox"        log-probability of every token, perplexity
    minigpt compare "I have a dream"                  one prompt through many strategies, side by side
    minigpt download gpt2-medium                      fetch a checkpoint into weights/
    minigpt plot lens "The Eiffel Tower is in"        pictures: probs, beam-tree, lens, attention
"""

import argparse
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np

from . import hub, inspection, plots
from .checkpoint import load
from .compare import CLASSIC, compare, parse_run
from .generate import generate
from .sampling.options import STRATEGIES
from .model import softmax
from .tokenizer import Tokenizer, visible
from .views import comparison_lines, merge_lines, state_text, trace_lines


def command_line_text(text: str) -> str:
    """Bytes the OS handed over that are not UTF-8 arrive as lone surrogates; make them U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number such as 40, got {text!r}") from None


def real(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number such as 0.7, got {text!r}") from None


# generate's option flags: --top-k -> top_k, and so on (transformers' GenerationConfig names).
NUMBER_OPTIONS = {
    "max_new_tokens": integer, "min_new_tokens": integer, "temperature": real, "top_k": integer, "top_p": real,
    "min_p": real, "typical_p": real, "epsilon_cutoff": real, "eta_cutoff": real, "min_tokens_to_keep": integer,
    "repetition_penalty": real, "frequency_penalty": real, "presence_penalty": real,
    "no_repeat_ngram_size": integer, "seed": integer, "num_beams": integer, "length_penalty": real,
    "num_return_sequences": integer, "num_beam_groups": integer, "diversity_penalty": real, "penalty_alpha": real,
    "num_assistant_tokens": integer,
}
# llama.cpp's samplers (sampling/llama_samplers.py, sampling/mirostat.py), under llama.cpp's names.
NUMBER_OPTIONS |= {
    "top_n_sigma": real, "xtc_probability": real, "xtc_threshold": real, "dynatemp_range": real, "dynatemp_exponent": real,
    "dry_multiplier": real, "dry_base": real, "dry_allowed_length": integer, "dry_penalty_last_n": integer,
    "mirostat": integer, "mirostat_tau": real, "mirostat_eta": real,
}


def token_ids(text: str) -> list[int]:
    """ "12,345" -> [12, 345]."""
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated token ids, got {text!r}") from None


def token_bias(text: str) -> tuple[int, float]:
    """ "50256=-inf" -> (50256, -inf)."""
    token, _, bias = text.partition("=")
    try:
        return int(token), float(bias)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected TOKEN=BIAS such as 50256=-100, got {text!r}") from None


def early_stopping(text: str):
    choices = {"true": True, "false": False, "never": "never"}
    if text.lower() not in choices:
        raise argparse.ArgumentTypeError(f"expected true, false or never, got {text!r}")
    return choices[text.lower()]


def generation_options(args, tok: Tokenizer) -> dict:
    """The options the user gave on the command line, under their Python names."""
    given = vars(args)
    options = {name: given[name] for name in NUMBER_OPTIONS if name in given}
    if "early_stopping" in given:
        options["early_stopping"] = given["early_stopping"]
    if "stop" in given:
        options["stop"] = [command_line_text(s) for s in given["stop"]]
    if "bad_words_ids" in given or "bad_word" in given:
        words = [tok.encode(command_line_text(w)) for w in given.get("bad_word", [])]
        options["bad_words_ids"] = given.get("bad_words_ids", []) + [w for w in words if w]
    if "suppress_tokens" in given:
        options["suppress_tokens"] = given["suppress_tokens"]
    if "logit_bias" in given:
        options["logit_bias"] = dict(given["logit_bias"])
    if "do_sample" in given:
        options["do_sample"] = True
    if "draft_model" in given:
        options["draft_model"] = command_line_text(given["draft_model"])  # loaded by the library, once accepted
    if "dry_sequence_breaker" in given:  # "none" alone clears llama.cpp's default breakers
        breakers = [command_line_text(b) for b in given["dry_sequence_breaker"]]
        options["dry_sequence_breakers"] = [] if breakers == ["none"] else breakers
    if "sampler_order" in given:
        options["sampler_order"] = [name.strip() for name in given["sampler_order"].split(",") if name.strip()]
    if "negative_prompt" in given:  # classifier-free guidance's negative prompt, as token ids
        options["negative_prompt_ids"] = tok.encode(command_line_text(given["negative_prompt"]))
    for name in ("guidance_scale", "dola_layers", "dola_read_out"):
        if name in given:
            options[name] = given[name]
    return options


def dola_layers(text: str):
    """ "low", "high" or "2,4,6" -> "low", "high" or [2, 4, 6]."""
    if text in ("low", "high"):
        return text
    try:
        return [int(j) for j in text.split(",") if j.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected low, high or comma-separated layer indices such as 2,4,6, got {text!r}") from None


def step_json(step) -> dict:
    entry = {"token": step.token, "logprob": step.logprob, "candidates": [[i, p] for i, p in step.candidates],
             "raw_candidates": [[i, p] for i, p in step.raw_candidates]}
    if step.state:
        entry["state"] = step.state
    return entry


def step_line(step, tok: Tokenizer) -> str:
    shown = lambda i: visible(tok.decode([i])) if i < tok.n_vocab else str(i)  # noqa: E731
    candidates = "  ".join(f"{shown(i)} {p:.3f}" for i, p in step.candidates)
    state = f" [{state_text(step.state)}]" if step.state else ""  # e.g. DoLa's premature layer, mirostat's mu
    return f"  {step.token:>6} {shown(step.token)!s:<14} logp {step.logprob:8.3f}{state} | {candidates}"


def cmd_generate(args):
    tok = Tokenizer()
    model = load(args.model)
    prompt = command_line_text(args.prompt)
    prompt_ids = tok.encode(prompt)
    options = generation_options(args, tok)
    if args.show_candidates < 0:
        raise ValueError(f"--show-candidates takes how many candidates to show per step (1 or more), got {args.show_candidates}.")
    trace_top = args.trace_top if args.trace else 0
    if args.show_candidates:
        trace_top = max(trace_top, args.show_candidates)
    streaming = not args.json and args.strategy in ("greedy", "sample", "contrastive", "speculative") \
        and options.get("num_return_sequences", 1) == 1 and not options.get("stop")
    stream = tok.stream_decoder()
    started = False  # the prompt is printed with the first token, once the options have been accepted

    def show(row, token):
        nonlocal started
        if not started:
            print(prompt, end="", flush=True)
            started = True
        if token != tok.eot and token < tok.n_vocab:
            print(stream.feed(token), end="", flush=True)

    try:
        out = generate(model, prompt_ids, args.strategy, on_token=show if streaming else None,
                       trace_top=trace_top, tokenizer=tok, truncate_prompt=args.truncate_prompt, **options)
    except ValueError:
        if started:  # the error comes on a line of its own, after the text streamed so far
            print(flush=True)
        raise
    if prompt_ids and len(out.prompt_tokens[0]) < len(prompt_ids):
        print(f"minigpt: note: the prompt's first {len(prompt_ids) - len(out.prompt_tokens[0])} of {len(prompt_ids)} "
              f"tokens were dropped to fit the model's context (--truncate-prompt).", file=sys.stderr)
        prompt_ids = out.prompt_tokens[0]
    if args.json:
        sequences = []
        for i, tokens in enumerate(out.sequences):
            entry = {"tokens": tokens, "text": out.texts[i], "score": out.scores[i], "finish_reason": out.finish_reasons[i]}
            if args.trace or args.show_candidates:
                entry["steps"] = [step_json(step) for step in out.steps[i]]
            sequences.append(entry)
        result = {"prompt_tokens": prompt_ids, "strategy": args.strategy, "chain": out.chain, "sequences": sequences}
        if out.stats:
            result["stats"] = out.stats
        print(json.dumps(result, ensure_ascii=False))
        return
    if streaming:
        print(("" if started else prompt) + stream.flush())
    else:
        for i, text in enumerate(out.texts):
            if len(out.texts) > 1:
                print(f"--- {i + 1}: score {out.scores[i]:.4f} ({out.finish_reasons[i]})")
            print(prompt + text)
    if args.show_candidates:
        print("\n".join(trace_lines(tok, out.chain, out.steps, args.show_candidates)))
    if args.trace:
        for i, steps in enumerate(out.steps):
            print(f"trace of sequence {i + 1} (chain: {', '.join(out.chain) or 'none'}):")
            for step in steps:
                print(step_line(step, tok))
    if out.stats:
        print(", ".join(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}" for k, v in out.stats.items()), file=sys.stderr)


def cmd_tokenize(args):
    tok = Tokenizer()
    ids = tok.encode(command_line_text(args.text), allow_special=args.allow_special)
    rows = [{"id": i, "bytes": tok.token_bytes(i).hex(" "), "text": tok.token_bytes(i).decode("utf-8", "replace")} for i in ids]
    merges = None
    if args.merges is not None:
        if not 0 <= args.merges < len(ids):
            raise ValueError(f"--merges takes the position of a token in the text, 0 to {len(ids) - 1} "
                             f"(the first column of the table), got {args.merges}.")
        merges = tok.merges(ids[args.merges])
        rows[args.merges]["merges"] = [{"left": m.left.hex(" "), "right": m.right.hex(" "), "rank": m.rank, "at": m.at}
                                       for m in merges]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return
    print(f"{'pos':>4}  {'id':>6}  {'bytes':<24} text")
    for pos, row in enumerate(rows):
        print(f"{pos:>4}  {row['id']:>6}  {row['bytes']:<24} {visible(row['text'])}")
    print(f"{len(ids)} tokens")
    if merges is not None:
        print("\n".join(merge_lines(tok, args.merges, ids[args.merges], merges)))


def token_logprobs(model, ids) -> list[float]:
    """log p(token_i | tokens before it) for i >= 1, read off one forward pass."""
    logits = model(ids)  # [T, V]
    logp = np.log(softmax(logits[:-1]))  # [T-1, V]: the distribution over the token after each position
    return [float(logp[t, ids[t + 1]]) for t in range(len(ids) - 1)]


def cmd_score(args):
    tok = Tokenizer()
    model = load(args.model)
    ids = tok.encode(command_line_text(args.text))
    if not ids:
        raise ValueError("the text to score is empty; give at least one token of text.")
    if len(ids) > model.config.n_positions:
        raise ValueError(f"the text has {len(ids)} tokens, more than the model's context of n_positions={model.config.n_positions}.")
    logprobs = token_logprobs(model, ids)
    perplexity = math.exp(-sum(logprobs) / len(logprobs)) if logprobs else None
    if args.json:
        print(json.dumps({"tokens": ids, "logprobs": [None, *logprobs], "perplexity": perplexity}))
        return
    for i, (token, lp) in enumerate(zip(ids, [None, *logprobs])):
        shown = visible(tok.decode([token]))
        print(f"{token:>6}  {'' if lp is None else f'{lp:9.4f}':>9}  {shown}")
    print(f"perplexity: {perplexity:.4f}" if perplexity is not None else "perplexity: undefined for a single token")


def cmd_compare(args):
    tok = Tokenizer()
    runs = [parse_run(command_line_text(r)) for r in args.runs] if args.runs else None  # refused before loading
    model = load(args.model)
    prompt = command_line_text(args.prompt)
    prompt_ids = tok.encode(prompt)
    results = compare(model, prompt_ids, runs, max_new_tokens=args.max_new_tokens, seed=args.seed, tokenizer=tok)
    if args.json:
        print(json.dumps({"prompt_tokens": prompt_ids, "runs": [
            {"label": r.run.label, "strategy": r.run.strategy, "options": r.options, "tokens": r.tokens, "text": r.text,
             "logprob": r.logprob, "mean_logprob": r.mean_logprob, "distinct": {str(n): d for n, d in r.distinct.items()},
             "finish_reason": r.finish_reason} for r in results]}, ensure_ascii=False))
        return
    print("\n".join(comparison_lines(prompt, results)))


def cmd_download(args):
    print(hub.download(args.model))


# ----------------------------------------------------------------------------- minigpt plot


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
    tok, model = Tokenizer(), load(args.model)
    data = inspection.next_token_distribution(model, plot_prompt(args, tok), temperatures=args.temperature,
                                              top_k=args.top_k, top_p=args.top_p, min_p=args.min_p, top=args.top,
                                              seed=args.seed)
    settings = ", ".join([f"T = {' / '.join(f'{t:g}' for t in args.temperature)}"]
                         + [f"{name.replace('_', '-')} = {value:g}" for name, value in data.cutoffs.items()])
    plots.plot_probs(data, plot_title(args, "next token", settings), args.out, tokenizer=tok)
    print(args.out)


def cmd_plot_beam_tree(args):
    tok, model = Tokenizer(), load(args.model)
    options = {"no_repeat_ngram_size": args.no_repeat_ngram_size} if args.no_repeat_ngram_size else {}
    tree = inspection.beam_tree(model, plot_prompt(args, tok), num_beams=args.num_beams, max_new_tokens=args.max_new_tokens,
                                length_penalty=args.length_penalty, early_stopping=args.early_stopping, **options)
    settings = (f"num_beams = {args.num_beams}, length_penalty = {args.length_penalty:g}, early_stopping = "
                f"{args.early_stopping}" + "".join(f", {k} = {v}" for k, v in options.items()))
    plots.plot_beam_tree(tree, plot_title(args, "beam search", settings), args.out, tokenizer=tok, color_by=args.color_by)
    print(args.out)


def cmd_plot_lens(args):
    tok, model = Tokenizer(), load(args.model)
    lens = inspection.logit_lens(model, plot_prompt(args, tok))
    plots.plot_lens(lens, tok, plot_title(args, "logit lens"), args.out)
    print(args.out)


def cmd_plot_attention(args):
    tok, model = Tokenizer(), load(args.model)
    ids = plot_prompt(args, tok)
    maps = inspection.attention_maps(model, ids)
    where = f"layer {args.layer}" + (f", head {args.head}" if args.head is not None else ", every head")
    plots.plot_attention(maps, args.layer, args.head, [tok.decode([i]) for i in ids],
                         plot_title(args, "attention", where), args.out)
    print(args.out)


def add_plot_commands(sub, model_help: str):
    """minigpt plot probs | beam-tree | lens | attention: each writes a picture (matplotlib: the plots extra)."""
    plot = sub.add_parser("plot", help='pictures of what the model computes (needs pip install -e ".[plots]")')
    views = plot.add_subparsers(dest="view", required=True)

    def view(name, help, run, out):
        v = views.add_parser(name, help=help)
        v.add_argument("prompt", help="the text the model reads (empty: <|endoftext|>)")
        v.add_argument("--model", default="gpt2", help=model_help)
        v.add_argument("--out", default=out, metavar="FILE.png", help=f"the picture to write (default {out})")
        v.set_defaults(run=run)
        return v

    v = view("probs", "the next-token distribution: the top N tokens, the cut-offs, temperatures", cmd_plot_probs, "probs.png")
    v.add_argument("--temperature", type=real, nargs="+", default=[1.0], metavar="T",
                   help="one or more temperatures, overlaid (default 1)")
    v.add_argument("--top-k", type=integer, metavar="K")
    v.add_argument("--top-p", type=real, metavar="P")
    v.add_argument("--min-p", type=real, metavar="P")
    v.add_argument("--top", type=integer, default=20, metavar="N", help="how many tokens to show (default 20)")
    v.add_argument("--seed", type=integer, metavar="N",
                   help="select the token sampling would draw with this seed (default: the most probable)")

    v = view("beam-tree", "every candidate beam search weighed, as a tree", cmd_plot_beam_tree, "beam-tree.png")
    v.add_argument("--num-beams", type=integer, default=3, metavar="N", help="(default 3)")
    v.add_argument("--max-new-tokens", type=integer, default=5, metavar="N", help="(default 5)")
    v.add_argument("--length-penalty", type=real, default=1.0, metavar="X", help="(default 1)")
    v.add_argument("--early-stopping", type=early_stopping, default=False, metavar="true|false|never", help="(default false)")
    v.add_argument("--no-repeat-ngram-size", type=integer, default=0, metavar="N")
    v.add_argument("--color-by", choices=("probability", "score"), default="probability",
                   help="colour a node by p(token | beam) or by its beam score (default probability)")

    view("lens", "the logit lens: each layer's top next token at each position", cmd_plot_lens, "lens.png")

    v = view("attention", "attention weights over the prompt: one head, or every head of a layer", cmd_plot_attention,
             "attention.png")
    v.add_argument("--layer", type=integer, required=True, metavar="L", help="the layer, from 0")
    v.add_argument("--head", type=integer, metavar="H", help="one head, from 0 (default: every head, as a grid)")


class Parser(argparse.ArgumentParser):
    """argparse's parser, but a usage error is one line saying where to read more, not the whole usage."""

    def error(self, message):
        if any(hint in message for hint in ("unrecognized arguments", "ignored explicit argument", "are required")):
            message += (" (a text that starts with '-' goes last, after '--': "
                        "minigpt generate --max-new-tokens 5 -- '-5 degrees')")
        elif "expected one argument" in message:
            message += " (a value that starts with '-' is written with '=', as in --logit-bias=-1=-inf)"
        self.exit(2, f"{self.prog}: error: {message}; see '{self.prog} --help'.\n")


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="minigpt", description="GPT-2 inference in NumPy, from bytes to text.")
    sub = p.add_subparsers(dest="command", required=True)
    model_help = "a name (gpt2, gpt2-medium, gpt2-large, gpt2-xl, distilgpt2), a hub repo id, a folder or a .safetensors file"

    g = sub.add_parser("generate", help="continue a prompt by a decoding strategy")
    g.add_argument("prompt", help="the text to continue (may be empty: GPT-2 then starts from <|endoftext|>)")
    g.add_argument("--model", default="gpt2", help=model_help)
    g.add_argument("--strategy", default="greedy", choices=STRATEGIES)
    g.add_argument("--json", action="store_true", help="print one JSON object instead of streaming text")
    g.add_argument("--trace", action="store_true", help="show each step: the token, its log-probability, the candidates")
    g.add_argument("--trace-top", type=integer, default=10, metavar="N", help="candidates per traced step (default 10)")
    g.add_argument("--show-candidates", type=integer, default=0, metavar="K",
                   help="after the text: the processor chain, then each step's top K candidates before and after it")
    g.add_argument("--truncate-prompt", action="store_true",
                   help="keep only the end of a prompt too long for the context (n_positions - max_new_tokens tokens)")
    opt = g.add_argument_group("generation options (transformers' names; only those given are passed)")
    opt.add_argument("--max-new-tokens", type=integer, default=40, metavar="N", help="(default 40)")
    for name, kind in NUMBER_OPTIONS.items():
        if name != "max_new_tokens":
            opt.add_argument("--" + name.replace("_", "-"), type=kind, default=argparse.SUPPRESS,
                             metavar="N" if kind is integer else "X")
    opt.add_argument("--early-stopping", type=early_stopping, default=argparse.SUPPRESS, metavar="true|false|never")
    opt.add_argument("--stop", action="append", default=argparse.SUPPRESS, metavar="TEXT", help="stop string (repeatable)")
    opt.add_argument("--bad-word", action="append", default=argparse.SUPPRESS, metavar="TEXT", help="a text never to generate (repeatable)")
    opt.add_argument("--bad-words-ids", type=token_ids, action="append", default=argparse.SUPPRESS, metavar="IDS",
                     help="a token sequence never to generate, as comma-separated ids (repeatable)")
    opt.add_argument("--suppress-tokens", type=token_ids, default=argparse.SUPPRESS, metavar="IDS")
    opt.add_argument("--logit-bias", type=token_bias, action="append", default=argparse.SUPPRESS, metavar="TOKEN=BIAS")
    opt.add_argument("--draft-model", default=argparse.SUPPRESS, metavar="PATH_OR_NAME", help="speculative decoding's draft model")
    opt.add_argument("--do-sample", action="store_true", default=argparse.SUPPRESS, help="speculative decoding: sample instead of greedy")
    opt.add_argument("--dry-sequence-breaker", action="append", default=argparse.SUPPRESS, metavar="TEXT",
                     help="a text that DRY's repeats do not cross (repeatable; default \\n : \" *; 'none' for none)")
    opt.add_argument("--guidance-scale", type=real, default=argparse.SUPPRESS, metavar="X",
                     help="classifier-free guidance: > 1 follows the prompt (and avoids --negative-prompt) more closely")
    opt.add_argument("--negative-prompt", default=argparse.SUPPRESS, metavar="TEXT",
                     help="classifier-free guidance's negative prompt (default: the prompt's last token)")
    opt.add_argument("--dola-layers", type=dola_layers, default=argparse.SUPPRESS, metavar="low|high|2,4,6",
                     help="DoLa: contrast the final layer with these premature layers")
    opt.add_argument("--dola-read-out", choices=("raw", "lens"), default=argparse.SUPPRESS,
                     help="DoLa: read premature layers through ln_f (lens, the default) or without it (raw, as transformers 4.46)")
    opt.add_argument("--sampler-order", default=argparse.SUPPRESS, metavar="NAMES",
                     help="the warpers to apply first, in this order, e.g. top_k,top_p,min_p,temperature")
    g.set_defaults(run=cmd_generate)

    t = sub.add_parser("tokenize", help="show the tokens of a text: id, bytes, text")
    t.add_argument("text")
    t.add_argument("--allow-special", action="store_true", help="read <|endoftext|> in the text as the special token")
    t.add_argument("--merges", type=integer, metavar="POS",
                   help="also show the byte-pair merges that built the token at this position (the pos column, from 0)")
    t.add_argument("--json", action="store_true")
    t.set_defaults(run=cmd_tokenize)

    s = sub.add_parser("score", help="log-probability of every token of a text, and its perplexity")
    s.add_argument("text")
    s.add_argument("--model", default="gpt2", help=model_help)
    s.add_argument("--json", action="store_true")
    s.set_defaults(run=cmd_score)

    c = sub.add_parser("compare", help="one prompt through several decoding strategies, side by side")
    c.add_argument("prompt")
    c.add_argument("--run", action="append", dest="runs", metavar="SPEC",
                   help=f"a strategy and its options, such as 'sample top_p=0.9 temperature=0.8', or one of the classic "
                        f"runs ({', '.join(CLASSIC)}); repeatable; default: the classic five")
    c.add_argument("--model", default="gpt2", help=model_help)
    c.add_argument("--max-new-tokens", type=integer, default=40, metavar="N", help="(default 40)")
    c.add_argument("--seed", type=integer, default=0, metavar="N", help="for the runs that sample (default 0)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(run=cmd_compare)

    add_plot_commands(sub, model_help)

    d = sub.add_parser("download", help="download a checkpoint into weights/ and print where it is")
    d.add_argument("model", help=model_help)
    d.set_defaults(run=cmd_download)
    return p


def one_line_warning(message, category, filename, lineno, file=None, line=None):
    """Library warnings (e.g. tensors a checkpoint holds that GPT-2 does not use) as one line on stderr."""
    print(f"minigpt: warning: {message}", file=sys.stderr)


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = one_line_warning
            args.run(args)
    except UnicodeEncodeError as e:  # a ValueError, but the fix is the terminal's, not the input's
        print(f"minigpt: error: the output holds {e.object[e.start:e.end]!r}, which this terminal's encoding "
              f"({e.encoding}) cannot show; set PYTHONIOENCODING=utf-8 (or PYTHONUTF8=1) and run again.", file=sys.stderr)
        return 1
    except (ValueError, OSError) as e:  # FileNotFoundError and the project's errors derive from these
        print(f"minigpt: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
