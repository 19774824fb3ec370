"""Generation: prompts in, new tokens out, by any decoding strategy.

    prompt ids -> left-padded batch -> options checked -> processor chain built -> strategy:
    prefill the prompts once, then step through the KV cache, choosing tokens -> sequences + trace

The strategies live in minigpt/sampling/: sample.py (greedy, sampling), beam.py (beam search, beam
sampling, diverse beam search), contrastive.py and speculative.py; the logit processors they share
in processors.py. This module only prepares the batch, picks the strategy and packs the result.
"""

import importlib
import os
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Callable

import numpy as np

from .model import GPT2, check_vocabulary
from .sampling.decoding import Decoding, StopStrings, Step
from .sampling.options import GenerationOptions, OptionError
from .sampling.processors import build_chain, number
from .tokenizer import Tokenizer


@dataclass
class GenerationOutput:
    prompt_tokens: list[list[int]]  # each prompt as the model read it: an empty prompt becomes [<|endoftext|>],
                                    # and truncate_prompt keeps only the last tokens of a long one
    sequences: list[list[int]]  # the new tokens of each returned sequence, prompt excluded
    texts: list[str] = field(default_factory=list)  # their text (without end-of-text, cut before a stop string)
    scores: list[float] = field(default_factory=list)  # see Hypothesis.score
    finish_reasons: list[str] = field(default_factory=list)  # "eos", "stop" or "length"
    prompt_index: list[int] = field(default_factory=list)  # which prompt each sequence continues
    steps: list[list[Step]] = field(default_factory=list)  # the per-step trace of each sequence
    chain: list[str] = field(default_factory=list)  # the logit processors, in the order applied; last, mirostat if on
    stats: dict = field(default_factory=dict)  # strategy-specific figures (speculative: acceptance rate)


def as_prompt_batch(prompt_ids, eos_token_id: int) -> list[list[int]]:
    """One prompt (a list of ids) or a batch (a list of lists, or a 2-D array) -> a list of prompts.
    An empty prompt starts from <|endoftext|>, as GPT-2 does for unconditional text."""
    if isinstance(prompt_ids, (str, bytes)):
        raise ValueError("prompt_ids must be token ids, not text; encode the text first: minigpt.Tokenizer().encode(text).")
    if isinstance(prompt_ids, np.ndarray):
        if prompt_ids.ndim not in (1, 2):
            raise ValueError(f"prompt_ids must be one prompt [T] or a batch [B, T], got an array of shape {prompt_ids.shape}.")
        prompt_ids = prompt_ids.tolist()
    if not isinstance(prompt_ids, (list, tuple, range)):
        raise ValueError(f"prompt_ids must be a list of token ids or a list of such lists, got {type(prompt_ids).__name__}.")
    if len(prompt_ids) and all(isinstance(p, (list, tuple, range, np.ndarray)) for p in prompt_ids):
        prompts = [np.asarray(p).tolist() if isinstance(p, np.ndarray) else list(p) for p in prompt_ids]
    else:
        prompts = [list(prompt_ids)]
    if not prompts:
        raise ValueError("prompt_ids holds no prompt; give a list of token ids or a list of such lists.")
    result = []
    for prompt in prompts:
        if not all(isinstance(t, (int, np.integer)) and not isinstance(t, bool) for t in prompt):
            raise ValueError(f"prompt_ids must hold integer token ids (one list, or a list of lists), got {prompt!r:.80}.")
        result.append([int(t) for t in prompt] or [eos_token_id])
    return result


def unpad(ids, attention_mask) -> list[list[int]]:
    """An already padded batch ids [B, T] with its attention_mask [B, T] (1 real, 0 padding) -> its prompts."""
    ids, mask = np.asarray(ids), np.asarray(attention_mask)
    if ids.ndim != 2 or mask.shape != ids.shape:
        raise ValueError(f"attention_mask must have the shape of the batch prompt_ids [B, T]; got {mask.shape} for {ids.shape}.")
    if not np.isin(mask, (0, 1)).all():
        raise ValueError("attention_mask must hold only 1 (a real token) and 0 (padding).")
    return [row[m == 1].tolist() for row, m in zip(ids, mask)]


