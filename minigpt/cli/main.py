"""The `minigpt` command line: parse, call the library, print. Nothing here computes.

    minigpt generate "Alan Turing theorized that"     stream a continuation
    minigpt tokenize "Hello, my dog is a little"      one row per token
    minigpt score --json "The quick brown fox"        log-probability of every token, perplexity
    minigpt detect-watermark "The file is a list"     whether a text carries generate --watermark's watermark
    minigpt compare "I have a dream"                  one prompt through many strategies, side by side
    minigpt download gpt2-medium                      fetch a checkpoint (unless it is there) and print its folder
    minigpt attribute "The Eiffel Tower is in"        why a token: each head's share of its logit (inside.py)
    minigpt patch --clean "..." --corrupted "..."     which layer and position carry an answer (inside.py)
    minigpt heads "..." --kind induction              each head's score as a kind of head (inside.py)
    minigpt plot lens "The Eiffel Tower is in"        pictures: probs, beam-tree, lens, attention, ... (plot.py)
    minigpt explore --model tiny                      a local page to step through generation (web.py)
    minigpt report "The stream" --out run.html        one HTML file that shows every step, offline

generate's option flags come from the registry of options (strategies/options.py): each declared option
is a flag named after it (--top-k for top_k), with its one-line help, grouped as the registry groups them.
"""

import argparse
import difflib
import json
import os
import signal
import sys
import warnings

from ..call.generate import generate
from ..call.strategies import STRATEGIES, chosen_strategy
from ..core.checks import OptionError, plural
from ..core.link import GROUPS, Trait
from ..core.tokenizer import Tokenizer
from ..inspection.compare import CLASSIC, compare, parse_run
from ..strategies.options import BY_NAME, MAX_NEW_TOKENS, REGISTRY
from ..version import VERSION
from ..views.labels import visible
from ..views.text import comparison_json, comparison_lines, generation_json, merge_lines, step_line, trace_lines
from ..weights import hub
from .args import MODEL_HELP, add_model, add_option, announce, command_line_text, integer, model_from
from .batch import cmd_generate_file
from .inside import add_inside_commands
from .plot import add_plot_commands
from .score import add_score_command
from .watermark import add_watermark_command
from .web import add_web_commands


def generation_options(args, tok: Tokenizer) -> dict:
    """The options the user gave on the command line, under their Python names."""
    given = vars(args)
    options = {option.name: tok.encode(given[option.name]) if option.encode else given[option.name]
               for option in REGISTRY if option.name in given}
    if "bad_word" in given:  # texts never to generate, as token sequences
        words = [tok.encode(command_line_text(w)) for w in given["bad_word"]]
        options["bad_words_ids"] = options.get("bad_words_ids", []) + [w for w in words if w]
    if "logit_bias" in options:  # a token given twice: the last bias counts
        options["logit_bias"] = dict(options["logit_bias"])
    if options.get("dry_sequence_breakers") == ["none"]:  # "none" alone clears llama.cpp's default breakers
        options["dry_sequence_breakers"] = []
    if options.get("draft_model") is not None and getattr(args, "strategy", None) is not None and \
            STRATEGIES[args.strategy].accepts(BY_NAME["draft_model"]):  # loaded here: its download is announced
        options["draft_model"] = model_from(args, options["draft_model"])[0]
    return options


def add_generation_flags(g, prompt_help: str) -> dict:
    """The prompt, --model, --strategy and a flag per declared option, for generate and report; -> the groups.
    A prompt_help that offers --input makes the prompt optional."""
    g.add_argument("prompt", nargs="?" if "--input" in prompt_help else None, help=prompt_help)
    add_model(g)
    groups = {name: g.add_argument_group(name, description) for name, description in GROUPS.items()}
    groups["strategy"].add_argument(
        "--strategy", choices=list(STRATEGIES), metavar="NAME",
        help="how the next token is chosen (default: greedy, or sample when an option only sampling uses is given): "
             "" + "; ".join(f"{name}: {s.help}" for name, s in STRATEGIES.items()))
    for option in REGISTRY:
        if not option.python_only:  # a function has no flag
            add_option(groups[option.group], option)
    groups["penalties"].add_argument("--bad-word", action="append", default=argparse.SUPPRESS, metavar="TEXT",
                                     type=command_line_text, help="a text never to generate (repeatable)")
    return groups


