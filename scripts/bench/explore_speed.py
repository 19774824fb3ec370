"""What a click of `minigpt explore` costs (issue #26), through minigpt.web.explore's Explorer.step(), the function
behind /api/step, on the benchmark's checkpoint, with the page's opening settings (sampling, seed 0, the
prompt "The meaning of life is") and requests shaped as the page sends them (each says how many steps the page
holds). Nothing goes over HTTP; each answer is encoded to JSON as the server writes it, and that is timed too.

- Next after 200 accepted tokens: Next clicked 200 times untimed, then `repeats` more, each timed (after 200,
  201, ... accepted tokens); against one greedy decoding step of generate() at the same length: the gaps between
  the steps of minigpt.stream() (generate()'s own loop, its default trace) continuing the same text.
  Goal: the median Next <= 2 x the median step + 50 ms.
- The answer's size in bytes after 0, 50 and 200 accepted tokens. Goal: it does not grow: the answers after 50
  and 200 are at most 1.5 times the first (the tolerance of tests/web/test_explore.py).
- Run 50, streamed: a new branch opened (its first answer), then asked for 50 steps more with a send(), as the
  page's Run 50: the time from the request to the first step sent, and to the 50th (the answer's last).
  Goal: the first step arrives before the 50th is computed.

Only minigpt takes part; the measures are one walk each, the timed Nexts and greedy steps `repeats` each.
"""

import json
import time

import minigpt
from minigpt.core.tokenizer import Tokenizer
from minigpt.web.explore import Explorer
from minigpt.web.render import plain

from .common import median

PROMPT = "The meaning of life is"  # the page's opening prompt
PAGE = {"prompt": PROMPT, "prefix": [], "forced": [], "strategy": "sample", "options": {"seed": 0}, "top": 10}
NEXT_AFTER = 200  # accepted tokens before the timed Nexts
SIZES_AT = (0, 50, NEXT_AFTER)  # accepted tokens at which the answer's size is taken
RUN_N = 50  # the streamed run's steps
NEXT_GOAL = (2.0, 0.050)  # a Next takes at most 2 greedy steps + 50 ms
SIZE_GOAL = 1.5  # an answer after n accepted tokens is at most 1.5x the first answer


def encoded(answer: dict) -> bytes:
    """An answer as the server sends it (server.Handler.send_json)."""
    return json.dumps(plain(answer), ensure_ascii=False, allow_nan=False).encode()


def click(explorer: Explorer, payload: dict, steps: list, **extra) -> tuple[float, dict, int]:
    """One request of the page that holds `steps`, timed with its JSON; the steps it sends are added to `steps`.
    -> (seconds, answer, bytes)"""
    start = time.perf_counter()
    answer = explorer.step(payload | {"have": len(steps)}, **extra)
    size = len(encoded(answer))
    seconds = time.perf_counter() - start
    if answer.get("ended"):
        raise RuntimeError(f"the branch ended ({answer['ended']}) after {answer['accepted']} tokens; the benchmark "
                           "needs one that goes on: change PAGE's seed in scripts/bench/explore_speed.py.")
    steps += answer["steps"]
    return seconds, answer, size


def next_after(explorer: Explorer, repeats: int) -> dict:
    """Next clicked NEXT_AFTER times, then `repeats` timed Nexts; the answer's size at SIZES_AT. -> seconds of each
    timed Next, bytes by accepted tokens, and the text's tokens when the timed Nexts began"""
    steps, sizes, times = [], {}, []
    for accepted in range(NEXT_AFTER + repeats):
        seconds, answer, size = click(explorer, PAGE | {"accepted": accepted}, steps)
        if accepted in SIZES_AT:
            sizes[accepted] = size
        if accepted == NEXT_AFTER - 1:
            text = [s["token"] for s in steps[:NEXT_AFTER]]
        if accepted >= NEXT_AFTER:
            times.append(seconds)
    return {"next_s": times, "bytes": sizes, "text": text}


def greedy_steps(model, ids: list[int], repeats: int) -> list[float]:
    """Seconds of each of `repeats` greedy steps of generate()'s loop (minigpt.stream) continuing ids: the gaps
    between steps, after the first (which holds the prefill)."""
    V = model.config.vocab_size
    steps = minigpt.stream(model, ids, "greedy", max_new_tokens=repeats + 1, eos_token_id=V)
    next(steps)
    gaps, last = [], time.perf_counter()
    for _ in steps:
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    return gaps


def run_streamed(explorer: Explorer) -> dict:
    """A new branch (seed 1), its first answer, then Run RUN_N with a send(), each part encoded as the server
    encodes it. -> seconds from the request to each step's arrival, in order"""
    payload, steps = PAGE | {"options": {"seed": 1}}, []
    click(explorer, payload | {"accepted": 0}, steps)
    arrivals = []

    def send(part):
        encoded(part)
        arrivals.extend([time.perf_counter() - start] * len(part["steps"]))

    start = time.perf_counter()
    seconds, answer, _ = click(explorer, payload | {"accepted": RUN_N}, steps, send=send)
    arrivals += [seconds] * len(answer["steps"])
    return {"arrivals_s": arrivals[:RUN_N], "streamed_parts": len(arrivals) - len(answer["steps"])}


def explore_speed(model, repeats: int) -> dict:
    """Every figure of the module's docstring, raw: seconds and bytes."""
    explorer = Explorer(model, Tokenizer(), "benchmark")
    walk = next_after(explorer, repeats)
    ids = explorer.prompt(PAGE) + walk.pop("text")
    return walk | {"greedy_step_s": greedy_steps(model, ids, repeats), "run": run_streamed(explorer),
                   "repeats": repeats}


def summary(speed: dict) -> dict:
    """The figures against their goals: the median Next and greedy step, the sizes' growth, Run 50's first and
    50th arrivals."""
    next_s, step_s = median(speed["next_s"]), median(speed["greedy_step_s"])
    allowed = NEXT_GOAL[0] * step_s + NEXT_GOAL[1]
    sizes = speed["bytes"]
    growth = max(sizes[n] for n in SIZES_AT[1:]) / sizes[SIZES_AT[0]]
    first, last = speed["run"]["arrivals_s"][0], speed["run"]["arrivals_s"][-1]
    return {"next_s": next_s, "greedy_step_s": step_s, "next_allowed_s": allowed, "next_met": next_s <= allowed,
            "bytes": sizes, "growth": growth, "size_met": growth <= SIZE_GOAL, "first_s": first, "last_s": last,
            "run_met": first < last}
