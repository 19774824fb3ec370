"""The benchmark's table: a row per measure (minigpt, transformers, their ratio, the goal, whether it is met),
made from the raw samples of measures.py and children.py, and printed under the run's conditions.

Speeds come from the median time; ratio = minigpt's speed over transformers', and ratio_best the same from each
one's fastest run (what a quiet machine would show).
"""

from functools import partial

from .common import median
from .measures import FILE_NEW_TOKENS, FILE_PROMPTS, PERPLEXITY_STRIDE, PERPLEXITY_TOKENS, PERPLEXITY_WINDOW

MEASURES = ("load_s", "greedy_s", "prefill_s", "beam_s", "perplexity_s", "file_s")  # compared side by side


def row(name, mg, hf, ratio=None, goal="", ok=None, unit="", best=None):
    return {"measure": name, "minigpt": mg, "transformers": hf, "ratio": ratio, "ratio_best": best, "goal": goal,
            "ok": ok, "unit": unit}


def speedup(times: dict, k: str, name="minigpt"):
    """How many times faster minigpt (the entry `name`) is than transformers at measure k, from times."""
    return times[k]["transformers"] / times[k][name] if "transformers" in times[k] else None


def compared(med: dict, best: dict, label, k, new_tokens=None, goal=None, name="minigpt", goal_text=None) -> dict:
    """The row of a side-by-side measure: its speed (new tokens per second, or seconds), ratio and goal."""
    speed = (lambda t: new_tokens / t) if new_tokens else (lambda t: t)  # noqa: E731
    hf = med[k].get("transformers")
    r = speedup(med, k, name)
    goal_text = goal_text or (f">= {goal:.1f}x" if goal else "report" if name == "minigpt" else "info")
    ok = (None if r is None else r >= goal) if goal else None
    return row(label, speed(med[k][name]), hf and speed(hf), r, goal_text, ok, best=speedup(best, k, name))


def summarize(cmp: dict, bandwidth: dict, rss: dict, rss_hf: dict, xl: dict | None, checkpoint_bytes: int,
              memory: int) -> list:
    """The table's rows."""
    med = {k: {name: median(s) for name, s in cmp[k].items()} for k in MEASURES}
    best = {k: {name: min(s) for name, s in cmp[k].items()} for k in MEASURES}
    side_by_side = partial(compared, med, best)
    bound = bandwidth["bytes_per_s"] / cmp["weight_bytes_per_token"]
    g = 64 / med["greedy_s"]["minigpt"]
    g_hf = 64 / med["greedy_s"]["transformers"] if "transformers" in med["greedy_s"] else None
    peak = rss.get("peak_rss_bytes")
    rows = [
        side_by_side("load: safetensors -> ready model (s)", "load_s", goal=1 / 1.5, goal_text="<= 1.5x its time"),
        side_by_side("greedy 32+64 (tokens/s)", "greedy_s", 64, 2.0),
        row(f"  share of bandwidth bound ({bound:.1f} tok/s)", g / bound, g_hf and g_hf / bound, None, ">= 75%",
            g / bound >= 0.75, unit="%"),
        side_by_side("greedy 32+64, trace_top=0 (tokens/s)", "greedy_s", 64, name="minigpt trace_top=0"),
        side_by_side("prefill 512, full logits (s)", "prefill_s", goal=1.0),
        side_by_side("beam 4 beams, 32 new (tokens/s)", "beam_s", 32, 2.0),
        row("peak RSS, load+greedy+beam (MB)", peak / 1e6, rss_hf.get("peak_rss_bytes", 0) / 1e6 or None,
            peak / checkpoint_bytes, "<= 1.3x ckpt", peak / checkpoint_bytes <= 1.3, unit="x ckpt"),
    ]
    rows += whole_text_rows(side_by_side, med)
    shared = rss.get("shared")
    if shared:
        share = shared["two_bytes"] / (2 * shared["one_bytes"])
        rows.append(row("2 processes holding it: Pss (MB)", shared["two_bytes"] / 1e6, None, share,
                        "< 2x one", share < 1, unit="x 2 one"))
    return rows + (xl_rows(xl, memory) if xl else [])


