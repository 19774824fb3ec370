"""Whether a text carries the watermark (Kirchenbauer et al. 2023): how many of its tokens are green, and how
unlikely that many would be in a text written without it.

    T tokens scored, G of them green, gamma the green share of the vocabulary
    z = (G - gamma T) / sqrt(T gamma (1 - gamma))       p = P(N(0, 1) > z) = erfc(z / sqrt 2) / 2

A text written without the key has each token green with probability gamma, so z stays near 0 (|z| > 4 has
p < 3e-5); a marked text leans to green tokens at every step, and z grows with its length. Exactly as
transformers' WatermarkDetector: a leading beginning-of-text token (GPT-2's <|endoftext|>) is dropped; each
token is scored by the green list of the context_width tokens before it (lefthash), or of the n-gram it ends
(selfhash); ignore_repeated_ngrams scores each distinct n-gram once. Nothing here needs the model: only the
key, the settings the text was marked with and the vocabulary's size.

What this module is not: marking a text (links/watermark.py, whose green lists this uses) or the command line
(cli/watermark.py).
"""

import math
from collections import Counter
from dataclasses import dataclass, replace

from ..core.checks import OptionError, plural
from ..core.link import Option
from ..core.tokenizer import Tokenizer
from ..links.values import as_token_ids
from ..links.watermark import (WATERMARK_CONTEXT_WIDTH, WATERMARK_GREENLIST_RATIO, WATERMARK_HASHING_KEY,
                               WATERMARK_SEEDING_SCHEME, GreenLists)

GPT2_VOCAB, GPT2_BOS = 50257, 50256
Z_THRESHOLD = 4.0  # a text scores above it: watermarked (p < 3.2e-5); transformers' detector defaults to 3


@dataclass(frozen=True)
class WatermarkScore:
    num_tokens_scored: int
    num_green_tokens: int
    z_score: float
    p_value: float  # the chance that a text without the watermark scores z or more
    greenlist_ratio: float
    z_threshold: float = Z_THRESHOLD

    @property
    def green_fraction(self) -> float:
        return self.num_green_tokens / self.num_tokens_scored

    @property
    def prediction(self) -> bool:
        """Whether the text is taken to be watermarked: z above the threshold."""
        return self.z_score > self.z_threshold

    def __repr__(self) -> str:
        verdict = "watermarked" if self.prediction else "no watermark found"
        return (f"WatermarkScore(z={self.z_score:.2f}, p={self.p_value:.3g}: {self.num_green_tokens} of "
                f"{plural(self.num_tokens_scored, 'token')} green ({self.green_fraction:.0%}, "
                f"{self.greenlist_ratio:.0%} expected): {verdict})")


def z_score(green: int, scored: int, gamma: float) -> float:
    return (green - gamma * scored) / math.sqrt(scored * gamma * (1 - gamma))


def as_keyword(option: Option) -> Option:
    """A watermark_* option as watermark_score's keyword (transformers' WatermarkingConfig's name), its flag kept:
    watermark_greenlist_ratio -> greenlist_ratio, --watermark-greenlist-ratio."""
    return replace(option, name=option.name.removeprefix("watermark_"), flag_name=option.flag)


SETTINGS = tuple(as_keyword(o) for o in (WATERMARK_GREENLIST_RATIO, WATERMARK_HASHING_KEY, WATERMARK_SEEDING_SCHEME,
                                         WATERMARK_CONTEXT_WIDTH))  # what the text was marked with; not the bias
GREENLIST_RATIO, HASHING_KEY, SEEDING_SCHEME, CONTEXT_WIDTH = SETTINGS


def watermark_score(text_or_ids, *, greenlist_ratio: float = GREENLIST_RATIO.default,
                    hashing_key: int = HASHING_KEY.default, seeding_scheme: str = SEEDING_SCHEME.default,
                    context_width: int = CONTEXT_WIDTH.default, vocab_size: int = GPT2_VOCAB,
                    ignore_repeated_ngrams: bool = False, z_threshold: float = Z_THRESHOLD, bos_token_id=GPT2_BOS,
                    tokenizer: Tokenizer | None = None) -> WatermarkScore:
    """How green a text is: a text (encoded with GPT-2's tokenizer) or its token ids, scored with the settings it
    was generated with (generate()'s watermark_* options without their prefix, as transformers' WatermarkingConfig
    names them; vocab_size: the model's). Its z-score and p-value equal transformers' WatermarkDetector's."""
    given = (greenlist_ratio, hashing_key, seeding_scheme, context_width)
    lists = GreenLists(vocab_size, *(option.check(value) for option, value in zip(SETTINGS, given)))
    ids = (tokenizer or Tokenizer()).encode(text_or_ids) if isinstance(text_or_ids, str) else as_token_ids(
        "text_or_ids", text_or_ids)
    if ids and bos_token_id is not None and ids[0] == bos_token_id:
        ids = ids[1:]
    if len(ids) <= lists.width:
        raise OptionError("the text has {has}, too few to score: each token scored needs the {first} before it "
                          "to seed its green list; give a longer text.", has=plural(len(ids), "token"),
                          first=plural(lists.width, "token"))
    selfhash = lists.scheme == "selfhash"
    n = lists.width + 1 - selfhash  # the tokens of each n-gram: its context and the token scored
    counts = Counter(tuple(ids[i : i + n]) for i in range(len(ids) - n + 1))
    green = {gram: bool((lists.green(gram if selfhash else gram[:-1]) == gram[-1]).any()) for gram in counts}
    if ignore_repeated_ngrams:
        scored, greens = len(counts), sum(green.values())
    else:
        scored, greens = sum(counts.values()), sum(c for gram, c in counts.items() if green[gram])
    z = z_score(greens, scored, lists.ratio)
    return WatermarkScore(scored, greens, z, 0.5 * math.erfc(z / math.sqrt(2)), lists.ratio, z_threshold)
