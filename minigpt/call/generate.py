"""generate(): prompts in, new tokens out, by any decoding strategy, in three steps.

    1. prepare   options checked, prompts checked and left-padded, the chain built    (prepare_run)
    2. run       the strategy's own loop over the KV cache                            (STRATEGIES[name].run)
    3. pack      each returned sequence with its text, score and trace                (pack_output)

The per-step loop lives in the strategies (sampling/tokenwise.py for greedy and sampling, beam.py,
contrastive.py, speculative.py); what every step shares is in sampling/run.py (trace, stop strings)
and sampling/chain.py (the processors and the chooser).

What this module is not: the strategies, the options' declarations (sampling/options.py) or the model.
"""

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import numpy as np

from ..core.checks import plural
from ..core.config import GPTConfig
from ..views.html import generation_html
from .memory import Footprint, check_fits
from ..core.model import GPT2
from .prompts import as_prompt_batch, fit_context, left_pad, unpad
from ..strategies import beam, contrastive, speculative, tokenwise
from ..links.chain import build_chain
from ..strategies.options import GenerationOptions, OptionError
from ..strategies.run import Outcome, Run, Step, StopStrings
from ..core.tokenizer import Tokenizer


@dataclass(frozen=True)
class Strategy:
    run: Callable[[Run], Outcome]  # the decoding loop
    # (options, config, prompts, prompt length, trace_top) -> what a call holds at its peak (memory.py)
    peak_memory: Callable[[GenerationOptions, GPTConfig, int, int, int], Footprint]
    help: str  # one line, for --help


STRATEGIES = {
    "greedy": Strategy(tokenwise.token_by_token, tokenwise.peak_memory, "the most probable token at every step"),
    "sample": Strategy(tokenwise.token_by_token, tokenwise.peak_memory, "draw each token from the distribution"),
    "beam": Strategy(beam.beam_search, beam.peak_memory, "keep the num_beams most probable sequences"),
    "beam-sample": Strategy(beam.beam_search, beam.peak_memory, "beam search that draws its candidates"),
    "diverse-beam": Strategy(beam.beam_search, beam.peak_memory, "beam groups kept from choosing the same tokens"),
    "contrastive": Strategy(contrastive.contrastive_search, contrastive.peak_memory,
                            "probable tokens unlike what was already said"),
    "speculative": Strategy(speculative.speculative_decoding, speculative.peak_memory,
                            "a small draft model guesses, the model checks: the model's own text, faster"),
}


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

    def __repr__(self) -> str:
        """A few lines: the strategy and chain, then each prompt and its texts with their token counts."""
        tok = default_tokenizer()
        lines = [f"GenerationOutput({self.strategy or 'generate'}: {plural(len(self.sequences), 'sequence')} for "
                 f"{plural(len(self.prompt_tokens), 'prompt')}; chain: {' -> '.join(self.chain) or 'none'}"]
        for i, prompt in enumerate(self.prompt_tokens[:REPR_ROWS]):
            text = tok.decode(t for t in prompt if t < tok.n_vocab)
            lines.append(f"  prompt {i} ({plural(len(prompt), 'token')}): {short(text)}")
            for j in [j for j, p in enumerate(self.prompt_index) if p == i][:REPR_ROWS]:
                lines.append(f"    #{j} ({plural(len(self.sequences[j]), 'token')}, {self.finish_reasons[j]}, "
                             f"score {self.scores[j]:.3f}): {short(self.texts[j])}")
        if len(self.prompt_tokens) > REPR_ROWS or len(self.sequences) > REPR_ROWS * len(self.prompt_tokens):
            lines.append("  ... (see .texts and .sequences for all)")
        return "\n".join(lines) + ")"


    def _repr_html_(self) -> str:
        tok = default_tokenizer()
        return generation_html(self, lambda ids: tok.decode(t for t in ids if t < tok.n_vocab), REPR_ROWS ** 2)


REPR_ROWS = 4  # the prompts, and the sequences of each, a repr shows
REPR_TEXT = 80  # the characters of a text a repr shows


def short(text: str, width: int = REPR_TEXT) -> str:
    """A text as a repr shows it: quoted, escaped, cut to `width` characters with an ellipsis."""
    return repr(text) if len(text) <= width else repr(text[: width - 1]) + "…"


def peak_memory(model: GPT2, prompts: list[list[int]], opts: GenerationOptions, trace_top: int) -> Footprint:
    """What generate(model, prompts, **opts) holds at its peak, as its strategy declares it."""
    return STRATEGIES[opts.strategy].peak_memory(opts, model.config, len(prompts), max(map(len, prompts)), trace_top)


