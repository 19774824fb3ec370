"""Text views of the pipeline: the library's data laid out as lines for a terminal.

Each function takes what a library function returned (a token's merges, a traced generation step,
a comparison of strategies) and returns lines of text; the command line prints them, and so does
scripts/docs/decoding_strategies.py. Spaces, newlines and tabs in tokens are made visible (␣ ↵ ⇥), and a
token that is only part of a UTF-8 character is shown byte by byte, <0xE2><0x80>.

What this module is not: it computes nothing that a test should check (that is core/, call/,
inspection/), draws no figures (plots/) and prints nothing itself.
"""

from ..call.strategies import strategy_defaults
from ..core.bpe import Merge
from ..core.checks import chance, plural
from ..core.tokenizer import Tokenizer
from .html import state_text
from .labels import WIDTH, shown_bytes, token_label

# ----------------------------------------------------------------------------- tokenize --merges


def replay_merges(data: bytes, merges: list[Merge]) -> list[list[bytes]]:
    """The pieces of `data` before any merge and after each one: the states BPE passes through."""
    pieces = [bytes([b]) for b in data]
    states = [list(pieces)]
    for m in merges:
        if pieces[m.at : m.at + 2] != [m.left, m.right]:
            raise ValueError(f"merge {m.left!r} + {m.right!r} does not apply at piece {m.at} of {pieces!r}; "
                             f"replay merges on the bytes they were made from, in their order.")
        pieces[m.at : m.at + 2] = [m.merged]
        states.append(list(pieces))
    return states


def merge_lines(tok: Tokenizer, position: int, token_id: int, merges: list[Merge]) -> list[str]:
    """How BPE built one token: its bytes, then each merge with the pieces it leaves."""
    data = tok.token_bytes(token_id)
    states = replay_merges(data, merges)
    head = f"token {position} is {token_id} {token_label(tok, token_id)}"
    if not merges:
        return [f"{head}: a single byte, which no merge builds"]
    lines = [f"{head}: {len(data)} bytes, {plural(len(merges), 'merge')} in the order BPE makes them "
             f"(a merge's rank is the id of the piece it makes)",
             f"  {'rank':>6}  {'merge':<24}  pieces"]
    lines.append(f"  {'':>6}  {'(bytes)':<24}  {' '.join(shown_bytes(p) for p in states[0])}")
    for m, pieces in zip(merges, states[1:]):
        merge = f"{shown_bytes(m.left)} + {shown_bytes(m.right)}"
        lines.append(f"  {m.rank:>6}  {merge:<24}  {' '.join(shown_bytes(p) for p in pieces)}")
    return lines


# ----------------------------------------------------------------------------- generate --show-candidates


def chain_line(chain: list[str]) -> str:
    """The processor chain, in the order it runs."""
    if not chain:
        return "processor chain: none; tokens are chosen from the model's own distribution"
    return "processor chain, in order: " + " -> ".join(chain)


def survivors_text(survivors: int) -> str:
    """How many tokens a step could still choose: "1 token survives", "2,345 tokens survive"."""
    return plural(survivors, "token", grouped=True) + (" survives" if survivors == 1 else " survive")


def candidate_lines(tok: Tokenizer, number: int, step, top: int | None = None) -> list[str]:
    """One traced step as a table: rank, then the `top` candidates before the chain (the model's softmax)
    and after it (the distribution the token was chosen from), each with its probability; * marks the
    chosen token."""
    chosen = f"{step.token} {token_label(tok, step.token)}"
    header = (f"step {number}: chose {chosen} (log p {step.logprob:.4f} before the chain); "
              f"{survivors_text(step.survivors)} the chain")
    if step.state:
        header += f"; state {state_text(step.state)}"
    before, after = step.raw_candidates[:top], step.candidates[:top]
    if not before and not after:
        return [header]

    def cell(candidates, rank):
        if rank >= len(candidates):
            return " " * (WIDTH + 11)
        c = candidates[rank]
        return f"{token_label(tok, c.id, WIDTH):<{WIDTH}} {chance(c.p):>8} {'*' if c.id == step.token else ' '}"

    def held(candidates):  # the probability the rows above hold together
        return f"{'':<{WIDTH}} {chance(sum(c.p for c in candidates)):>8}  " if candidates else " " * (WIDTH + 11)

    lines = [header, f"  {'rank':>4}  {'before the chain':<{WIDTH + 11}}  after the chain"]
    for rank in range(max(len(before), len(after))):
        lines.append(f"  {rank + 1:>4}  {cell(before, rank)}  {cell(after, rank)}".rstrip())
    lines.append(f"  {'sum':>4}  {held(before)}  {held(after)}".rstrip())
    if all(c.id != step.token for c in after):
        lines.append(f"        (the chosen token is not among the {len(after)} most probable after the chain)")
    return lines


def trace_lines(tok: Tokenizer, chain: list[str], steps_per_sequence: list[list], top: int | None = None) -> list[str]:
    """The chain once, then every step of every returned sequence as a table of its `top` candidates."""
    lines = [chain_line(chain)]
    for i, steps in enumerate(steps_per_sequence):
        if len(steps_per_sequence) > 1:
            lines.append(f"--- sequence {i + 1}")
        for number, step in enumerate(steps, start=1):
            lines.extend(candidate_lines(tok, number, step, top))
    return lines


# ----------------------------------------------------------------------------- compare