def add_generate_command(sub):
    g = sub.add_parser("generate", help="continue a prompt by a decoding strategy",
                       description="Continue a prompt. Only the options given are passed to the library; a strategy "
                                   "refuses the options it does not use, naming the strategies that do.")
    groups = add_generation_flags(g, "the text to continue (may be empty: GPT-2 then starts from "
                                                 "<|endoftext|>); or give --input")
    files = g.add_argument_group("a file of prompts", "one JSON object per line: {\"prompt\": \"...\"} and, "
                                 "optionally, strategy and options by their Python names, over the flags given")
    files.add_argument("--input", metavar="FILE.jsonl", help="the prompts, one JSON object per line")
    files.add_argument("--output", metavar="FILE.jsonl", help="the results, one per line in input order; run again "
                                                              "to finish an interrupted run")
    files.add_argument("--skip-bad-lines", action="store_true",
                       help="write a bad line's error in its place and go on (default: refuse the file)")
    files.add_argument("--batch-size", type=integer, default=32, metavar="N",
                       help="prompts with the same options run together, N at a time (default 32)")
    output = groups["output"]
    output.add_argument("--json", action="store_true", help="print one JSON object instead of streaming text "
                                                            "(its first key, weights, is the folder read)")
    output.add_argument("--trace", action="store_true", help="show each step: the token, its log-probability, the "
                                                             "candidates")
    output.add_argument("--trace-top", type=integer, default=10, metavar="N", help="candidates per traced step "
                                                                                   "(default 10)")
    output.add_argument("--show-candidates", type=integer, default=0, metavar="K",
                        help="after the text: the processor chain, then each step's top K candidates before and after "
                             "it")
    output.add_argument("--truncate-prompt", action="store_true",
                        help="keep only the end of a prompt too long for the context (n_positions - max_new_tokens "
                             "tokens)")
    g.set_defaults(run=cmd_generate)


def cmd_generate(args):
    if args.input is not None or args.output is not None:
        return cmd_generate_file(args, generation_options(args, Tokenizer()))
    if args.prompt is None:
        raise ValueError("give a prompt to continue, or --input FILE.jsonl --output FILE.jsonl.")
    tok = Tokenizer()
    model, weights = model_from(args)  # a name -> the folder it is found in, or downloaded into
    prompt = command_line_text(args.prompt)
    prompt_ids = tok.encode(prompt)
    options = generation_options(args, tok)
    strategy = chosen_strategy(args.strategy, options)
    if args.verbose:
        announce(f"strategy {strategy}" + ("" if args.strategy else f" (no --strategy given: "
                                           f"{'a sampling option was' if strategy == 'sample' else 'the default'})"))
    if args.show_candidates < 0:
        raise ValueError("--show-candidates takes how many candidates to show per step (1 or more), got "
                         f"{args.show_candidates}.")
    trace_top = args.trace_top if args.trace else 0
    if args.show_candidates:
        trace_top = max(trace_top, args.show_candidates)
    streaming = (not args.json and Trait.STREAMS in STRATEGIES[strategy].does
                 and options.get("num_return_sequences", 1) == 1 and not options.get("stop"))
    stream, started = tok.stream_decoder(), []  # the prompt is printed with the first token, once the options pass

    def show(row, token):
        if not started:
            print(prompt, end="", flush=True)
            started.append(True)
        if token != tok.eot and token < tok.n_vocab:
            print(stream.feed(token), end="", flush=True)

    try:
        out = generate(model, prompt_ids, strategy, on_token=show if streaming else None,
                       trace_top=trace_top, tokenizer=tok, truncate_prompt=args.truncate_prompt, **options)
    except ValueError:
        if started:  # the error comes on a line of its own, after the text streamed so far
            print(flush=True)
        raise
    notes(out, prompt_ids, options)
    if args.json:  # the prompt as the model read it: <|endoftext|> for an empty one, the kept end of a long one
        with_steps = bool(args.trace or args.show_candidates)
        result = generation_json(out, with_steps)
        print(json.dumps({"weights": str(weights), **result}, ensure_ascii=False))
        return
    print_generation(args, out, prompt, streaming, ("" if started else prompt) + stream.flush(), tok)


