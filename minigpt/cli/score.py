"""`minigpt score`: the log-probability of every token of a short text, or the perplexity of a whole file.

    minigpt score "The quick brown fox"                 each token's log p given the ones before, perplexity
    minigpt score --file book.txt --stride 512          a text of any length, with a sliding window
    minigpt score --file docs.jsonl --json              one {"text": ...} per line: each document, and all

Like main.py, it parses, calls the library (inspection/scoring.py) and prints.
"""

import json
from pathlib import Path

from .. import inspection
from ..call.prompts import read_text
from ..core.tokenizer import Tokenizer
from ..inspection.scoring import TextScore, check_window, score_text, windows
from ..views.labels import visible
from .args import add_model, command_line_text, integer, model_from, progress_bar

PROGRESS_AFTER = 4  # windows: a shorter text needs no progress bar


def cmd_score_text(args, tok: Tokenizer):
    model, _ = model_from(args)
    ids = tok.encode(command_line_text(args.text))
    if not ids:
        raise ValueError("the text to score is empty; give at least one token of text.")
    logprobs = inspection.token_logprobs(model, ids)
    value = inspection.perplexity_of(logprobs)
    if args.json:
        texts = [tok.token_bytes(t).decode("utf-8", "replace") for t in ids]  # each token's own text
        print(json.dumps({"tokens": ids, "texts": texts, "logprobs": [None, *logprobs], "perplexity": value}))
        return
    print(f"{'pos':>4}  {'id':>6}  {'log p':>9}  text")
    for pos, (token, lp) in enumerate(zip(ids, [None, *logprobs])):
        print(f"{pos:>4}  {token:>6}  {'' if lp is None else f'{lp:9.4f}':>9}  {visible(tok.decode([token]))}")
    print(f"perplexity: {value:.4f}" if value is not None else "perplexity: undefined for a single token")


def documents(path: Path) -> list[tuple[str, str]]:
    """(name, text) of each document: the whole file, or one per line of a .jsonl file ({"text": ...})."""
    text = read_text(path, f"--file {path}", "give a UTF-8 text file.")
    if path.suffix != ".jsonl":
        return [(path.name, text)]
    docs = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise ValueError(f"line {number} of {path} is not a JSON object with a \"text\" string; write one "
                             "document per line as {\"text\": \"...\"}.")
        docs.append((f"line {number}", record["text"]))
    if not docs:
        raise ValueError(f"{path} holds no document; write one {{\"text\": \"...\"}} per line.")
    return docs


def figures(result: TextScore) -> dict:
    return {"tokens": result.tokens, "nll": result.nll, "perplexity": result.perplexity,
            "bits_per_byte": result.bits_per_byte, "windows": len(result.windows)}


def cmd_score_file(args, tok: Tokenizer):
    docs = [(name, tok.encode(text)) for name, text in documents(Path(args.file))]  # tokenized once: only ids kept
    model, _ = model_from(args)
    for name, ids in docs:  # every document's window checked before the first is scored
        check_window(model, len(ids), args.max_length, args.stride)
    length = args.max_length or model.config.n_positions
    stride = args.stride or max(length // 2, 1)
    total = sum(len(windows(len(ids), length, stride)) for _, ids in docs)
    bar = progress_bar("window", "scoring", total, quiet=args.quiet or total < PROGRESS_AFTER)
    results = [(name, score_text(model, ids, stride, length, tok, progress=bar.update)) for name, ids in docs]
    bar.close()
    whole = TextScore(tokens=sum(r.tokens for _, r in results), nll=sum(r.nll for _, r in results),
                       bytes=sum(r.bytes for _, r in results), windows=[w for _, r in results for w in r.windows])
    if args.json:
        report = {"file": args.file, "max_length": length, "stride": stride, **figures(whole)}
        if len(results) > 1:
            report["documents"] = [{"document": name, **figures(r)} for name, r in results]
        print(json.dumps(report))
        return
    if len(results) > 1:
        print(f"{'document':<12} {'tokens':>8} {'perplexity':>11} {'bits/byte':>9}")
        for name, r in results:
            print(f"{name:<12} {r.tokens:>8} {r.perplexity:>11.4f} {r.bits_per_byte:>9.4f}")
    print(f"{args.file}: {whole.tokens} tokens scored in {len(whole.windows)} windows of at most {length} "
          f"(stride {stride}); NLL {whole.nll:.2f} nats, perplexity {whole.perplexity:.4f}, "
          f"{whole.bits_per_byte:.4f} bits per byte")


def cmd_score(args):
    if (args.text is None) == (args.file is None):
        raise ValueError("give either a text to score or --file FILE, not both and not neither.")
    if args.file is None and (args.stride is not None or args.max_length is not None):
        raise ValueError("--stride and --max-length set the sliding window of --file; give --file FILE as well.")
    (cmd_score_text if args.file is None else cmd_score_file)(args, Tokenizer())


def add_score_command(sub):
    s = sub.add_parser("score", help="log-probability of every token of a text, or the perplexity of a file")
    s.add_argument("text", nargs="?", help="a text that fits in the context (or give --file)")
    s.add_argument("--file", metavar="FILE",
                   help="a text file of any length, or .jsonl with one {\"text\": ...} per line")
    s.add_argument("--max-length", type=integer, metavar="L", help="--file: the window (default: the model's context)")
    s.add_argument("--stride", type=integer, metavar="S",
                   help="--file: how far each window's start moves (default: half the window)")
    s.add_argument("--quiet", action="store_true", help="--file: no progress bar")
    add_model(s)
    s.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    s.set_defaults(run=cmd_score)
