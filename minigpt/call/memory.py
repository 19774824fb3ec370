"""How much memory a call holds at its peak, and the guard that refuses, before anything is allocated, a call
that would not fit in the memory available now.

A call's footprint is a sum of parts, each computed from the model's shape and the call's options and
each naming the options that shrink it (of a prompt's pass and the steps after it, which come one after
the other, only the larger counts). The functions here price what every call is made of:

    kv_cache           2 x n_layer x rows x positions x C float32 (keys and values, model.KVCache)
    forward_pass       one pass of T new positions over S: the residual stream, q k v [rows, T, 3C], the
                       attention scores [rows, H, T, S] and their masks, the MLP's [rows, T, 4C] twice
    vocabulary_arrays  the [rows, V] float32 arrays alive at once in a step (logits, log-softmax, the chain's
                       output, probabilities), as many as the strategy declares
    trace              trace_top candidates before and after the chain, for every step of every row

Below them, the footprint of every call that allocates more than its arguments: each strategy (the arrays
over the vocabulary that its step keeps alive, counted and explained here) and each inspection; the entry
points (call/generate.py, inspection/) check them before anything runs, and no algorithm counts its own arrays.
`check_fits` compares the total with `available()`: MemAvailable on Linux, lowered by a cgroup's limit
and by RLIMIT_AS; elsewhere, the free pages, else the physical memory; unknown (no check) if none is known.

How the estimates were checked: tests/call/test_memory.py measures the peak RSS of a child process (above what
it held before the call) for settings that fit; it lies between 0.4 and 1.25 times the estimate.
"""

import os
from dataclasses import dataclass

from ..core.checks import Named, OptionError, plural
from ..core.config import GPTConfig
from ..core.links import TOP_K
from ..core.loop import MAX_NEW_TOKENS
from ..core.model import prefill_chunk
from ..strategies.contrastive import DEFAULT_TOP_K
from ..strategies.options import NUM_BEAMS, NUM_RETURN_SEQUENCES, GenerationOptions
from ..strategies.run import TRACE_TOP

FLOAT32, INT64 = 4, 8
PAIR_BYTES = 136  # one traced Candidate: its slots, a Python int and a float (its text is shared), a list pointer
TOKEN_BYTES = 40  # one generated token: a Python int in a list, and its place in the history [rows, t] array
MARGIN = 1.25  # the guard wants this many times the estimate to be available: room for Python's own objects
PROMPTS, MAX_NEW = "the number of prompts", MAX_NEW_TOKENS.said()  # what most parts shrink with


@dataclass(frozen=True)
class Part:
    what: str  # "the KV cache (8 rows x 1,044 positions)"
    nbytes: int
    lower: list  # the settings (Named) or words that shrink it: [num_beams, max_new_tokens]


@dataclass(frozen=True)
class Footprint:
    """What a call holds at its peak, part by part."""
    parts: tuple[Part, ...]

    @property
    def nbytes(self) -> int:
        return sum(part.nbytes for part in self.parts)

    def largest(self) -> Part:
        return max(self.parts, key=lambda part: part.nbytes)

    def __add__(self, other: "Footprint") -> "Footprint":
        return Footprint(self.parts + other.parts)


def kv_cache(config: GPTConfig, rows: int, positions: int) -> int:
    """Keys and values of every layer, [L, rows, H, positions, D] twice, and the int64 mask [rows, positions]."""
    return 2 * config.n_layer * rows * positions * config.n_embd * FLOAT32 + rows * positions * INT64