def left_pad(prompts: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Prompts of different lengths -> ids [B, T] and attention_mask [B, T], padding on the left so
    that every row's last token sits in the last column, where the next token is read off."""
    T = max(len(p) for p in prompts)
    ids = np.full((len(prompts), T), pad_id, dtype=np.int64)
    mask = np.zeros((len(prompts), T), dtype=np.int64)
    for row, prompt in enumerate(prompts):
        ids[row, T - len(prompt) :] = prompt
        mask[row, T - len(prompt) :] = 1
    return ids, mask


def check_context(model: GPT2, prompt_length: int, max_new_tokens: int):
    limit = model.config.n_positions
    if prompt_length + max_new_tokens > limit:
        raise ValueError(f"the prompt ({prompt_length} tokens) plus max_new_tokens ({max_new_tokens}) exceed "
                         f"the model's context of n_positions={limit} tokens; shorten the prompt, ask for fewer tokens, "
                         f"or pass truncate_prompt=True (--truncate-prompt) to keep only the prompt's last "
                         f"{max(limit - max_new_tokens, 0)} tokens.")


def truncate(prompts: list[list[int]], model: GPT2, max_new_tokens: int) -> list[list[int]]:
    """Each prompt's last n_positions - max_new_tokens tokens: the most recent text the context can hold
    with room for the new tokens. Only on request (truncate_prompt=True): dropping text changes the answer."""
    keep = model.config.n_positions - max_new_tokens
    if keep < 1:
        raise ValueError(f"max_new_tokens ({max_new_tokens}) leaves no room for a prompt in the model's context of "
                         f"n_positions={model.config.n_positions} tokens, even truncated; ask for at most "
                         f"{model.config.n_positions - 1} new tokens.")
    return [p[-keep:] for p in prompts]


def check_memory(model: GPT2, rows: int, length: int):
    """Refuse, before allocating it, a KV cache larger than this machine's memory (num_beams=10**6...).
    Keys and values: 2 x n_layer x rows x length x n_embd float32 numbers. Skipped where the size of
    the memory is unknown."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return
    c = model.config
    need = 2 * c.n_layer * rows * length * c.n_embd * 4
    if need > memory:
        raise ValueError(f"this call needs a KV cache of {number(need / 2**30)} GiB ({number(rows)} rows of {length} "
                         f"positions), more than this machine's {number(memory / 2**30)} GiB of memory; ask for fewer "
                         f"sequences or beams (num_return_sequences, num_beams, top_k), fewer prompts or fewer new tokens.")


@lru_cache(maxsize=1)
def default_tokenizer() -> Tokenizer:
    return Tokenizer()


# strategy -> (module in minigpt/sampling/, function); each module is imported when first used.
STRATEGY_FUNCTIONS = {
    "greedy": ("sample", "greedy_or_sample"),
    "sample": ("sample", "greedy_or_sample"),
    "beam": ("beam", "beam_search"),
    "beam-sample": ("beam", "beam_search"),
    "diverse-beam": ("beam", "beam_search"),
    "contrastive": ("contrastive", "contrastive_search"),
    "speculative": ("speculative", "speculative_decoding"),
}


def strategy_function(name: str):
    module, function = STRATEGY_FUNCTIONS[name]
    return getattr(importlib.import_module(f".sampling.{module}", __package__), function)


def generate(model: GPT2, prompt_ids, strategy: str = "greedy", *, attention_mask=None,
             on_token: Callable[[int, int], None] | None = None, trace_top: int = 10, tokenizer: Tokenizer | None = None,
             truncate_prompt: bool = False, record: list | None = None, **options) -> GenerationOutput:
    """Continue each prompt by the named strategy.

    prompt_ids: one prompt [T] or a batch of prompts (padded on the left here).
    attention_mask: for a batch prompt_ids [B, T] that is already padded: 1 at real tokens, 0 at padding.
    strategy: greedy, sample, beam, beam-sample, diverse-beam, contrastive or speculative.
    options: transformers' GenerationConfig names (max_new_tokens, temperature, top_k, top_p, num_beams,
      ...) plus frequency_penalty, presence_penalty, logit_bias, stop, draft_model; see sampling/options.py.
    on_token(row, token_id) is called as each token is chosen (token-by-token strategies), for streaming.
    trace_top: how many candidates each traced step keeps.
    truncate_prompt: a prompt too long for the context keeps only its last n_positions - max_new_tokens
      tokens; without it such a prompt is refused.
    record: a list to which the beam strategies append a BeamEvent (sampling/beam.py) for every candidate
      they weigh, for inspection.beam_tree; None records nothing.

    Bad input (options, ids outside the vocabulary, a prompt too long) raises ValueError before any
    token is generated; processors that leave no token to choose raise ValueError naming the step.
    """
    opts = GenerationOptions.build(strategy, **options)
    if not isinstance(trace_top, int) or isinstance(trace_top, bool) or trace_top < 0:
        raise OptionError(f"trace_top must be a whole number >= 0, got {trace_top!r}.")
    if not isinstance(truncate_prompt, bool):
        raise OptionError(f"truncate_prompt must be true or false, got {truncate_prompt!r}.")
    if on_token is not None and not callable(on_token):
        raise OptionError(f"on_token must be a function (row, token_id) -> None, got {on_token!r}.")
    if record is not None and (not isinstance(record, list) or strategy not in ("beam", "beam-sample", "diverse-beam")):
        raise OptionError(f"record must be a list, and only the beam strategies (beam, beam-sample, diverse-beam) fill "
                          f"it; got {type(record).__name__} with strategy {strategy!r}.")
    if attention_mask is not None:
        prompt_ids = unpad(prompt_ids, attention_mask)
    eos = model.config.eos_token_id if opts.eos_token_id is None else opts.eos_token_id
    vocab_size = model.config.vocab_size
    pad = eos if eos < vocab_size else 0
    prompts = as_prompt_batch(prompt_ids, pad)
    for prompt in prompts:
        check_vocabulary(prompt, vocab_size)
    if truncate_prompt:
        prompts = truncate(prompts, model, opts.max_new_tokens)
    check_context(model, max(len(p) for p in prompts), opts.max_new_tokens)
    n = opts.num_return_sequences if strategy == "sample" else 1  # beams return several per prompt themselves
    copies = {"beam": opts.num_beams, "beam-sample": opts.num_beams, "diverse-beam": opts.num_beams,
              "contrastive": min(opts.top_k or 4, vocab_size)}.get(strategy, n)  # the rows the KV cache holds per prompt
    copies *= 2 if opts.guidance_scale != 1 else 1  # guidance adds an unconditional row for each (sampling/guidance.py)
    check_memory(model, len(prompts) * copies, max(len(p) for p in prompts) + opts.max_new_tokens)
    rows = [p for p in prompts for _ in range(n)]
    ids, mask = left_pad(rows, pad)

    chain_options = opts.processor_options()
    if strategy == "beam-sample" and opts.num_beams > 1 and "min_tokens_to_keep" not in options:
        chain_options["min_tokens_to_keep"] = 2  # as transformers: every beam keeps one continuation besides eos
    if eos >= vocab_size:  # a small test vocabulary without GPT-2's end-of-text: nothing to hold back
        chain_options["min_new_tokens"] = 0
    tokenizer = tokenizer or default_tokenizer()
    rng = np.random.default_rng(opts.seed)  # every random draw of the run (tokens, XTC): a seed reproduces the text
    chain_for = partial(build_chain, sampling=opts.sampling, prompt_length=ids.shape[1], eos_token_id=eos,
                        vocab_size=vocab_size, tokenizer=tokenizer, rng=rng, **chain_options)
    pad_lengths = (mask == 0).sum(axis=1)  # [B] the repetition penalty skips each row's padding
    chain = chain_for(pad_lengths=pad_lengths)
    run = Decoding(model=model, ids=ids, mask=mask, options=opts, chain=chain,
                   chain_for_copies=lambda copies: chain_for(pad_lengths=np.repeat(pad_lengths, copies)),
                   eos_token_id=eos, pad_token_id=pad,
                   rng=rng, trace_top=trace_top, on_token=on_token, record=record,
                   stop=StopStrings(opts.stop, tokenizer, len(rows)) if opts.stop else None)
    per_row = strategy_function(strategy)(run)

    described = [run.scores_from, *chain.describe(), run.drawn_by]  # the chain, and what comes before and after it
    out = GenerationOutput(prompt_tokens=prompts, sequences=[], chain=[d for d in described if d],
                           stats=run.stats)
    for row, hyps in enumerate(per_row):
        for hyp in hyps:
            text = tokenizer.decode(t for t in hyp.tokens if t != eos and t < tokenizer.n_vocab)
            out.sequences.append(hyp.tokens)
            out.texts.append(run.stop.cut(text) if run.stop else text)
            out.scores.append(hyp.score)
            out.finish_reasons.append(hyp.finish_reason)
            out.prompt_index.append(row // n)
            out.steps.append(hyp.steps)
    return out
