"""The benchmark's child processes: what each does (`run_child`, run by `python -m scripts.bench.benchmark --child
kind`), and the parent's side (`children`, `shared_pss`), which starts them and collects their figures.

Memory is measured in children, each holding only what it measures: peak RSS (ru_maxrss, from os.wait4) of a
process that loads minigpt and generates (greedy, then beam), of one that does the same with transformers, the
proportional set size of two processes holding the same model, and --xl's random gpt2-xl. The random checkpoints
are built in a child too (common.checkpoint), so that torch's memory is given back.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import minigpt
import minigpt.weights.checkpoint

from .common import (BENCHMARK, Settings, checkpoint, child, import_transformers, limit_numpy_threads, prompt_ids,
                     status_kb, timed)

XL_SHAPE = {"n_layer": 48, "n_head": 25, "n_embd": 1600}  # gpt2-xl; vocab and context as gpt2's


# ----------------------------------------------------------------------------- in the child


def build_random_checkpoint(folder: Path, shape: dict):
    """A random GPT2LMHeadModel(GPT2Config(**shape)), seed 0, written once by save_pretrained (one file)."""
    import torch  # optional: only a child that builds a checkpoint needs it
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(**shape))
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:  # never leave half a checkpoint behind
        model.save_pretrained(tmp, max_shard_size="1000GB")
        os.replace(tmp, folder)
        os.mkdir(tmp)  # for TemporaryDirectory's cleanup


def child_minigpt(folder: Path, new_tokens: int, beam: bool) -> dict:
    """Only minigpt: load, generate greedily (and with 4 beams); resident memory after each stage."""
    rss = {"after_import": status_kb("VmRSS") * 1024}
    load_s, model = timed(lambda: minigpt.load(folder))
    rss["after_load"], rss["peak_after_load"] = status_kb("VmRSS") * 1024, status_kb("VmHWM") * 1024
    V = model.config.vocab_size
    ids = prompt_ids(V)
    greedy_s, out = timed(lambda: minigpt.generate(model, ids, max_new_tokens=new_tokens, eos_token_id=V))
    rss["peak_after_greedy"] = status_kb("VmHWM") * 1024
    result = {"load_s": load_s, "greedy_s": greedy_s, "new_tokens": len(out.sequences[0]), "rss": rss,
              "checkpoint_bytes": (folder / "model.safetensors").stat().st_size}
    if beam:
        result["beam_s"] = timed(lambda: minigpt.generate(model, ids, "beam", num_beams=4, max_new_tokens=32,
                                                          eos_token_id=V))[0]
        rss["peak_after_beam"] = status_kb("VmHWM") * 1024
    return result


def child_transformers(folder: Path, threads: int) -> dict:
    """Only transformers: load, generate greedily, 64 tokens (its peak RSS, for comparison)."""
    torch, transformers = import_transformers(threads)
    rss = {"after_import": status_kb("VmRSS") * 1024}
    load_s, model = timed(lambda: transformers.GPT2LMHeadModel.from_pretrained(folder, dtype=torch.float32).eval())
    rss["peak_after_load"] = status_kb("VmHWM") * 1024
    ids = torch.tensor([prompt_ids(model.config.vocab_size)])
    with torch.inference_mode():
        model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=64, min_new_tokens=64,
                       pad_token_id=model.config.eos_token_id)
    rss["peak_after_greedy"] = status_kb("VmHWM") * 1024
    return {"load_s": load_s, "rss": rss}


def hold_minigpt(folder: Path):
    """Load, read every weight once, say so, then hold the model until stdin closes."""
    model = minigpt.load(folder)
    minigpt.generate(model, prompt_ids(model.config.vocab_size), max_new_tokens=2)
    print(json.dumps({"ready": True}), flush=True)
    sys.stdin.read()


def run_child(kind: str, folder: Path, threads: int, xl_new_tokens: int):
    """What a child process started by common.child() does (--child kind); prints its result as JSON."""
    if kind in ("rss-minigpt", "hold-minigpt", "xl-minigpt", "xl-minigpt-copied"):
        limit_numpy_threads(threads)
    if kind == "rss-minigpt":
        result = child_minigpt(folder, 64, beam=True)
    elif kind == "hold-minigpt":
        return hold_minigpt(folder)
    elif kind == "rss-transformers":
        result = child_transformers(folder, threads)
    elif kind in ("xl-minigpt", "xl-minigpt-copied"):
        if kind == "xl-minigpt-copied":  # as before the memory map: every float32 tensor read into its own array
            minigpt.weights.checkpoint.NATIVE_F32 = False
        result = child_minigpt(folder, xl_new_tokens, beam=False)
    elif kind in ("build-gpt2", "build-gpt2-xl"):
        build_random_checkpoint(folder, XL_SHAPE if kind == "build-gpt2-xl" else {})
        result = {}
    else:
        sys.exit(f"unknown --child {kind}")
    print(json.dumps(result))


# ----------------------------------------------------------------------------- in the parent


def children(folder: Path, has_hf: bool, settings: Settings, xl_new_tokens: int | None) -> tuple:
    """The peak-RSS children, and --xl's (xl_new_tokens not None), started while this process is still
    small (see common.child()). -> (minigpt's, transformers' or {}, xl's or None)"""
    print("peak RSS in child processes ...", flush=True)
    run = lambda *extra: child(settings, ["--child", *extra])  # noqa: E731
    rss = run("rss-minigpt", "--child-dir", str(folder))
    rss_hf = run("rss-transformers", "--child-dir", str(folder)) if has_hf else {}
    if os.path.exists("/proc/self/smaps_rollup"):
        rss["shared"] = shared_pss(folder, settings)
    if xl_new_tokens is None:
        return rss, rss_hf, None
    xl_folder = checkpoint("gpt2-xl", has_hf, settings)
    print(f"xl: load + generate {xl_new_tokens} tokens in a child ...", flush=True)
    xl = run("xl-minigpt", "--child-dir", str(xl_folder), "--xl-new-tokens", str(xl_new_tokens))
    xl["copied"] = run("xl-minigpt-copied", "--child-dir", str(xl_folder), "--xl-new-tokens", str(xl_new_tokens))
    xl["checkpoint_bytes"] = (xl_folder / "model.safetensors").stat().st_size
    return rss, rss_hf, xl


def pss_bytes(pid: int) -> int:
    """The proportional set size of a process (Linux): each page shared with n processes counts 1/n."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("Pss:"))


def shared_pss(folder: Path, settings: Settings) -> dict:
    """Two processes that hold the same model loaded: their Pss together, against one process alone. A mapped
    float32 file is shared through the page cache, so the two together should cost less than twice one."""
    cmd = [sys.executable, "-m", BENCHMARK, "--threads", str(settings.threads), "--cache-dir",
           str(settings.cache_dir), "--child", "hold-minigpt", "--child-dir", str(folder)]
    holders = []
    try:
        for _ in range(2):
            holders.append(subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
            holders[-1].stdout.readline()  # {"ready": true}: loaded, every page read
            if len(holders) == 1:
                one = pss_bytes(holders[0].pid)
        return {"one_bytes": one, "two_bytes": sum(pss_bytes(p.pid) for p in holders)}
    finally:
        for p in holders:
            p.stdin.close()
            p.wait()


def print_children(rss: dict, rss_hf: dict, xl: dict | None):
    """Each child's own figures, bytes in MB."""
    def mb(key, value):
        if key.endswith("bytes"):
            return round(value / 1e6)
        return {stage: round(b / 1e6) for stage, b in value.items()} if key == "rss" else value

    for name, r in (("minigpt", rss), ("transformers", rss_hf), ("xl", xl)):
        if r:
            print(f"{name} child: " + json.dumps({k: mb(k, v) for k, v in r.items()}) + "  (bytes in MB)")
