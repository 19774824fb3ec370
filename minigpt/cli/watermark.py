"""`minigpt detect-watermark`: whether a text carries the watermark that `generate --watermark` puts in.

    minigpt detect-watermark "The file is a list of ..."           z-score, p-value, green tokens, verdict
    minigpt detect-watermark --file text.txt --json                 one JSON object
    minigpt detect-watermark "..." --watermark-hashing-key 42       the settings the text was generated with

Like main.py, it parses, calls the library (inspection/watermark.py) and prints. The watermark_* flags are the
generate command's own (their declarations in links/watermark.py); the bias plays no part in detection.
"""

import json
from pathlib import Path

from ..call.prompts import read_text
from ..inspection.watermark import GPT2_VOCAB, SETTINGS, Z_THRESHOLD, watermark_score
from .args import add_option, command_line_text, integer, real


def cmd_detect_watermark(args):
    if (args.text is None) == (args.file is None):
        raise ValueError("give either a text to check or --file FILE, not both and not neither.")
    text = command_line_text(args.text) if args.file is None else read_text(Path(args.file), f"--file {args.file}",
                                                                            "give a UTF-8 text file.")
    score = watermark_score(text, **{option.name: getattr(args, option.name) for option in SETTINGS},
                            vocab_size=args.vocab_size,
                            ignore_repeated_ngrams=args.ignore_repeated_ngrams, z_threshold=args.z_threshold)
    if args.json:
        print(json.dumps({"z_score": score.z_score, "p_value": score.p_value, "prediction": score.prediction,
                          "num_tokens_scored": score.num_tokens_scored, "num_green_tokens": score.num_green_tokens,
                          "green_fraction": score.green_fraction, "greenlist_ratio": score.greenlist_ratio,
                          "z_threshold": score.z_threshold}))
        return
    verdict = "watermarked" if score.prediction else "no watermark found"
    print(f"z-score {score.z_score:.2f}, p-value {score.p_value:.3g}: {score.num_green_tokens} of "
          f"{score.num_tokens_scored} tokens green ({score.green_fraction:.0%}; {score.greenlist_ratio:.0%} expected "
          f"without the watermark): {verdict} (watermarked above z = {score.z_threshold:g})")


def add_watermark_command(sub):
    d = sub.add_parser("detect-watermark", help="whether a text carries generate --watermark's watermark: its "
                       "z-score and p-value")
    d.add_argument("text", nargs="?", help="the text to check (or give --file)")
    d.add_argument("--file", metavar="FILE", help="a UTF-8 text file to check")
    for option in SETTINGS:  # the settings generate --watermark used, with their defaults
        add_option(d, option, default=option.default)
    d.add_argument("--vocab-size", type=integer, default=GPT2_VOCAB, metavar="N",
                   help=f"the vocabulary of the model that generated the text (default {GPT2_VOCAB}, GPT-2's)")
    d.add_argument("--ignore-repeated-ngrams", action="store_true", help="score each distinct n-gram once")
    d.add_argument("--z-threshold", type=real, default=Z_THRESHOLD, metavar="Z",
                   help=f"above it, the text is taken to be watermarked (default {Z_THRESHOLD:g})")
    d.add_argument("--json", action="store_true", help="print one JSON object")
    d.set_defaults(run=cmd_detect_watermark)