def forward_pass(config: GPTConfig, rows: int, new: int, seen: int, logits_positions: int = 1,
                 every_layer: bool = False) -> int:
    """The peak of one forward pass of `new` positions attending to `seen` (cache included): the larger of
    the attention's and the MLP's temporaries, plus the residual stream and the logits [rows, positions, V];
    with every_layer (inspect=True), every block's residual stream and attention weights too."""
    stream = rows * new * config.n_embd * FLOAT32
    scores = rows * config.n_head * new * seen * FLOAT32  # [rows, H, T, S]
    cached = 2 * rows * seen * config.n_embd * FLOAT32  # the keys and values attended to, gathered by the matmuls
    attention = scores + 4 * rows * new * seen + 6 * stream + cached  # + 4 masks [rows, T, S] of one byte each
    mlp = 2 * 4 * stream  # the MLP's hidden layer [rows, T, 4C] and gelu's one temporary
    logits = rows * logits_positions * config.vocab_size * FLOAT32
    kept = (config.n_layer + 1) * stream + config.n_layer * scores if every_layer else 0
    return max(attention, mlp) + 4 * stream + 2 * logits + kept  # + x, ln(x), the block's output, the embeddings


def vocabulary_arrays(config: GPTConfig, rows: int, arrays: int) -> int:
    """`arrays` float32 arrays [rows, V] alive at the same time in one step."""
    return arrays * rows * config.vocab_size * FLOAT32


def trace(rows: int, steps: int, trace_top: int) -> int:
    """Each step of each row keeps trace_top candidates after the chain and as many before it."""
    return 2 * rows * steps * trace_top * PAIR_BYTES


def count(n: int, thing: str) -> str:
    """ "1 row", "100,000 rows": checks.plural with the thousands marked, as every part's description counts."""
    return plural(n, thing, grouped=True)


def generation(config: GPTConfig, rows: int, prompt_length: int, new_tokens: int, live_arrays: int, trace_top: int,
               cache_rows: int | None = None, prefill_rows: int | None = None, prefill_logits: int = 1,
               every_layer: bool = False, lower_rows: Named | None = NUM_RETURN_SEQUENCES.said()) -> Footprint:
    """The footprint of a loop that extends `rows` rows one token at a time: the KV cache (of cache_rows rows),
    the prompt's forward pass (prefill_rows rows; in model.prefill_chunk's pieces unless it keeps the logits
    of prefill_logits > 1 positions or every layer), the step's [rows, V] arrays, the trace and the tokens."""
    positions, trace_top = prompt_length + new_tokens, min(trace_top, config.vocab_size)  # a step traces <= V
    cache_rows = rows if cache_rows is None else cache_rows
    prefill_rows = rows if prefill_rows is None else prefill_rows
    at_once = prefill_logits > 1 or every_layer
    piece = prompt_length if at_once else prefill_chunk(config, prefill_rows, prompt_length)
    prefill = Part(f"the prompt's forward pass ({count(prefill_rows, 'row')} x {count(piece, 'position')} at a time)",
                   forward_pass(config, prefill_rows, piece, prompt_length, prefill_logits, every_layer),
                   "the number or the length of the prompts")
    arrays = f"{count(live_arrays, 'array')} of {count(rows, 'row')} x {config.vocab_size:,}"
    step = Part(f"the scores over the vocabulary ({arrays})", vocabulary_arrays(config, rows, live_arrays),
                [lower_rows, PROMPTS])
    return Footprint((
        Part(f"the KV cache ({count(cache_rows, 'row')} x {count(positions, 'position')})",
             kv_cache(config, cache_rows, positions), [lower_rows, PROMPTS, MAX_NEW]),
        max(prefill, step, key=lambda part: part.nbytes),  # one after the other: the larger is the peak
        Part(f"the trace ({count(trace_top, 'candidate')} x {count(new_tokens, 'step')} x {count(rows, 'row')})",
             trace(rows, new_tokens, trace_top), [TRACE_TOP, lower_rows, MAX_NEW]),
        Part("the generated tokens", rows * new_tokens * TOKEN_BYTES, [lower_rows, MAX_NEW]),
        Part(f"the batch of prompts ({count(rows, 'row')} x {count(prompt_length, 'token')})",
             3 * rows * prompt_length * INT64, "the number of prompts"),  # ids, mask, the history the chain reads
    ))


# ----------------------------------------------------------------------------- the strategies
# Each: (options, the model's config, prompts, the longest prompt's length, trace_top) -> its peak.