def measure_text(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def comparison_block(prompt: str, r) -> list[str]:
    """One run of compare.compare: its settings, the prompt and its continuation, log p and distinct-n."""
    description = r.spec.describe()
    shared = " ".join(f"{k}={v}" for k, v in r.options.items() if k not in r.spec.options and k != "max_new_tokens")
    heading = r.spec.name if r.spec.name == description else f"{r.spec.name}: {description}"
    lines = [f"=== {heading}" + (f" ({shared})" if shared else "")]
    lines.extend("    " + line for line in (prompt + r.text).split("\n"))
    distinct = "  ".join(f"distinct-{n} {measure_text(d)}" for n, d in r.distinct.items())
    per_token = f"{measure_text(r.mean_logprob)} per token over {plural(len(r.tokens), 'token')}"
    lines.append(f"    log p {r.logprob:.3f} ({per_token}, "
                 f"ended by {r.finish_reason})  {distinct}")
    return lines


def comparison_lines(prompt: str, results) -> list[str]:
    """One block per run (comparison_block), then a table of the numbers, a row per run."""
    lines = []
    for r in results:
        lines.extend(comparison_block(prompt, r) + [""])
    lines.extend(comparison_table(results))
    return lines


def comparison_table(results) -> list[str]:
    """log p, log p per token and distinct-n of each run, a row per run."""
    lines = []
    ns = list(results[0].distinct) if results else []
    width = max([len(r.spec.name) for r in results] + [3])
    lines.append(f"{'run':<{width}}  {'log p':>9}  {'per token':>9}" + "".join(f"  {f'distinct-{n}':>10}" for n in ns))
    for r in results:
        lines.append(f"{r.spec.name:<{width}}  {r.logprob:9.3f}  {measure_text(r.mean_logprob):>9}"
                     + "".join(f"  {measure_text(r.distinct[n]):>10}" for n in ns))
    return lines


# ----------------------------------------------------------------------------- generate --trace and --json


def step_line(tok: Tokenizer, step) -> str:
    """One traced step on one line: id, token, log p, the links' state, how many tokens survive the chain,
    then the candidates after the chain and the probability they hold together."""
    candidates = "  ".join(f"{token_label(tok, c.id)} {chance(c.p, 3)}" for c in step.candidates)
    state = f" [{state_text(step.state)}]" if step.state else ""  # e.g. DoLa's premature layer, mirostat's mu
    shown = f", shown p {chance(step.shown_mass, 3)} | {candidates}" if step.candidates else ""
    return (f"  {step.token:>6} {token_label(tok, step.token)!s:<14} logp {step.logprob:8.3f}{state} | "
            f"survivors {step.survivors}{shown}")


def candidate_json(c) -> dict:
    """A candidate as JSON: {"id", "p", "text"}."""
    return {"id": c.id, "p": c.p, "text": c.text}


def step_json(step) -> dict:
    """One traced step as JSON: the token and its text, candidates as {"id", "p", "text"} before the chain
    (raw_candidates) and after it, the probability each list holds (raw_shown_mass, shown_mass), and how many
    tokens survive the chain."""
    entry = {"token": step.token, "text": step.text, "logprob": step.logprob, "survivors": step.survivors,
             "candidates": [candidate_json(c) for c in step.candidates], "shown_mass": step.shown_mass,
             "raw_candidates": [candidate_json(c) for c in step.raw_candidates], "raw_shown_mass": step.raw_shown_mass}
    if step.state:
        entry["state"] = step.state
    return entry


def generation_json(out, with_steps: bool) -> dict:
    """A GenerationOutput of one prompt as `minigpt generate --json` prints it: the prompt as the model read it
    (<|endoftext|> for an empty one, the kept end of a long one), the strategy that ran and its seed."""
    sequences = []
    for i, tokens in enumerate(out.sequences):
        entry = {"tokens": tokens, "text": out.texts[i], "score": out.scores[i], "finish_reason": out.finish_reasons[i]}
        if with_steps:
            entry["steps"] = [step_json(step) for step in out.steps[i]]
        sequences.append(entry)
    result = {"prompt_tokens": out.prompt_tokens[0], "strategy": out.strategy, "seed": out.seed, "chain": out.chain,
              "sequences": sequences}
    if out.stats:
        result["stats"] = out.stats
    return result


def comparison_json(prompt_ids: list[int], results) -> dict:
    """compare.compare's results as `minigpt compare --json` prints them."""
    return {"prompt_tokens": prompt_ids, "runs": [
        {"label": r.spec.name, "strategy": r.spec.strategy, "options": r.options, "tokens": r.tokens, "text": r.text,
         "logprob": r.logprob, "mean_logprob": r.mean_logprob, "distinct": {str(n): d for n, d in r.distinct.items()},
         "finish_reason": r.finish_reason} for r in results]}


# ----------------------------------------------------------------------------- the options, for the README


def options_table(registry) -> list[str]:
    """Every declared option as a Markdown table, grouped as --help groups them: the README's list."""
    lines = ["| group | flag | Python name | default | what it does |", "|---|---|---|---|---|"]
    for option in registry:
        default = "" if option.default in (None, ()) else f"`{option.default!r}`"
        default += f" ({own})" if (own := strategy_defaults(option)) else ""
        lines.append(f"| {option.group} | `{option.flag}` | `{option.name}` | {default} | {option.help} |")
    return lines