def whole_text_rows(side_by_side, med: dict) -> list:
    """The perplexity of a long text, and a file of prompts, batched and one at a time."""
    tokens = PERPLEXITY_TOKENS - 1
    rows = [side_by_side(f"perplexity {PERPLEXITY_TOKENS:,} tokens, L {PERPLEXITY_WINDOW} S {PERPLEXITY_STRIDE} "
                         "(tokens/s)", "perplexity_s", tokens, 1.0)]
    generated = FILE_PROMPTS * FILE_NEW_TOKENS
    rows.append(side_by_side(f"{FILE_PROMPTS} prompts from a file x {FILE_NEW_TOKENS} new (tokens/s)", "file_s",
                             generated, 1.5))
    one = med["file_s"]["minigpt one at a time"] / med["file_s"]["minigpt"]
    rows.append(row("  the same, one prompt at a time (tokens/s)", generated / med["file_s"]["minigpt one at a time"],
                    None, one, ">= 3x batched", one >= 3, unit="x batched"))
    return rows


def xl_rows(xl: dict, memory: int) -> list:
    """--xl's rows: load, load before the memory map, greedy, peak RSS against the machine's memory."""
    if "error" in xl:
        return [row("xl: load + generate", xl["error"], None, None, "fits in RAM", False)]
    rows = [row("xl: load (s)", xl["load_s"], None, None, "report")]
    copied = xl["copied"]
    if "error" not in copied:
        rows.append(row("  before the memory map: load (s)", copied["load_s"], None, None, "report"))
        rows.append(row("  before the memory map: peak RSS (GiB)", copied["peak_rss_bytes"] / 2**30, None,
                        copied["peak_rss_bytes"] / xl["checkpoint_bytes"], "report", unit="x ckpt"))
    speed = xl["new_tokens"] / xl["greedy_s"]
    rows.append(row(f"xl: greedy 32+{xl['new_tokens']} (tokens/s)", speed, None, None, "report"))
    peak = xl["peak_rss_bytes"]
    rows.append(row("xl: peak RSS (GiB)", peak / 2**30, None, peak / xl["checkpoint_bytes"],
                    f"< {memory / 2**30:.1f} GiB RAM", peak < memory, unit="x ckpt"))
    return rows


def fmt(x, unit=""):
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    if unit == "%":
        return f"{100 * x:.0f}%"
    return f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}"


def print_conditions(meta: dict):
    """What the figures were measured under: the checkpoint, threads, BLAS, torch, bandwidth, load average."""
    print(f"\nminigpt vs transformers: {meta['checkpoint']} ({meta['checkpoint_bytes'] / 1e6:.0f} MB), "
          f"{meta['threads']} thread(s), median of {meta['repeats']}")
    b = meta["blas"]
    print(f"NumPy BLAS: {b.get('config', '?')} | kernel {b.get('corename', '?')} | "
          f"threads {b.get('num_threads', '?')} | "
          f"OPENBLAS_CORETYPE={b['env'].get('OPENBLAS_CORETYPE')} OPENBLAS_L2_SIZE={b['env'].get('OPENBLAS_L2_SIZE')}"
          + (f" (--native-blas: unset {b['unset'] or 'nothing, neither was set'})" if b.get("native_blas_run") else ""))
    print(f"torch: {meta.get('torch', '-')} threads {meta.get('torch_threads', '-')}, "
          f"transformers {meta.get('transformers', '-')}, "
          f"attention {meta.get('attn_implementation', '-')}")
    bw = meta["bandwidth"]
    print(f"bandwidth: matvec {bw['bytes_per_s'] / 1e9:.1f} GB/s ("
          + ", ".join(f"{k} {v / 1e9:.1f}" for k, v in bw["by_form"].items())
          + f"); weights read per token {meta['weight_bytes_per_token'] / 1e6:.0f} MB -> bound "
          f"{bw['bytes_per_s'] / meta['weight_bytes_per_token']:.1f} tokens/s")
    print(f"load average (1, 5, 15 min): start {meta['loadavg_start']}, end {meta['loadavg_end']}; "
          f"1-min at each measure: {meta['loadavg_per_measure']}\n")


def print_table(rows: list, meta: dict):
    print_conditions(meta)
    header = f"{'measure':<42} {'minigpt':>9} {'transformers':>12} {'ratio':>7} {'best':>6}  {'goal':<13} ok"
    print(header)
    print("-" * len(header))
    for r in rows:
        unit = r["unit"] if r["unit"] == "%" else ""
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        ok = {True: "yes", False: "NO", None: ""}[r["ok"]]
        best = "" if r["ratio_best"] is None else f"{r['ratio_best']:.2f}x"
        print(f"{r['measure']:<42} {fmt(r['minigpt'], unit):>9} {fmt(r['transformers'], unit):>12} {ratio:>7} "
              f"{best:>6}  {r['goal']:<13} {ok}")
    print("ratio: minigpt's speed over transformers' from the median runs; best: from each one's fastest run.\n"
          "For peak RSS the ratio is minigpt's peak over the checkpoint's bytes.")
