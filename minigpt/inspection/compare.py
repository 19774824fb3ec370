"""One prompt, many decoding strategies, side by side, with the two numbers that show their trade-off.

    prompt -> generate() once per run (a strategy and its options) -> for each output:
        log p(text)  = sum_t log p(y_t | prompt, y_<t)       under the model's raw distribution
        distinct-n   = |unique n-grams of y| / |n-grams of y|  for n = 1, 2, 3

The lesson of Patrick von Platen's study "How to generate text" (Hugging Face, 2020): greedy and beam
search find likely text that repeats itself (high log p, low distinct-n); sampling, narrowed by
top-k, top-p or a temperature, trades likelihood for variety. log p is read from the raw
log-probabilities the trace keeps for every chosen token (Step.logprob), before any processor, so
every strategy is scored by the same model. distinct-n follows Li et al. 2016 ("A Diversity-Promoting
Objective Function for Neural Conversation Models"), here divided by the number of n-grams rather
than of tokens, so that a text with no repeated n-gram scores exactly 1.

A run is written as a strategy followed by options under transformers' names, "sample top_p=0.9
temperature=0.8" (parse_run), or as the name of one of the classic runs in CLASSIC.

What this module is not: the strategies (strategies/) and generate() (call/generate.py); it only
runs them and measures their outputs. It prints nothing.
"""

from dataclasses import dataclass, field

import numpy as np

from ..call.generate import generate, peak_memory
from ..call.memory import check_fits
from ..call.strategies import ACCEPTS, STRATEGIES, build_options
from ..core.loop import MAX_NEW_TOKENS
from ..core.model import GPT2
from ..core.tokenizer import Tokenizer


@dataclass(frozen=True)
class RunSpec:
    """What to run: a strategy with its options (transformers' names), under a label (a classic run's name;
    "" for a run known by its description alone)."""
    strategy: str
    options: dict = field(default_factory=dict)
    label: str = ""

    def describe(self) -> str:
        """ "sample top_p=0.92": the strategy and its options, as parse_run reads them."""
        return " ".join([self.strategy, *(f"{k}={v}" for k, v in self.options.items())])

    @property
    def name(self) -> str:
        """What the run is called in tables and JSON: its label, or else its description."""
        return self.label or self.describe()


# The study's five runs on "I have a dream". Beam search blocks repeated bigrams, as the study does
# after showing that plain beam search loops.
CLASSIC = {
    "greedy": RunSpec("greedy", {}, "greedy"),
    "beam": RunSpec("beam", {"num_beams": 5, "no_repeat_ngram_size": 2}, "beam"),
    "top-k": RunSpec("sample", {"top_k": 50}, "top-k"),
    "top-p": RunSpec("sample", {"top_p": 0.92}, "top-p"),  # sample has no top-k unless given one
    "temperature": RunSpec("sample", {"temperature": 0.7}, "temperature"),
}


@dataclass
class Comparison:
    """One run's output and its measures."""
    spec: RunSpec
    options: dict  # what generate() was given: the run's options, max_new_tokens and the seed
    tokens: list[int]  # the new tokens, end-of-text included if it was chosen
    text: str
    logprob: float  # sum of log p(token | everything before it) over `tokens`, raw model distribution
    distinct: dict[int, float | None]  # n -> distinct-n of the tokens before end-of-text (None: fewer than n)
    finish_reason: str  # "eos", "stop" or "length"

    @property
    def mean_logprob(self) -> float | None:
        """log p per generated token; None when nothing was generated."""
        return self.logprob / len(self.tokens) if self.tokens else None


