"""The time to first token: what a user feels, from the command to the first generated text on the terminal.

Two commands continue the same prompt by one token, each in a child process on the same local checkpoint folder
with the same threads (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS and MKL_NUM_THREADS, and torch's --threads):

    python -m minigpt generate PROMPT --model FOLDER --max-new-tokens 1
    python -m scripts.bench.transformers_first_token FOLDER PROMPT --threads N     (AutoModelForCausalLM + generate)

Each is timed from its start to the first byte of stdout beyond the prompt (both print the prompt, then the
token): Python's start, the imports, loading the tokenizer and the weights, the prefill and the first step.

Cold: the first run right after the checkpoint folder is written (a copy of the measured one, each side its own,
written just before its run). The written file is then still in the page cache, so "cold" is the first start of
the program on new weights, not a cold disk, unless --drop-caches asks the kernel to drop its clean caches
first (sync, then 3 > /proc/sys/vm/drop_caches: root only, and it slows every process on the machine for a
while, hence only on request); the cold run then also reads Python, NumPy, torch and the weights from disk.
Warm: the median of the following runs, the two commands taking turns.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from minigpt.core.tokenizer import END_OF_TEXT, END_OF_TEXT_ID, RANKS_FILE, SPLIT_PATTERN

from .common import median

CHECKOUT = Path(__file__).resolve().parents[2]  # the children run from here, so that they import this checkout
PROMPT = "The meaning of life is"
TOKENIZER_FILE = "gpt2-tokenizer.json"  # in --cache-dir: built once from minigpt's ranks


def tokenizer_json(cache_dir: Path) -> Path:
    """GPT-2's tokenizer as transformers' tokenizer.json, built once from minigpt's own rank table (the same ids:
    transformers' TikTokenConverter turns tiktoken's ranks into a fast tokenizer), so that the transformers
    script loads it as AutoTokenizer loads gpt2's."""
    path = cache_dir / TOKENIZER_FILE
    if not path.is_file():
        from transformers.convert_slow_tokenizer import TikTokenConverter  # optional: the transformers side only
        converter = TikTokenConverter(vocab_file=str(RANKS_FILE), pattern=SPLIT_PATTERN,
                                      extra_special_tokens={END_OF_TEXT: END_OF_TEXT_ID})
        converter.converted().save(str(path))
    return path


def write_checkpoint(source: Path, folder: Path, tokenizer: Path | None):
    """A fresh copy of the checkpoint (config.json, model.safetensors), with transformers' tokenizer files."""
    folder.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copyfile(source / name, folder / name)
    if tokenizer is not None:
        shutil.copyfile(tokenizer, folder / "tokenizer.json")
        (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "PreTrainedTokenizerFast",
                                                                  "eos_token": END_OF_TEXT}))
    os.sync()  # written to disk: what stays in memory is the page cache's clean copy


def drop_caches():
    """Drop the kernel's clean page cache (root only): the next run reads its files from disk."""
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def time_to_first_token(cmd: list[str]) -> tuple[float, str]:
    """Seconds from starting cmd to the first byte it prints beyond PROMPT (it must then end with exit code 0),
    and all it printed."""
    prompt_bytes = len(PROMPT.encode())
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=CHECKOUT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    seen, first = b"", None
    while first is None:
        chunk = os.read(proc.stdout.fileno(), 65536)
        seen += chunk
        if len(seen) > prompt_bytes or not chunk:  # the token's first byte, or the end (then: the whole run)
            first = time.perf_counter() - start
    out, err = proc.communicate()
    if proc.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines() or ["(nothing on stderr)"]
        raise RuntimeError(f"{' '.join(cmd[:4])} ... exited with {proc.returncode}: {lines[-1]}")
    return first, (seen + out).decode(errors="replace").strip()


def commands(threads: int, has_hf: bool) -> dict:
    """Each side's command, by name, on a folder given later (a function of it)."""
    sides = {"minigpt": lambda folder: [sys.executable, "-m", "minigpt", "generate", PROMPT, "--model", str(folder),
                                        "--max-new-tokens", "1"]}
    if has_hf:
        sides["transformers"] = lambda folder: [sys.executable, "-m", "scripts.bench.transformers_first_token",
                                                str(folder), PROMPT, "--threads", str(threads)]
    return sides


def first_token_times(source: Path, cache_dir: Path, threads: int, has_hf: bool, warm_runs: int,
                      drop: bool = False) -> dict:
    """Each side's time to first token, cold (one run) and warm (warm_runs, taking turns). -> {"cold": {side:
    seconds}, "warm": {side: [seconds]}, "text": {side: what the cold run printed}, ...}"""
    sides = commands(threads, has_hf)
    tokenizer = tokenizer_json(cache_dir) if has_hf else None
    cold, text, warm = {}, {}, {side: [] for side in sides}
    with tempfile.TemporaryDirectory(dir=cache_dir) as work:
        folders = {side: Path(work) / side for side in sides}
        for side, cmd in sides.items():
            write_checkpoint(source, folders[side], tokenizer)
            if drop:
                drop_caches()
            cold[side], text[side] = time_to_first_token(cmd(folders[side]))
        for r in range(warm_runs):
            for side in list(sides) if r % 2 == 0 else list(sides)[::-1]:
                warm[side].append(time_to_first_token(sides[side](folders[side]))[0])
    return {"cold": cold, "warm": warm, "text": text, "warm_median": {side: median(s) for side, s in warm.items()},
            "dropped_caches": drop, "prompt": PROMPT}
