"""A file of prompts in, a file of results out: generate() over JSON Lines, batched, and safe to interrupt.

Each input line is one JSON object: {"prompt": "text", ...} with, optionally, "strategy" and any generation
option by its Python name ("seed", "max_new_tokens", "temperature", ...), over the options of the call.
Each output line is {"line": N, "text", "tokens", "finish_reason", "prompt_tokens"}, in input order; a line
that cannot run is {"line": N, "error": "the sentence"} when bad lines are skipped.

Consecutive lines with the same strategy and options run as one batch (left-padded, as generate() runs a
batch), at most batch_size at a time; a batch's results are written and flushed as soon as it finishes.
Lines that sample run alone: one seeded generator draws for a whole batch, so only alone does a line give
what it gives on its own. Nothing is lost on a crash: run again with the same files and the lines already in
the output are skipped (a last line cut short by the crash is dropped first), so no line is written twice.

What this module is not: the command line (cli/batch.py: generate --input) or the strategies.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..core.model import GPT2
from ..core.tokenizer import Tokenizer
from ..strategies.options import BY_NAME
from .generate import generate
from .prompts import read_text
from .strategies import STRATEGIES, build_options, chosen_strategy


@dataclass(frozen=True)
class Line:
    number: int  # from 1, as an editor counts
    prompt: str = ""
    strategy: str = "greedy"
    options: tuple = ()  # (name, value) pairs, sorted: lines with equal settings batch together
    error: str | None = None  # why the line cannot run
    samples: bool = False  # it draws its tokens: alone, so that its seed gives what it gives on its own


def parse_line(number: int, text: str, strategy: str | None, options: dict) -> Line:
    """One input line over the call's strategy and options, checked as generate() would check them."""
    try:
        record = json.loads(text)
    except ValueError as e:
        return Line(number, error=f"it is not JSON ({e.msg})")
    if not isinstance(record, dict) or not isinstance(record.get("prompt"), str):
        return Line(number, error='it is not a JSON object with a "prompt" string')
    unknown = sorted(set(record) - {"prompt", "strategy"} - set(BY_NAME))
    if unknown:
        return Line(number, error=f"{unknown[0]!r} is neither prompt, strategy nor a generation option")
    settings = {**options, **{k: v for k, v in record.items() if k in BY_NAME}}
    try:
        strategy = chosen_strategy(record.get("strategy", strategy), settings)
        samples = STRATEGIES[strategy].samples(build_options(strategy, **settings))
    except ValueError as e:
        return Line(number, error=str(e).rstrip("."))
    frozen = tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in settings.items()))
    return Line(number, record["prompt"], strategy, frozen, samples=samples)


def read_lines(path: Path, strategy: str, options: dict) -> list[Line]:
    text = read_text(path, str(path), "give a UTF-8 file of JSON lines.")
    return [parse_line(n, line, strategy, options) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def lines_done(path: Path) -> set[int]:
    """The line numbers an earlier run wrote to `path`; a last line cut short by a crash is removed."""
    if not path.exists():
        return set()
    data = path.read_bytes()
    whole = data[: data.rfind(b"\n") + 1]  # what follows the last newline was cut short
    if len(whole) != len(data):
        path.write_bytes(whole)
    done = set()
    for number, text in enumerate(whole.decode("utf-8", errors="replace").splitlines(), 1):
        try:
            done.add(int(json.loads(text)["line"]))
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"line {number} of {path} is not a result of minigpt; write the results to a new "
                             "file, or delete this one to start again.") from None
    return done


def batches(lines: list[Line], batch_size: int) -> list[list[Line]]:
    """Consecutive lines of equal settings, at most batch_size together; a sampling line alone."""
    out = []
    for line in lines:
        if out and not line.samples and len(out[-1]) < batch_size and (out[-1][0].strategy, out[-1][0].options) == (
                line.strategy, line.options) and not out[-1][0].error and not line.error:
            out[-1].append(line)
        else:
            out.append([line])
    return out


def run_batch(model: GPT2, batch: list[Line], tok: Tokenizer) -> list[dict]:
    if batch[0].error:
        return [{"line": batch[0].number, "error": batch[0].error + "."}]
    options = {k: json.loads(v) for k, v in batch[0].options}
    out = generate(model, [tok.encode(line.prompt) for line in batch], batch[0].strategy, tokenizer=tok,
                   trace_top=0, **options)
    sequences = [[] for _ in batch]  # each line's returned sequences, best first
    for i, row in enumerate(out.prompt_index):
        sequences[row].append({"text": out.texts[i], "tokens": out.sequences[i],
                               "finish_reason": out.finish_reasons[i]})
    return [{"line": line.number, **seqs[0], "prompt_tokens": out.prompt_tokens[row],
             **({"sequences": seqs} if len(seqs) > 1 else {})}
            for row, (line, seqs) in enumerate(zip(batch, sequences))]


def run_prompt_file(model: GPT2, input_path, output_path, strategy: str | None = None, options: dict | None = None,
                    skip_bad_lines: bool = False, batch_size: int = 32,
                    progress: Callable[[int, int], None] | None = None) -> int:
    """Generate for every line of input_path into output_path (see the module's docstring); returns how many
    lines this call wrote. A bad line refuses the whole file before anything runs, naming it, unless
    skip_bad_lines, which writes its error in its place. progress(done, total) is called before the first
    batch and after each."""
    input_path, output_path = Path(input_path), Path(output_path)
    if not output_path.parent.is_dir() or output_path.is_dir():
        raise ValueError(f"cannot write the results to {output_path}: "
                         + ("it is a folder" if output_path.is_dir() else f"the folder {output_path.parent} does "
                            "not exist") + "; give a file in an existing folder.")
    lines = read_lines(input_path, strategy, options or {})
    bad = next((line for line in lines if line.error), None)
    if bad and not skip_bad_lines:
        raise ValueError(f"line {bad.number} of {input_path} cannot run: {bad.error}; fix it, or pass "
                         "skip_bad_lines=True (--skip-bad-lines) to write its error in its place and go on.")
    done = lines_done(output_path)
    todo = [line for line in lines if line.number not in done]
    tok, written = Tokenizer(), 0
    progress = progress or (lambda done, total: None)
    progress(0, len(todo))
    with open(output_path, "a", encoding="utf-8") as out:
        for batch in batches(todo, batch_size):
            for result in run_batch(model, batch, tok):
                out.write(json.dumps(result, ensure_ascii=False) + "\n")
            out.flush()
            written += len(batch)
            progress(written, len(todo))
    return written