def notes(out, prompt_ids: list[int], options: dict):
    """What the run did that the user did not say, on stderr: a prompt cut to fit, a seed drawn afresh."""
    if prompt_ids and len(out.prompt_tokens[0]) < len(prompt_ids):
        dropped = len(prompt_ids) - len(out.prompt_tokens[0])
        print(f"minigpt: note: the prompt's first {dropped} of {plural(len(prompt_ids), 'token')} were dropped to fit "
              f"the model's context (--truncate-prompt).", file=sys.stderr)
    if out.seed is not None and options.get("seed") is None:
        print(f"minigpt: seed {out.seed} (--seed {out.seed} gives this text again)", file=sys.stderr)


def print_generation(args, out, prompt: str, streaming: bool, rest: str, tok: Tokenizer):
    """The texts (the end of the stream, or each sequence), then the trace and the stats if asked for."""
    if streaming:
        print(rest)
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
                print(step_line(tok, step))
    if out.stats:
        print(", ".join(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}" for k, v in out.stats.items()),
              file=sys.stderr)


def cmd_tokenize(args):
    tok = Tokenizer()
    ids = tok.encode(command_line_text(args.text), allow_special=args.allow_special)
    rows = [{"id": i, "bytes": tok.token_bytes(i).hex(" "), "text": tok.token_bytes(i).decode("utf-8", "replace")}
            for i in ids]
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
    print(plural(len(ids), "token"))
    if merges is not None:
        print("\n".join(merge_lines(tok, args.merges, ids[args.merges], merges)))


def cmd_compare(args):
    tok = Tokenizer()
    runs = [parse_run(command_line_text(r)) for r in args.runs] if args.runs else None  # refused before loading
    model, _ = model_from(args)
    prompt = command_line_text(args.prompt)
    prompt_ids = tok.encode(prompt)
    results = compare(model, prompt_ids, runs, max_new_tokens=args.max_new_tokens, seed=args.seed, tokenizer=tok)
    if args.json:
        print(json.dumps(comparison_json(prompt_ids, results), ensure_ascii=False))
        return
    print("\n".join(comparison_lines(prompt, results)))


def cmd_download(args):
    print(hub.download(args.model, report=announce))