def distinct_n(tokens, n: int) -> float | None:
    """Distinct-n: the number of unique n-grams in `tokens` over the number of n-grams, len - n + 1.
    1.0 when no n-gram repeats; None when there are fewer than n tokens (no n-gram at all)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a whole number >= 1, got {n!r}.")
    tokens = list(tokens)
    ngrams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(set(ngrams)) / len(ngrams) if ngrams else None


DISTINCT_N = (1, 2, 3)  # the n of distinct-n a comparison reports


def measure(tokens: list[int], logprobs, eos: int, ns=DISTINCT_N) -> tuple[float, dict[int, float | None]]:
    """A run's two measures: log p of its tokens under the model (the sum of their log-probabilities), and the
    distinct-n of the tokens before end-of-text, for each n of ns."""
    text_tokens = [t for t in tokens if t != eos]
    return float(sum(logprobs)), {n: distinct_n(text_tokens, n) for n in ns}


def parse_value(text: str):
    """An option's value as written in a run: true/false, a whole number, a real number, a comma-separated
    list of those, or else the text itself (early_stopping=never, draft_model=distilgpt2)."""
    if "," in text:
        return [parse_value(part) for part in text.split(",") if part]
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_run(text: str) -> RunSpec:
    """A run from its description: the name of a classic run ("top-p"), or a strategy followed by
    NAME=VALUE options ("sample top_p=0.9 temperature=0.8"; top-p=0.9 is read as top_p=0.9)."""
    words = text.split() if isinstance(text, str) else []
    if not words:
        raise ValueError(f"a run must name a strategy or a classic run, such as 'sample top_p=0.9 temperature=0.8' "
                         f"or 'top-p'; got {text!r}.")
    if len(words) == 1 and words[0] in CLASSIC:
        return CLASSIC[words[0]]
    strategy, options = words[0], {}
    if strategy not in STRATEGIES:
        raise ValueError(f"a run starts with a strategy ({', '.join(STRATEGIES)}) or is one of the classic runs "
                         f"({', '.join(CLASSIC)}); got {strategy!r} in {text!r}.")
    for word in words[1:]:
        name, equals, value = word.partition("=")
        if not equals or not name or not value:
            raise ValueError(f"each option of a run is written NAME=VALUE with no spaces, such as top_p=0.9; "
                             f"got {word!r} in {text!r}.")
        options[name.replace("-", "_")] = parse_value(value)
    return RunSpec(strategy, options)


def run_options(spec: RunSpec, max_new_tokens: int, seed: int | None) -> dict:
    """A run's options for generate(): its own, over the comparison's max_new_tokens and (for the
    strategies that draw at random) seed."""
    shared = {"max_new_tokens": max_new_tokens}
    if seed is not None and "seed" in ACCEPTS.get(spec.strategy, ()):
        shared["seed"] = seed
    return shared | spec.options


def compare(model: GPT2, prompt_ids, runs=None, *, max_new_tokens: int = MAX_NEW_TOKENS.default, seed: int | None = 0,
            tokenizer: Tokenizer | None = None, ns=DISTINCT_N) -> list[Comparison]:
    """Continue one prompt by each run (default: the CLASSIC five), and measure each output.

    prompt_ids: one prompt's token ids. runs: RunSpec objects or descriptions for parse_run. Every run's
    options are checked before anything is generated, so a bad one fails fast. For beam strategies the
    best returned sequence is measured. ns: the n of distinct-n.
    """
    runs = list(CLASSIC.values()) if runs is None else [r if isinstance(r, RunSpec) else parse_run(r) for r in runs]
    if not runs:
        raise ValueError("runs is empty; give at least one run, such as 'greedy', or None for the classic five.")
    if len(prompt_ids) and isinstance(prompt_ids[0], (list, tuple, np.ndarray)):
        raise ValueError("compare takes one prompt (a list of token ids), not a batch; compare each prompt on its own.")
    for n in ns:
        distinct_n([], n)  # refuses a bad n now, not after generating
    options, checked = [run_options(r, max_new_tokens, seed) for r in runs], []
    for spec, opts in zip(runs, options):
        try:
            checked.append(build_options(spec.strategy, **opts))
            # one run at a time: the peak is the largest run's, refused here before the first run starts
            check_fits(peak_memory(model, [list(prompt_ids) or [0]], checked[-1], 0), f"the {spec.strategy} run")
        except ValueError as e:
            raise type(e)(f"run {spec.name!r}: {e}") from None
    results = []
    for spec, opts, built in zip(runs, options, checked):
        out = generate(model, prompt_ids, spec.strategy, trace_top=0, tokenizer=tokenizer, **opts)
        tokens, steps = out.sequences[0], out.steps[0]
        eos = model.config.eos_token_id if built.eos_token_id is None else built.eos_token_id  # generate()'s rule
        logprob, distinct = measure(tokens, [step.logprob for step in steps], eos, ns)
        results.append(Comparison(spec=spec, options=opts, tokens=tokens, text=out.texts[0], logprob=logprob,
                                  distinct=distinct, finish_reason=out.finish_reasons[0]))
    return results
