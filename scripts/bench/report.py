"""The benchmark's table: a row per measure (minigpt, transformers, their ratio, the goal, whether it is met),
made from the raw samples of measures.py, first_token.py and children.py, and printed under the run's conditions:
the BLAS kernel, the sgemm peak and the bandwidth it was measured against.

Speeds come from the median time; ratio = minigpt's speed over transformers', and ratio_best the same from each
one's fastest run (what a quiet machine would show). Under a figure, its share of the machine's limit
(limits.py): decoding, of the bandwidth bound; prefill, the perplexity windows and the batched prompts, of the
sgemm peak, counting the FLOPs of their forward passes; beam search, of both. The shares are the goals. Then
minigpt explore's clicks against their goals (explore_speed.py), prompt lookup decoding against greedy
(drafting.py), looking inside (inside.py: run_with_cache and the patching sweeps, beside TransformerLens'), and the
time to first token.
"""

from functools import partial

from . import drafting, explore_speed, inside
from .common import median
from .limits import GOALS, bandwidth_bound, share_of_bound, share_of_peak
from .measures import (BEAM_BEAMS, BEAM_NEW, FILE_NEW_TOKENS, FILE_PROMPTS, GREEDY_NEW, MANY_BEAMS, MANY_BEAMS_NEW,
                       PERPLEXITY_STRIDE, PERPLEXITY_TOKENS, PERPLEXITY_WINDOW, PREFILL_TOKENS, PROMPT_TOKENS,
                       TRACE_TOP)

MEASURES = ("greedy_s", "prefill_s", "beam_s", "many_beams_s", "perplexity_s", "file_s")  # timed side by side
TRACE_GOAL = 0.05  # the default trace's cost, as a share of a greedy step
BEAM_SAMPLE_GOAL = 1.5  # beam sampling's time, in beam search's


def row(name, mg, hf, ratio=None, goal="", ok=None, unit="", best=None):
    return {"measure": name, "minigpt": mg, "transformers": hf, "ratio": ratio, "ratio_best": best, "goal": goal,
            "ok": ok, "unit": unit}


def speedup(times: dict, k: str, name="minigpt"):
    """How many times faster minigpt (the entry `name`) is than transformers at measure k, from times."""
    return times[k]["transformers"] / times[k][name] if "transformers" in times[k] else None


def compared(med: dict, best: dict, label, k, new_tokens=None) -> dict:
    """The row of a side-by-side measure: its speed (new tokens per second, or seconds) and ratio."""
    speed = (lambda t: new_tokens / t) if new_tokens else (lambda t: t)  # noqa: E731
    hf = med[k].get("transformers")
    return row(label, speed(med[k]["minigpt"]), hf and speed(hf), speedup(med, k), "report", best=speedup(best, k))


def share(label: str, med: dict, k: str, of, goal: float | None = None) -> dict:
    """The row of a figure's share of a limit: of(seconds) -> share, for each side; the goal is minigpt's."""
    mg, hf = of(med[k]["minigpt"]), med[k].get("transformers") and of(med[k]["transformers"])
    return row(label, mg, hf, None, f">= {goal:.0%}" if goal else "report", None if goal is None else mg >= goal,
               unit="%")


def summarize(cmp: dict, first: dict, rss: dict, rss_hf: dict, xl: dict | None, checkpoint_bytes: int,
              memory: int, explore: dict, drafted: dict, looked: dict) -> list:
    """The table's rows."""
    med = {k: {name: median(s) for name, s in cmp[k].items()} for k in MEASURES}
    best = {k: {name: min(s) for name, s in cmp[k].items()} for k in MEASURES}
    side_by_side, flops = partial(compared, med, best), cmp["flops"]
    bound = bandwidth_bound(cmp["bandwidth"], cmp["weight_bytes_per_token"])  # tokens/s
    peak = cmp["sgemm_peak"]["flops_per_s"]
    of_peak = lambda k: lambda t: share_of_peak(flops[k], t, peak)  # noqa: E731
    rows = [side_by_side(f"greedy {PROMPT_TOKENS}+{GREEDY_NEW} (tokens/s)", "greedy_s", GREEDY_NEW),
            share(f"  share of bandwidth bound ({bound:.1f} tok/s)", med, "greedy_s",
                  lambda t: share_of_bound(GREEDY_NEW, t, bound), GOALS["decode"]),
            trace_row(cmp["trace"]),
            side_by_side(f"prefill {PREFILL_TOKENS}, full logits (s)", "prefill_s"),
            share(f"  share of sgemm peak ({flops['prefill_s'] / 1e9:.0f} GFLOP)", med, "prefill_s",
                  of_peak("prefill_s"), GOALS["prefill"]),
            side_by_side(f"beam {BEAM_BEAMS} beams, {BEAM_NEW} new (tokens/s)", "beam_s", BEAM_NEW),
            share("  share of bandwidth bound", med, "beam_s", lambda t: share_of_bound(BEAM_NEW, t, bound)),
            share("  share of sgemm peak", med, "beam_s", of_peak("beam_s"))]
    rows += many_beams_rows(med)
    rows += whole_text_rows(side_by_side, med, of_peak)
    rows += explore_rows(explore)
    rows += drafting_rows(drafted)
    rows += inside_rows(looked)
    rows += first_token_rows(first)
    rows += memory_rows(rss, rss_hf, checkpoint_bytes)
    return rows + (xl_rows(xl, memory) if xl else [])


