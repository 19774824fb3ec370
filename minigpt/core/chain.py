"""The sampler chain: links applied in a visible order, then the chooser that picks the token.

    scores -> penalties and bans (every strategy) -> warpers (sampling only) -> chooser -> token

The last link chooses, as in llama.cpp's chain: greedy argmax, or a draw with the run's seeded generator
(mirostat, in the links/ ring, is a third). A chooser may narrow the candidates first (mirostat truncates),
chooses one token per row, then `accept`s it (mirostat moves its mu): `Chain.choose` does all three and
returns what the token was chosen from, for the trace. A caller may force a row's token (the explorer's
click): it takes the chooser's place after the draw, so the seeded generator moves on as it would have, and
before `accept`, so mirostat learns from the token that is kept.

`build_chain` builds a chain from the option values of a call: each link class in the order given, kept
when its options make it act (link.Link.from_options). The classic chain below is the core's own: the
repetition penalty, then temperature, top-k, top-p and min-p, as transformers orders them; links/chain.py
gives the full order with every other link.

What this module is not: the links (links.py and the links/ ring) or a decoding loop (loop.py, strategies/).
"""

from dataclasses import dataclass, field

import numpy as np

from .link import Link
from .links import MinP, RepetitionPenalty, Temperature, TopK, TopP
from .numerics import draw, softmax


@dataclass
class ChainSetting:
    """What a chain is built for besides the options: the prompt batch and the run. A link's fields after its
    options are filled from here, by name."""
    prompt_length: int = 0  # the width of the left-padded prompts: generated tokens start here
    eos_token_id: int = 50256
    vocab_size: int | None = None  # None: skip the vocabulary check of ids given in options (ranges are checked)
    pad_lengths: list[int] | None = None  # each row's left padding, which the penalties skip
    tokenizer: object = None  # turns DRY's sequence breakers into tokens (none given: DRY runs without them)
    rng: np.random.Generator | None = None  # the run's seeded generator: XTC and the draw take from it
    rows: int = 1  # the batch rows the chain serves (mirostat keeps a state per row)
    pad_token_id: int = 0  # what a finished row is fed: the draw gives it to a row with nothing left

    @property
    def prompt_ignore_length(self) -> list[int] | None:
        """The leading ids of each row that the penalties skip: its left padding, as transformers 5.x finds it
        (the argmax of the attention mask, which is 0 for a row that is all padding: that row is not skipped)."""
        if self.pad_lengths is None:
            return None
        return [0 if pad == self.prompt_length else pad for pad in self.pad_lengths]


class Chooser:
    """The last link: narrow the candidates (by default, not at all), choose one token per row, accept it."""
    name = "chooser"

    def narrow(self, scores):
        return scores

    def choose(self, scores, rows) -> np.ndarray:
        raise NotImplementedError

    def accept(self, scores, tokens, rows) -> dict:
        """What the choice decided per row, {name: [B]}, for the trace (nothing, but for mirostat)."""
        return {}

    def describe(self) -> str:
        return ""  # the plain choice: the chain lists nothing after the processors


class Greedy(Chooser):
    """The most probable token: argmax over the processed scores (the first of equal maxima, as torch.argmax)."""
    name = "greedy"

    def choose(self, scores, rows):
        return scores.argmax(axis=-1)  # [B]


@dataclass
class Draw(Chooser):
    """A token drawn from softmax(scores) with the run's seeded generator (numerics.draw). Every row with a
    token left is drawn from, finished ones included, so that a seed gives the same text whatever the batch;
    a row with nothing left (a finished row fed padding) gets the pad token."""
    rng: np.random.Generator
    pad_token_id: int = 0
    name = "draw"

    def choose(self, scores, rows):
        probs = softmax(scores)  # [B, V]
        return np.array([draw(p, self.rng) if p.any() else self.pad_token_id for p in probs])  # [B]