TOKENWISE_ARRAYS = 7  # [B, V] at once in a step: logits, log-softmax (and its temporary), the chain's output and
                      # the array it works on, the chooser's probabilities and their running sum
BEAM_ARRAYS = 9  # [B*K, V] at once in a step: logits, log-probs, processed, beam scores added, their top-2K
                 # selection's int64 indices (two arrays' worth) and the warpers' working copies (beam-sample)
BEAM_DRAW_ARRAYS = 6  # beam-sample, one prompt at a time: float64 keys and their Gumbel noise, the selection
CONTRASTIVE_ARRAYS = 3  # [B*k, V] at once: the look-ahead's logits and the forward pass's; the [B, V] arrays of
                        # the chain (log-softmax, processed, probabilities) counted as a third
SPECULATIVE_ARRAYS = 8  # [1, V] at once: the chain's arrays; plus the logits of the drafted tokens checked


def tokenwise(options: GenerationOptions, config: GPTConfig, prompts: int, prompt_length: int,
              trace_top: int) -> Footprint:
    """Greedy and sample: one row per returned sequence (twice that under guidance: its unconditional rows);
    DoLa keeps every layer of the prompt's pass, the others run it in pieces (model.prefill)."""
    copies = options.num_return_sequences
    rows = prompts * copies * (2 if options.guidance_scale != 1 else 1)
    return generation(config, rows, prompt_length, options.max_new_tokens, TOKENWISE_ARRAYS, trace_top,
                      every_layer=options.dola_layers is not None,
                      lower_rows=NUM_RETURN_SEQUENCES.said() if copies > 1 else None)


def beam(options: GenerationOptions, config: GPTConfig, prompts: int, prompt_length: int,
         trace_top: int) -> Footprint:
    """One row per beam; the prompt's cache (one row each) is copied for the beams after the prefill."""
    rows = prompts * options.num_beams
    return generation(config, rows, prompt_length, options.max_new_tokens, BEAM_ARRAYS, trace_top,
                      cache_rows=rows + prompts, prefill_rows=prompts, lower_rows=NUM_BEAMS.said())


def beam_sample(options: GenerationOptions, config: GPTConfig, prompts: int, prompt_length: int,
                trace_top: int) -> Footprint:
    """Beam search's, and the draws from every beam's candidates, one prompt at a time."""
    draws = vocabulary_arrays(config, options.num_beams, BEAM_DRAW_ARRAYS)
    return beam(options, config, prompts, prompt_length, trace_top) + Footprint((
        Part("the draws of one prompt's candidates", draws, NUM_BEAMS.said()),))


def contrastive(options: GenerationOptions, config: GPTConfig, prompts: int, prompt_length: int,
                trace_top: int) -> Footprint:
    """The top_k candidates each look ahead in a copy of their row's cache (the copy and the original live
    together); the prompt's pass keeps the hidden state and logits of every position."""
    k = min(options.top_k or DEFAULT_TOP_K, config.vocab_size)
    return generation(config, prompts * k, prompt_length, options.max_new_tokens, CONTRASTIVE_ARRAYS, trace_top,
                      cache_rows=prompts * (k + 1), prefill_rows=prompts, prefill_logits=prompt_length,
                      lower_rows=TOP_K.said())


def speculative(options: GenerationOptions, config: GPTConfig, prompts: int, prompt_length: int,
                trace_top: int) -> Footprint:
    """One row, and the draft model's own KV cache (options.draft_model is the loaded draft by then)."""
    footprint = generation(config, prompts, prompt_length, options.max_new_tokens,
                           SPECULATIVE_ARRAYS + options.num_assistant_tokens, trace_top)
    draft = options.draft_model.config
    cache = kv_cache(draft, prompts, prompt_length + options.max_new_tokens)
    return footprint + Footprint((Part("the draft model's KV cache", cache, MAX_NEW),))