def trace_row(trace: dict) -> dict:
    """The default trace's cost: the median of the paired differences over the step without it."""
    cost = trace_cost(trace)
    return row(f"  default trace (top {TRACE_TOP}): cost per step", cost["share"], None, None,
               f"< {TRACE_GOAL:.0%} of a step", cost["share"] < TRACE_GOAL, unit="%")


def trace_cost(trace: dict) -> dict:
    """From the paired runs: the median cost per step, its quartiles, the step without the trace (seconds), and
    the trace's own work timed directly (seconds per step)."""
    n = trace["new_tokens"]
    diffs = sorted((on - off) / n for on, off in trace["pairs"])
    step = median([off for _, off in trace["pairs"]]) / n
    quartiles = [diffs[len(diffs) // 4], diffs[(3 * len(diffs)) // 4]]
    direct = trace["direct_s"]
    return {"per_step_s": median(diffs), "quartiles_s": quartiles, "step_s": step, "share": median(diffs) / step,
            "direct_s": direct[TRACE_TOP], "direct_candidates_s": direct[TRACE_TOP] - direct[0], "pairs": len(diffs)}


def many_beams_rows(med: dict) -> list:
    """Beam search and beam sampling with many beams, no top-k: sampling's time in beam search's."""
    beam, sample = med["many_beams_s"]["minigpt beam"], med["many_beams_s"]["minigpt beam-sample"]
    what = f"{MANY_BEAMS} beams x {MANY_BEAMS_NEW} new"
    return [row(f"beam {what} (s)", beam, None, None, "report"),
            row(f"beam-sample {what}, no top-k (s)", sample, None, sample / beam,
                f"<= {BEAM_SAMPLE_GOAL}x beam", sample / beam <= BEAM_SAMPLE_GOAL, unit="x beam")]


def whole_text_rows(side_by_side, med: dict, of_peak) -> list:
    """The perplexity of a long text, and a file of prompts, batched and one at a time; their shares of the peak."""
    tokens = PERPLEXITY_TOKENS - 1
    rows = [side_by_side(f"perplexity {PERPLEXITY_TOKENS:,} tokens, L {PERPLEXITY_WINDOW} S {PERPLEXITY_STRIDE} "
                         "(tokens/s)", "perplexity_s", tokens),
            share("  share of sgemm peak", med, "perplexity_s", of_peak("perplexity_s"), GOALS["perplexity"])]
    generated = FILE_PROMPTS * FILE_NEW_TOKENS
    rows.append(side_by_side(f"{FILE_PROMPTS} prompts from a file x {FILE_NEW_TOKENS} new (tokens/s)", "file_s",
                             generated))
    rows.append(share("  share of sgemm peak", med, "file_s", of_peak("file_s"), GOALS["batch"]))
    one = med["file_s"]["minigpt one at a time"] / med["file_s"]["minigpt"]
    rows.append(row("  the same, one prompt at a time (tokens/s)", generated / med["file_s"]["minigpt one at a time"],
                    None, one, ">= 3x batched", one >= 3, unit="x batched"))
    return rows


def explore_rows(speed: dict) -> list:
    """minigpt explore's clicks (explore_speed.py): a Next after 200 tokens against a greedy step, the answer's
    size as the text grows, Run 50's first token against its 50th."""
    s, n, ms = explore_speed.summary(speed), explore_speed.NEXT_AFTER, 1e3
    times, plus = explore_speed.NEXT_GOAL
    rows = [row(f"explore: Next after {n} accepted (ms)", s["next_s"] * ms, None, s["next_s"] / s["greedy_step_s"],
                f"<= {times:g}x step + {plus * ms:.0f} ms", s["next_met"], unit="x step"),
            row(f"  one greedy step of generate() at {n} (ms)", s["greedy_step_s"] * ms, None, None, "report")]
    first = explore_speed.SIZES_AT[0]
    for accepted, size in s["bytes"].items():
        last = accepted == explore_speed.SIZES_AT[-1]
        rows.append(row(f"explore: answer after {accepted} accepted (bytes)", size, None,
                        size / s["bytes"][first] if accepted != first else None,
                        f"<= {explore_speed.SIZE_GOAL:g}x the first" if last else "report",
                        s["size_met"] if last else None, unit="x first"))
    run = explore_speed.RUN_N
    rows.append(row(f"explore: Run {run} streamed, first token (ms)", s["first_s"] * ms, None,
                    s["first_s"] / s["last_s"], f"before the {run}th", s["run_met"], unit=f"x {run}th"))
    rows.append(row(f"  the {run}th token (ms)", s["last_s"] * ms, None, None, "report"))
    return rows


def drafting_rows(figures: dict) -> list:
    """Prompt lookup decoding against greedy on a prompt that repeats itself (drafting.py): tokens/s of each, the
    speed-up (ratio, best), the drafts kept and the tokens per forward pass. Its text is greedy's (checked)."""
    s = drafting.summary(figures)
    what = f"{figures['prompt_tokens']}+{figures['new_tokens']}"
    return [row(f"greedy, a self-repeating prompt {what} (tokens/s)", s["greedy_tokens_per_s"], None, None,
                "report"),
            row("  prompt lookup, the same tokens (tokens/s)", s["lookup_tokens_per_s"], None, s["speedup"], "report",
                unit="x greedy", best=s["speedup_best"]),
            row("  prompt lookup: drafts kept", s["acceptance_rate"], None, None, "report", unit="%"),
            row("  prompt lookup: tokens per forward pass", s["tokens_per_pass"], None, None, "report")]


def inside_rows(figures: dict) -> list:
    """Looking inside (inside.py, issue 23): run_with_cache in forward passes, for minigpt and TransformerLens (in
    the transformers column, with --tl-python), and the four patching sweeps' seconds, minigpt's in TransformerLens'
    (the goal: at most SWEEP_GOAL; not measured without --tl-python)."""
    tl = figures.get("transformer_lens")
    cache = figures["cache_ratio"]
    rows = [row(f"run_with_cache / forward pass, {inside.PROMPT_LENGTH} tokens", cache,
                tl and tl["run_with_cache"] / tl["forward"], None, f"<= {inside.CACHE_GOAL:g}x",
                cache <= inside.CACHE_GOAL, unit="x forward")]
    share = tl and figures["sweep"] / tl["sweep"]
    goal = f"<= {inside.SWEEP_GOAL:g}x TL" + ("" if tl else ": not measured")
    rows.append(row(f"patching sweep, all four places, {inside.PROMPT_LENGTH} tokens (s)", figures["sweep"],
                    tl and tl["sweep"], share, goal, None if share is None else share <= inside.SWEEP_GOAL,
                    unit="x TL"))
    return rows


def first_token_rows(first: dict) -> list:
    """The time to first token (first_token.py), cold and warm: ratio = transformers' time over minigpt's."""
    rows = []
    for label, times in ((f"first token, cold{' (caches dropped)' if first['dropped_caches'] else ''} (s)",
                          first["cold"]), (f"first token, warm, median of {len(first['warm']['minigpt'])} (s)",
                                           first["warm_median"])):
        hf = times.get("transformers")
        rows.append(row(label, times["minigpt"], hf, hf and hf / times["minigpt"], "report"))
    return rows


def memory_rows(rss: dict, rss_hf: dict, checkpoint_bytes: int) -> list:
    """Peak RSS against the checkpoint, and two processes sharing the mapped weights."""
    peak = rss.get("peak_rss_bytes")
    rows = [row("peak RSS, load+greedy+beam (MB)", peak / 1e6, rss_hf.get("peak_rss_bytes", 0) / 1e6 or None,
                peak / checkpoint_bytes, "<= 1.3x ckpt", peak / checkpoint_bytes <= 1.3, unit="x ckpt")]
    shared = rss.get("shared")
    if shared:
        share_of_two = shared["two_bytes"] / (2 * shared["one_bytes"])
        rows.append(row("2 processes holding it: Pss (MB)", shared["two_bytes"] / 1e6, None, share_of_two,
                        "< 2x one", share_of_two < 1, unit="x 2 one"))
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
        return f"{100 * x:.1f}%" if abs(x) < 0.1 else f"{100 * x:.0f}%"
    return f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}"


def print_conditions(meta: dict):
    """What the figures were measured under: the checkpoint, threads, BLAS kernel, torch, the machine's limits, the
    load average."""
    print(f"\nminigpt vs transformers: {meta['checkpoint']} ({meta['checkpoint_bytes'] / 1e6:.0f} MB), "
          f"{meta['threads']} thread(s), median of {meta['repeats']}; {meta['machine']['cpu']}")
    b = meta["blas"]
    print(f"NumPy BLAS: {b.get('library', '?')} | kernel {b.get('kernel', '?')} | threads {b.get('threads', '?')} "
          f"(from {b.get('source')}) | OPENBLAS_CORETYPE={b['env'].get('OPENBLAS_CORETYPE')} "
          f"OPENBLAS_L2_SIZE={b['env'].get('OPENBLAS_L2_SIZE')}"
          + (f" (--native-blas: unset {b['unset'] or 'nothing, neither was set'})" if b.get("native_blas_run") else ""))
    if meta.get("blas_warning"):
        print(meta["blas_warning"])
    print(f"torch: {meta.get('torch', '-')} threads {meta.get('torch_threads', '-')}, "
          f"transformers {meta.get('transformers', '-')}, attention {meta.get('attn_implementation', '-')}")
    peak = meta["sgemm_peak"]
    m, k, n = peak["shape"]
    print(f"sgemm peak: {peak['flops_per_s'] / 1e9:.0f} GFLOP/s, [{m}, {k}] x [{k}, {n}] float32 in NumPy (torch "
          + ", ".join(f"{v / 1e9:.0f}" for name, v in peak["by_form"].items() if "torch" in name) + ")")
    bw = meta["bandwidth"]
    print(f"bandwidth: matvec {bw['bytes_per_s'] / 1e9:.1f} GB/s ("
          + ", ".join(f"{k} {v / 1e9:.1f}" for k, v in bw["by_form"].items())
          + f"); weights read per token {meta['weight_bytes_per_token'] / 1e6:.0f} MB -> bound "
          f"{bw['bytes_per_s'] / meta['weight_bytes_per_token']:.1f} tokens/s")
    print(f"load average (1, 5, 15 min): start {meta['loadavg_start']}, end {meta['loadavg_end']}; "
          f"1-min at each measure: {meta['loadavg_per_measure']}\n")


def print_table(rows: list, meta: dict):
    print_conditions(meta)
    header = f"{'measure':<50} {'minigpt':>9} {'transformers':>12} {'ratio':>7} {'best':>6}  {'goal':<16} met?"
    print(header)
    print("-" * len(header))
    for r in rows:
        unit = r["unit"] if r["unit"] == "%" else ""
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        ok = {True: "met", False: "missed", None: ""}[r["ok"]]
        best = "" if r["ratio_best"] is None else f"{r['ratio_best']:.2f}x"
        print(f"{r['measure']:<50} {fmt(r['minigpt'], unit):>9} {fmt(r['transformers'], unit):>12} {ratio:>7} "
              f"{best:>6}  {r['goal']:<16} {ok}")
    print("ratio: minigpt's speed over transformers' from the median runs (first token: transformers' time over "
          "minigpt's); best: from\neach one's fastest run. For peak RSS the ratio is minigpt's peak over the "
          "checkpoint's bytes; for beam-sample, its time over beam's;\nfor prompt lookup, its speed over greedy's; "
          "for the patching sweep, its time over TransformerLens' (TL, in the transformers column, with --tl-python).")


def print_notes(cmp: dict, first: dict):
    """What the table sums up: the trace's paired runs and the text each first-token command printed."""
    t = trace_cost(cmp["trace"])
    low, high = t["quartiles_s"]
    print(f"\ndefault trace: {t['per_step_s'] * 1e3:.3f} ms per greedy step (quartiles {low * 1e3:.3f} to "
          f"{high * 1e3:.3f} ms) over a {t['step_s'] * 1e3:.2f} ms step without it, the median of {t['pairs']} "
          f"paired runs; trace_step itself takes {t['direct_s'] * 1e3:.3f} ms a step, "
          f"{t['direct_candidates_s'] * 1e3:.3f} ms of it for the {TRACE_TOP} candidates")
    for side, text in first["text"].items():
        print(f"first token, {side} printed: {text!r}")
