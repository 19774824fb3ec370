"""generate(): prompts in, new tokens out, by any decoding strategy, in three steps.

    1. prepare   options checked, prompts checked and left-padded, the chain built    (prepare_run)
    2. run       the strategy's own loop over the KV cache, step by step              (STRATEGIES[name].loop)
    3. pack      each returned sequence with its text, score and trace                (pack_output)

The loops live in strategies/ (tokenwise.py for greedy and sampling, beam.py, contrastive.py, speculative.py);
each is a generator that pauses after every step. A LiveRun holds one paused: `stream()` hands its tokens over
as they come, the explorer steps it click by click, and generate() runs it to the end. What every step shares is in strategies/run.py (trace, stop strings) and
core/chain.py (the links and the chooser).

What this module is not: the strategies, the options' declarations (strategies/options.py) or the model.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from ..core.checks import UNSET, OptionError, plural
from ..core.link import Trait
from ..core.model import GPT2, left_pad, unpad
from ..core.tokenizer import Tokenizer
from ..links.chain import build_chain
from ..strategies.options import GenerationOptions
from ..strategies.run import TRACE_TOP, Outcome, Run, Step, StopStrings
from ..weights.checkpoint import load
from .memory import Footprint, check_fits
from .prompts import TRUNCATE_PROMPT, as_prompt_batch, fit_context
from .strategies import STRATEGIES, build_options, doing

REPR_ROWS = 4  # the prompts, and the sequences of each, a repr shows
REPR_TEXT = 80  # the characters of a text a repr shows


def short(text: str, width: int = REPR_TEXT) -> str:
    """A text as a repr shows it: quoted, escaped, cut to `width` characters with an ellipsis."""
    return repr(text) if len(text) <= width else repr(text[: width - 1]) + "…"


@dataclass(repr=False)
class GenerationOutput:
    prompt_tokens: list[list[int]]  # each prompt as the model read it: an empty prompt becomes [<|endoftext|>],
                                    # and truncate_prompt keeps only the last tokens of a long one
    sequences: list[list[int]]  # the new tokens of each returned sequence, prompt excluded
    texts: list[str] = field(default_factory=list)  # their text (without end-of-text, cut before a stop string)
    scores: list[float] = field(default_factory=list)  # see run.Hypothesis.score
    finish_reasons: list[str] = field(default_factory=list)  # "eos", "stop" or "length"
    prompt_index: list[int] = field(default_factory=list)  # which prompt each sequence continues
    steps: list[list[Step]] = field(default_factory=list)  # the per-step trace of each sequence
    chain: list[str] = field(default_factory=list)  # what the chain starts from if not the model, its links in order
    stats: dict = field(default_factory=dict)  # strategy-specific figures (speculative: acceptance rate)
    strategy: str = ""  # the strategy that produced it
    prompt_texts: list[str] = field(default_factory=list)  # each prompt's text
    seed: int | None = None  # the seed the draws came from (drawn afresh when none was given): pass it to repeat them
    beam_events: list = field(default_factory=list)  # beam search: every candidate it weighed (strategies/beam.py)

    def __repr__(self) -> str:
        """A few lines: the strategy and chain, then each prompt and its texts with their token counts."""
        lines = [f"GenerationOutput({self.strategy or 'generate'}: {plural(len(self.sequences), 'sequence')} for "
                 f"{plural(len(self.prompt_tokens), 'prompt')}; chain: {' -> '.join(self.chain) or 'none'}"]
        for i, prompt in enumerate(self.prompt_tokens[:REPR_ROWS]):
            lines.append(f"  prompt {i} ({plural(len(prompt), 'token')}): {short(self.prompt_texts[i])}")
            for j in [j for j, p in enumerate(self.prompt_index) if p == i][:REPR_ROWS]:
                lines.append(f"    #{j} ({plural(len(self.sequences[j]), 'token')}, {self.finish_reasons[j]}, "
                             f"score {self.scores[j]:.3f}): {short(self.texts[j])}")
        if len(self.prompt_tokens) > REPR_ROWS or len(self.sequences) > REPR_ROWS * len(self.prompt_tokens):
            lines.append("  ... (see .texts and .sequences for all)")
        return "\n".join(lines) + ")"


def peak_memory(model: GPT2, prompts: list[list[int]], opts: GenerationOptions, trace_top: int) -> Footprint:
    """What generate(model, prompts, **opts) holds at its peak, as its strategy's record says (memory.py)."""
    return STRATEGIES[opts.strategy].footprint(opts, model.config, len(prompts), max(map(len, prompts)), trace_top)


def check_call(trace_top, truncate_prompt, on_token):
    """The arguments of generate() that are not generation options."""
    if not isinstance(trace_top, int) or isinstance(trace_top, bool) or trace_top < 0:
        raise OptionError("{o} must be a whole number >= 0, got {value}.", o=TRACE_TOP, value=repr(trace_top))
    if not isinstance(truncate_prompt, bool):
        raise OptionError("{o} must be true or false, got {value}.", o=replace(TRUNCATE_PROMPT, value=UNSET),
                          value=repr(truncate_prompt))
    if on_token is not None and not callable(on_token):
        raise ValueError(f"on_token must be a function (row, token_id) -> None, got {on_token!r}.")