@dataclass
class Choice:
    tokens: np.ndarray  # [B] one token per row
    scores: np.ndarray  # [B, V] what the tokens were chosen from: the processed scores, as the chooser narrowed them
    state: dict = field(default_factory=dict)  # {name: [B]} what the chooser decided (mirostat's mu and surprise)


class Chain:
    """Links applied one after the other, logits -> p_1 -> p_2 -> ..., then the chooser."""

    def __init__(self, processors, chooser: Chooser | None = None):
        self.processors = list(processors)
        self.chooser = chooser or Greedy()

    def __call__(self, logits, ids):
        """The processed scores [B, V] (a new array) of logits [B, V] after the tokens ids [B, t]."""
        logits = np.array(logits, dtype=np.float32)  # a copy: the caller's array is never modified
        ids = np.asarray(ids, dtype=np.int64).reshape(logits.shape[0], -1)  # [B, t]
        for processor in self.processors:
            logits = processor(logits, ids)
        return logits

    def choose(self, processed, rows=None, forced: dict[int, int] | None = None) -> Choice:
        """The chooser's token for each of `rows` (default: every row) from processed scores [B, V];
        forced {row: token} puts a token of the caller's in place of the chooser's (see the module docstring)."""
        rows = np.arange(processed.shape[0]) if rows is None else rows
        narrowed = self.chooser.narrow(processed)  # [B, V]
        tokens = self.chooser.choose(narrowed, rows)  # [B]
        for row, token in (forced or {}).items():
            tokens[row] = token
        return Choice(tokens, narrowed, self.chooser.accept(narrowed, tokens, rows))

    def describe(self) -> list[str]:
        """The processors in order, then the chooser if it is more than the plain argmax or draw."""
        return [repr(p) for p in self.processors] + [d for d in [self.chooser.describe()] if d]

    def state(self, row: int) -> dict:
        """What the processors decided for one row at their last call (XTC, dynamic temperature), by name."""
        return {name: values[row].item() for p in self.processors for name, values in getattr(p, "state", {}).items()}

    def __len__(self):
        return len(self.processors)

    def __repr__(self):
        return f"Chain({' -> '.join(self.describe()) or 'identity'})"


def acting(classes, values: dict, setting: ChainSetting) -> list[Link]:
    """The links of `classes`, in that order, that the option values make act."""
    return [link for link in (cls.from_options(values, setting) for cls in classes) if link is not None]


CLASSIC = (RepetitionPenalty,), (Temperature, TopK, TopP, MinP)  # the core's penalties, and its warpers in order
CLASSIC_OPTIONS = tuple(dict.fromkeys(option for classes in CLASSIC for cls in classes for option in cls.options))


def classic_chain(sampling: bool = False, seed: int | None = None, setting: ChainSetting | None = None,
                  **values) -> Chain:
    """The core's chain: the repetition penalty, then (sampling) temperature, top-k, top-p and min-p, and the
    draw with a generator seeded by `seed`; greedy argmax otherwise. values: the classic options by name,
    repetition_penalty=1.2, temperature=0.7, top_k=40, top_p=0.9, min_p=0.05, min_tokens_to_keep=1."""
    unknown = sorted(values.keys() - {option.name for option in CLASSIC_OPTIONS})
    if unknown:
        raise ValueError(f"the classic chain has no option {unknown[0]}; it takes "
                         f"{', '.join(o.name for o in CLASSIC_OPTIONS)}.")
    values = {option.name: option.default for option in CLASSIC_OPTIONS} | values
    setting = setting or ChainSetting()
    penalties, warpers = CLASSIC
    if not sampling:
        warping = [option.name for cls in warpers for option in cls.options if values[option.name] != option.default]
        if warping:
            raise ValueError(f"{warping[0]} reshapes the distribution a token is drawn from, so it is used only when "
                             f"sampling; pass sampling=True, or drop {warping[0]} for greedy decoding.")
        return Chain(acting(penalties, values, setting), Greedy())
    return Chain(acting(penalties + warpers, values, setting), Draw(np.random.default_rng(seed), setting.pad_token_id))