def prompt_lookup(options: GenerationOptions, config: GPTConfig, prompts: int, prompt_length: int,
                  trace_top: int) -> Footprint:
    """Speculative decoding's, without a draft model: the drafts are copied from the text."""
    return generation(config, prompts, prompt_length, options.max_new_tokens,
                      SPECULATIVE_ARRAYS + options.prompt_lookup_num_tokens, trace_top)


# ----------------------------------------------------------------------------- looking inside


def prompt_pass(config: GPTConfig, length: int, vocab_rows: int, lower="the length of the prompt",
                logits_positions=1, every_layer=False) -> Footprint:
    """One pass over a prompt of `length` tokens that keeps the logits of logits_positions positions (every
    layer's stream and attention with every_layer), then vocab_rows float32 rows [V]: an inspection's peak."""
    return Footprint((
        Part(f"the forward pass over {length} tokens", forward_pass(config, 1, length, length, logits_positions,
                                                                    every_layer), "the length of the prompt"),
        Part(f"{vocab_rows:,} rows of {config.vocab_size} probabilities", vocabulary_arrays(config, vocab_rows, 1),
             [lower])))


def windows(config: GPTConfig, batch_bytes: int, at_once: int, max_length: int, window: Named,
            stride: Named) -> Footprint:
    """The perplexity of a text: a batch of `at_once` windows of max_length tokens (planned to stay under
    batch_bytes), then the log-probabilities of one window; window and stride name the settings that shrink them."""
    return Footprint((Part(f"a batch of {at_once} windows of {max_length} tokens", batch_bytes, [window]),
                      Part("the log-probabilities of one window", vocabulary_arrays(config, max_length, 3),
                           [window, stride])))


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room() -> int | None:
    """What a cgroup v2 memory limit leaves (a container's limit), if one is set."""
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current") as f:
            current = int(f.read())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else max(int(limit) - current, 0)


def _address_space_room() -> int | None:
    """What RLIMIT_AS (ulimit -v) leaves of this process's address space, if it is limited (Linux)."""
    try:
        with open("/proc/self/limits") as f:
            soft = next(line.split()[3] for line in f if line.startswith("Max address space"))
        with open("/proc/self/statm") as f:
            size = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return None if soft == "unlimited" else max(int(soft) - size, 0)


def _free_pages() -> int | None:
    for pages in ("SC_AVPHYS_PAGES", "SC_PHYS_PAGES"):  # free pages (Linux, Solaris), else all of them (macOS)
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf(pages)
        except (AttributeError, ValueError, OSError):
            continue
    return None


def available() -> int | None:
    """Bytes this process can still allocate: the least of what the machine has available, what its cgroup
    allows and what its address-space limit leaves. None when nothing is known (then nothing is refused)."""
    machine = _meminfo_available()
    known = [m for m in (machine if machine is not None else _free_pages(), _cgroup_room(), _address_space_room())
             if m is not None]
    return min(known) if known else None


def fits(footprint: Footprint, room: int | None) -> bool:
    return room is None or footprint.nbytes * MARGIN <= room


def gib(nbytes: float) -> str:
    """2**31 -> "2 GiB": in the largest unit it fills, from MiB to EiB."""
    power = min(max(int(nbytes).bit_length() - 1, 20) // 10, 6)  # 2 (MiB) ... 6 (EiB)
    return f"{nbytes / 2 ** (10 * power):.3g} {'MGTPE'[power - 2]}iB"


def check_fits(footprint: Footprint, doing: str, room: int | None = None):
    """Refuse, with ValueError, a footprint that does not fit (with the margin) in `room` (default: available())."""
    room = available() if room is None else room
    if fits(footprint, room):
        return
    big = footprint.largest()
    raise OptionError("{doing} would need about {need} of memory at its peak, mostly {what}: {most}, but only "
                      "{room} is available; lower {lower}.", doing=doing, need=gib(footprint.nbytes), what=big.what,
                      most=gib(big.nbytes), room=gib(room), lower=big.lower)