def resolve_draft(opts: GenerationOptions) -> GenerationOptions:
    """The options with speculative decoding's draft_model loaded, if it was given as a name or a path."""
    if opts.draft_model is None or isinstance(opts.draft_model, GPT2):
        return opts
    return replace(opts, draft_model=load(opts.draft_model))


def prepare_run(model: GPT2, prompts: list[list[int]], opts: GenerationOptions, given: dict, tokenizer: Tokenizer,
                trace_top: int) -> Run:
    """Step 1: the call's peak memory checked, the left-padded batch (sample's num_return_sequences as copies of
    each prompt), and the chain built for its rows, with the run's one seeded generator."""
    record = STRATEGIES[opts.strategy]
    if record.samples(opts) and opts.seed is None:  # a seed of its own, reported, so that every run can be repeated
        opts = replace(opts, seed=int(np.random.SeedSequence().entropy % 2**32))
    eos = model.config.eos_token_id if opts.eos_token_id is None else opts.eos_token_id
    pad = eos if eos < model.config.vocab_size else 0
    sampling = record.samples(opts)
    n = opts.num_return_sequences if Trait.CHOOSES in record.does else 1  # beams return several themselves
    check_fits(peak_memory(model, prompts, opts, trace_top), f"this {opts.strategy} call")
    rows = [p for p in prompts for _ in range(n)]
    ids, mask = left_pad(rows, pad)
    chain_options = opts.chain_options()
    if sampling and Trait.KEEPS_BEAMS in record.does and opts.num_beams > 1 and "min_tokens_to_keep" not in given:
        chain_options["min_tokens_to_keep"] = 2  # as transformers: every beam keeps one continuation besides eos
    rng = np.random.default_rng(opts.seed)  # every random draw of the run (tokens, XTC): a seed reproduces the text
    pad_lengths = (mask == 0).sum(axis=1)  # [B] the penalties skip each row's padding

    def chain_for_copies(copies: int):
        return build_chain(sampling=sampling, prompt_length=ids.shape[1], eos_token_id=eos,
                           vocab_size=model.config.vocab_size, pad_lengths=np.repeat(pad_lengths, copies),
                           tokenizer=tokenizer, rng=rng, pad_token_id=pad, **chain_options)

    return Run(model=model, ids=ids, mask=mask, max_new_tokens=opts.max_new_tokens, pad_token_id=pad, options=opts,
               chain=chain_for_copies(1), eos_token_id=eos, rng=rng, sampling=sampling, trace_top=trace_top,
               chain_for_copies=chain_for_copies, tokenizer=tokenizer, draft=opts.draft_model,
               stop=StopStrings(opts.stop, tokenizer, len(rows)) if opts.stop else None)


