"""`minigpt generate --input prompts.jsonl --output results.jsonl`: a file of prompts through batch.py.

    minigpt generate --input prompts.jsonl --output results.jsonl --max-new-tokens 32
    minigpt generate --input prompts.jsonl --output results.jsonl      # again: finishes an interrupted run

Like main.py, it parses, calls the library (batch.run_prompt_file) and reports; a progress bar on a terminal.
"""

import sys

from ..call.batch import run_prompt_file
from ..core.checks import plural
from .args import model_from, progress_bar


def cmd_generate_file(args, options: dict):
    """generate --input/--output: every flag given is the default of every line."""
    if args.input is None or args.output is None:
        raise ValueError("--input and --output go together: give the prompts file and the results file.")
    if args.prompt is not None:
        raise ValueError("give a prompt or --input FILE.jsonl, not both.")
    if args.json or args.trace or args.show_candidates:
        raise ValueError("--json, --trace and --show-candidates show one prompt's run; with --input every result "
                         "goes to --output as one JSON line.")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size takes how many prompts run together (1 or more), got {args.batch_size}.")
    model, _ = model_from(args)
    bar = progress_bar("prompt", "generating")

    def progress(done: int, total: int):
        bar.total = total
        bar.n = done
        bar.refresh()

    written = run_prompt_file(model, args.input, args.output, args.strategy, options, args.skip_bad_lines,
                              args.batch_size, progress)
    bar.close()
    print(f"minigpt: {plural(written, 'line')} written to {args.output}", file=sys.stderr)