@lru_cache(maxsize=1)
def default_tokenizer() -> Tokenizer:
    return Tokenizer()


def check_call(strategy: str, trace_top, truncate_prompt, on_token, record):
    """The arguments of generate() that are not generation options."""
    if not isinstance(trace_top, int) or isinstance(trace_top, bool) or trace_top < 0:
        raise OptionError(f"trace_top must be a whole number >= 0, got {trace_top!r}.")
    if not isinstance(truncate_prompt, bool):
        raise OptionError(f"truncate_prompt must be true or false, got {truncate_prompt!r}.")
    if on_token is not None and not callable(on_token):
        raise OptionError(f"on_token must be a function (row, token_id) -> None, got {on_token!r}.")
    if record is not None and (not isinstance(record, list) or strategy not in ("beam", "beam-sample", "diverse-beam")):
        raise OptionError(f"record must be a list, and only the beam strategies (beam, beam-sample, diverse-beam) fill "
                          f"it; got {type(record).__name__} with strategy {strategy!r}.")


def prepare_run(model: GPT2, prompts: list[list[int]], opts: GenerationOptions, given: dict, tokenizer: Tokenizer,
                **run_arguments) -> Run:
    """Step 1: the call's peak memory checked, the left-padded batch (sample's num_return_sequences as copies of
    each prompt), and the chain built for its rows, with the run's one seeded generator."""
    eos = model.config.eos_token_id if opts.eos_token_id is None else opts.eos_token_id
    pad = eos if eos < model.config.vocab_size else 0
    n = opts.num_return_sequences if opts.strategy == "sample" else 1  # beams return several per prompt themselves
    check_fits(peak_memory(model, prompts, opts, run_arguments["trace_top"]), f"this {opts.strategy} call")
    rows = [p for p in prompts for _ in range(n)]
    ids, mask = left_pad(rows, pad)
    chain_options = opts.chain_options()
    if opts.strategy == "beam-sample" and opts.num_beams > 1 and "min_tokens_to_keep" not in given:
        chain_options["min_tokens_to_keep"] = 2  # as transformers: every beam keeps one continuation besides eos
    rng = np.random.default_rng(opts.seed)  # every random draw of the run (tokens, XTC): a seed reproduces the text
    pad_lengths = (mask == 0).sum(axis=1)  # [B] the penalties skip each row's padding

    def chain_for_copies(copies: int):
        return build_chain(sampling=opts.sampling, prompt_length=ids.shape[1], eos_token_id=eos,
                           vocab_size=model.config.vocab_size, pad_lengths=np.repeat(pad_lengths, copies),
                           tokenizer=tokenizer, rng=rng, pad_token_id=pad, **chain_options)

    return Run(model=model, ids=ids, mask=mask, options=opts, chain=chain_for_copies(1), eos_token_id=eos,
               pad_token_id=pad, rng=rng, chain_for_copies=chain_for_copies, tokenizer=tokenizer,
               stop=StopStrings(opts.stop, tokenizer, len(rows)) if opts.stop else None, **run_arguments)


def pack_output(run: Run, outcome: Outcome, prompts: list[list[int]], tokenizer: Tokenizer) -> GenerationOutput:
    """Step 3: every returned sequence, with its text (end-of-text left out, cut before a stop string)."""
    n = run.ids.shape[0] // len(prompts)  # rows per prompt in the batch
    out = GenerationOutput(prompt_tokens=prompts, sequences=[], stats=outcome.stats, strategy=run.options.strategy,
                           chain=[d for d in [outcome.scores_from, *run.chain.describe()] if d])
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


def generate(model: GPT2, prompt_ids, strategy: str = "greedy", *, attention_mask=None,
             on_token: Callable[[int, int], None] | None = None, trace_top: int = 10,
             tokenizer: Tokenizer | None = None,
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
    check_call(strategy, trace_top, truncate_prompt, on_token, record)
    eos = model.config.eos_token_id if opts.eos_token_id is None else opts.eos_token_id
    prompts = as_prompt_batch(unpad(prompt_ids, attention_mask) if attention_mask is not None else prompt_ids,
                              eos if eos < model.config.vocab_size else 0)
    prompts = fit_context(prompts, model.config.n_positions, model.config.vocab_size, opts.max_new_tokens,
                          truncate_prompt)
    tokenizer = tokenizer or default_tokenizer()
    run = prepare_run(model, prompts, opts, options, tokenizer, trace_top=trace_top, on_token=on_token, record=record)
    outcome = STRATEGIES[strategy].run(run)
    return pack_output(run, outcome, prompts, tokenizer)