def pack_output(run: Run, outcome: Outcome, prompts: list[list[int]], tokenizer: Tokenizer) -> GenerationOutput:
    """Step 3: every returned sequence, with its text (end-of-text left out, cut before a stop string)."""
    n = run.ids.shape[0] // len(prompts)  # rows per prompt in the batch
    shown = [tokenizer.decode(t for t in prompt if t < tokenizer.n_vocab) for prompt in prompts]
    out = GenerationOutput(prompt_tokens=prompts, sequences=[], stats=outcome.stats, strategy=run.options.strategy,
                           chain=[d for d in [outcome.scores_from, *run.chain.describe()] if d], prompt_texts=shown,
                           beam_events=outcome.beam_events, seed=run.options.seed)
    for row, hyps in enumerate(outcome.hypotheses):
        for hyp in hyps:
            text = tokenizer.decode(t for t in hyp.tokens if t != run.eos_token_id and t < tokenizer.n_vocab)
            out.sequences.append(hyp.tokens)
            out.texts.append(run.stop.cut(text) if run.stop else text)
            out.scores.append(hyp.score)
            out.finish_reasons.append(hyp.finish_reason)
            out.prompt_index.append(row // n)
            out.steps.append(hyp.steps)
    return out


def start(model: GPT2, prompt_ids, strategy: str | None, attention_mask, trace_top: int, tokenizer: Tokenizer | None,
          truncate_prompt: bool, on_token, options: dict):
    """Steps 1 and 2 begun: the checked call, its Run, and the strategy's loop, not yet stepped."""
    opts = resolve_draft(build_options(strategy, **options))
    check_call(trace_top, truncate_prompt, on_token)
    eos = model.config.eos_token_id if opts.eos_token_id is None else opts.eos_token_id
    prompts = as_prompt_batch(unpad(prompt_ids, attention_mask) if attention_mask is not None else prompt_ids,
                              eos if eos < model.config.vocab_size else 0)
    prompts = fit_context(prompts, model.config.n_positions, model.config.vocab_size, opts.max_new_tokens,
                          truncate_prompt)
    tokenizer = tokenizer or Tokenizer()
    run = prepare_run(model, prompts, opts, options, tokenizer, trace_top)
    return prompts, tokenizer, run, STRATEGIES[opts.strategy].loop(run)


class LiveRun:
    """A generate() call that pauses after every decoding step and goes on when asked.

    advance(n) takes up to n more steps and returns the (row, Step) pairs they chose; steps[row] holds every
    step of a row so far; the run ends when its strategy returns, and output() packs what it returned, as
    generate() does. Between steps it holds the KV cache, the chain's state and the seeded generator, so
    stepping one n times gives generate()'s n tokens. generate() drains one; the explorer keeps one per
    branch. forced {step: token} (greedy and sample) puts a token in place of the first row's choice at
    that step, the draw still taken (core/chain.py).
    """

    def __init__(self, model: GPT2, prompt_ids, strategy: str | None = None, *, attention_mask=None,
                 trace_top: int = 10, tokenizer: Tokenizer | None = None, truncate_prompt: bool = False,
                 forced: dict[int, int] | None = None, on_token: Callable[[int, int], None] | None = None, **options):
        self.prompts, self.tokenizer, self.run, self.loop = start(model, prompt_ids, strategy, attention_mask,
                                                                  trace_top, tokenizer, truncate_prompt, on_token,
                                                                  options)
        self.run.forced = dict(forced or {})
        self.on_token = on_token
        self.steps: list[list[Step]] = [[] for _ in range(self.run.ids.shape[0])]
        self.outcome: Outcome | None = None  # what the strategy returned, once it has ended

    @property
    def ended(self) -> bool:
        return self.outcome is not None

    def advance(self, n: int = 1) -> list[tuple[int, Step]]:
        """Up to n more decoding steps (fewer if the run ends): the (row, Step) pairs they chose, in order."""
        chosen = []
        for _ in range(n):
            try:
                emitted = next(self.loop)
            except StopIteration as end:
                self.outcome = end.value
                break
            for row, step in emitted:
                self.steps[row].append(step)
                if self.on_token is not None:
                    self.on_token(row, step.token)
            chosen += emitted
        return chosen

    def __iter__(self) -> Iterator[tuple[int, Step]]:
        """The (row, Step) pairs of the steps still to come, one step at a time."""
        while not self.ended:
            yield from self.advance()

    def output(self) -> GenerationOutput:
        """Every returned sequence, with its text, score and trace: the run taken to its end first."""
        while not self.ended:
            self.advance(self.run.max_new_tokens + 1)
        return pack_output(self.run, self.outcome, self.prompts, self.tokenizer)


def generate(model: GPT2, prompt_ids, strategy: str | None = None, *, attention_mask=None,
             on_token: Callable[[int, int], None] | None = None, trace_top: int = 10,
             tokenizer: Tokenizer | None = None, truncate_prompt: bool = False, **options) -> GenerationOutput:
    """Continue each prompt by the named strategy.

    prompt_ids: one prompt [T] or a batch of prompts (padded on the left here).
    attention_mask: for a batch prompt_ids [B, T] that is already padded: 1 at real tokens, 0 at padding.
    strategy: greedy, sample, beam, beam-sample, diverse-beam, contrastive or speculative; by default greedy, or
      sample when an option only sampling uses is given (temperature, top_p, seed, ...).
    options: transformers' GenerationConfig names (max_new_tokens, temperature, top_k, top_p, num_beams,
      ...) plus frequency_penalty, presence_penalty, logit_bias, stop, draft_model; see strategies/options.py.
    on_token(row, token_id) is called as each token is chosen (the strategies that stream), for streaming.
    trace_top: how many candidates each traced step keeps.
    truncate_prompt: a prompt too long for the context keeps only its last n_positions - max_new_tokens
      tokens; without it such a prompt is refused.

    Bad input (options, ids outside the vocabulary, a prompt too long) raises ValueError before any
    token is generated; processors that leave no token to choose raise ValueError naming the step.
    """
    return LiveRun(model, prompt_ids, strategy, attention_mask=attention_mask, on_token=on_token, trace_top=trace_top,
                   tokenizer=tokenizer, truncate_prompt=truncate_prompt, **options).output()


def stream(model: GPT2, prompt_ids, strategy: str | None = None, *, attention_mask=None, trace_top: int = 10,
           tokenizer: Tokenizer | None = None, truncate_prompt: bool = False,
           **options) -> Iterator[tuple[int, Step]]:
    """generate()'s tokens as they are chosen: (row, Step) for each, step after step, for the strategies that
    choose one token per row per step (greedy, sample, contrastive, speculative). The loop pauses between
    steps, holding its cache and its seeded generator: stop iterating, and no more is computed. Bad input is
    refused at the call, before the first step, as generate() refuses it."""
    if strategy in STRATEGIES and Trait.STREAMS not in STRATEGIES[strategy].does:  # (None: greedy or sample)
        raise ValueError(f"strategy {strategy!r} settles its sequences only when its search ends, so it cannot be "
                         f"streamed; call generate() for it, or stream one of: {', '.join(doing(Trait.STREAMS))}.")
    live = LiveRun(model, prompt_ids, strategy, attention_mask=attention_mask, trace_top=trace_top,
                   tokenizer=tokenizer, truncate_prompt=truncate_prompt, **options)
    return iter(live)