class Parser(argparse.ArgumentParser):
    """argparse's parser, but a usage error is one line that says what to fix and where to read more: the option
    meant by a mistyped one, or how to write a text or a value that starts with '-' where that is the trouble."""

    def parse_args(self, args=None, namespace=None):
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self.innermost(parsed).error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    def innermost(self, parsed) -> "Parser":
        """The (sub)command's own parser, whose options a mistyped flag is compared with."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction) and getattr(parsed, action.dest, None):
                return action.choices[getattr(parsed, action.dest)].innermost(parsed)
        return self

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}{self.hint(message)}; see '{self.prog} --help'.\n")

    def hint(self, message: str) -> str:
        """What the usage error most likely means, when that can be told."""
        if "expected one argument" in message:
            return " (a value that starts with '-' is written with '=', as in --logit-bias=-1=-inf)"
        if not message.startswith("unrecognized arguments: "):
            return ""
        extras = message.removeprefix("unrecognized arguments: ").split()
        unknown = [a.split("=")[0] for a in extras if a.startswith("--")]
        flags = [f for action in self._actions for f in action.option_strings if f not in ("-h", "--help", "--version")]
        meant = [difflib.get_close_matches(a, flags, n=1) for a in unknown]
        if any(meant):
            return f" (did you mean {' and '.join(m[0] for m in meant if m)}?)"
        if unknown:
            return f" ({self.prog} takes no {' and no '.join(unknown)})"
        if any(a.startswith("-") for a in extras):
            return (" (a text that starts with '-' goes last, after '--': minigpt generate --max-new-tokens 5 -- "
                    "'-5 degrees')")
        return " (a text of several words is one argument: put it in quotes)"


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="minigpt", description="GPT-2 inference in NumPy, from bytes to text. Each command has its "
               "own --help.")
    p.add_argument("--version", action="version", version=f"minigpt {VERSION}")
    sub = p.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    add_generate_command(sub)

    t = sub.add_parser("tokenize", help="show the tokens of a text: id, bytes, text")
    t.add_argument("text")
    t.add_argument("--allow-special", action="store_true", help="read <|endoftext|> in the text as the special token")
    t.add_argument("--merges", type=integer, metavar="POS",
                   help="also show the byte-pair merges that built the token at this position (the pos column, from 0)")
    t.add_argument("--json", action="store_true", help="print one JSON list: each token's id, bytes in hex and text "
                                                       "(and its merges, with --merges)")
    t.set_defaults(run=cmd_tokenize)

    add_score_command(sub)
    add_watermark_command(sub)

    c = sub.add_parser("compare", help="one prompt through several decoding strategies, side by side")
    c.add_argument("prompt")
    c.add_argument("--run", action="append", dest="runs", metavar="SPEC",
                   help="a strategy and its options, such as 'sample top_p=0.9 temperature=0.8', or one of the "
                        "classic "
                        f"runs ({', '.join(CLASSIC)}); repeatable; default: the classic five")
    add_model(c)
    c.add_argument("--max-new-tokens", type=integer, default=MAX_NEW_TOKENS.default, metavar="N",
                   help=f"(default {MAX_NEW_TOKENS.default}, as generate)")
    c.add_argument("--seed", type=integer, default=0, metavar="N", help="for the runs that sample (default 0)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(run=cmd_compare)

    add_inside_commands(sub)
    add_plot_commands(sub)
    add_web_commands(sub, add_generation_flags, generation_options)

    d = sub.add_parser("download", help="download a checkpoint, unless it is already there, and print its folder")
    d.add_argument("model", help=MODEL_HELP)
    d.set_defaults(run=cmd_download)
    return p


def one_line_warning(message, category, filename, lineno, file=None, line=None):
    """Library warnings (e.g. tensors a checkpoint holds that GPT-2 does not use) as one line on stderr."""
    print(f"minigpt: warning: {message}", file=sys.stderr)


def main(argv=None) -> int:
    commands = parser()
    args = commands.parse_args(argv)
    if args.command is None:  # `minigpt` alone: what it can do
        commands.print_help()
        return 0
    try:
        with warnings.catch_warnings():
            warnings.showwarning = one_line_warning
            args.run(args)
    except UnicodeEncodeError as e:  # a ValueError, but the fix is the terminal's, not the input's
        print(f"minigpt: error: the output holds {e.object[e.start:e.end]!r}, which this terminal's encoding "
              f"({e.encoding}) cannot show; set PYTHONIOENCODING=utf-8 (or PYTHONUTF8=1) and run "
              "again.", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (| head): stop quietly, as a program killed by SIGPIPE
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the final flush finds no pipe either
        return 128 + signal.SIGPIPE
    except (ValueError, OSError) as e:  # FileNotFoundError and the project's errors derive from these
        flags = isinstance(e, OptionError) and args.command != "compare"  # compare's runs are written as keywords
        print(f"minigpt: error: {e.in_flags() if flags else e}", file=sys.stderr)
        return 1
    except Warning as w:  # a warning the caller made an error (PYTHONWARNINGS=error, python -W error): its sentence
        print(f"minigpt: error: {w}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
