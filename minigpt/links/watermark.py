"""The watermark of Kirchenbauer et al. 2023 ("A Watermark for Large Language Models", ICML; "On the Reliability of
Watermarks for Large Language Models", 2024, for selfhash), exactly as transformers' WatermarkLogitsProcessor draws
it, so that a text marked by either is found by the other's detector.

    seed       lefthash: key * the previous token; selfhash: the least of key * (T[c] + 1) * (T[last] + 1) over
               the last context_width tokens c, T a fixed permutation of 1,000,003 numbers drawn from the key
    green      the first int(gamma V) numbers of a permutation of 0 .. V-1 drawn from that seed
    mark       x_j + bias for every green token j: the text leans towards green tokens, a few at a time

Both draws are torch's: its CPU generator (the Mersenne Twister, MT19937, seeded with the seed's low 32 bits) and
its randperm (a Fisher-Yates shuffle, position i swapped with i + r_i mod (n - i), r_i the generator's i-th 32-bit
output). NumPy's legacy RandomState is the same Mersenne Twister under the same seeding, so its raw outputs are
torch's; the shuffle is replayed here, only as far as the green list needs.

What this module is not: detecting a watermark (inspection/watermark.py scores a text with these green lists) or
the chain's order (chain.py puts the watermark after every other link but renormalisation, as transformers does).
"""

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..core.link import Link, Option, reads

TABLE_SIZE = 1_000_003  # transformers' table for selfhash: a permutation of this many numbers
SELFHASH_CANDIDATES = 40  # selfhash tries the 40 most probable tokens as their own green list's seed
SCHEMES = ("lefthash", "selfhash")
END = "the chain's end"


def as_scheme(option: Option, value):
    if value not in SCHEMES:
        raise option.refusal(value, option.valid)
    return value


WATERMARK = Option("watermark", False, "watermark the text (Kirchenbauer et al. 2023): green tokens, drawn from the "
                   "previous token and a key, gain a bias; minigpt detect-watermark finds them", END, kind=bool)
WATERMARK_BIAS = Option("watermark_bias", 2.0, "watermark: what a green token's logit gains", END, low=0, high=100,
                        ends="(]", metavar="X")
WATERMARK_GREENLIST_RATIO = Option("watermark_greenlist_ratio", 0.25, "watermark: the share of the vocabulary that "
                                   "is green at each step (gamma)", END, low=0, high=1, ends="()", metavar="G")
WATERMARK_HASHING_KEY = Option("watermark_hashing_key", 15485863, "watermark: the key its green lists are drawn "
                               "from (keep yours secret)", END, kind=int, low=0, high=2**63 - 1, metavar="N")
WATERMARK_SEEDING_SCHEME = Option("watermark_seeding_scheme", "lefthash", "watermark: lefthash (seeded by the "
                                  "previous token) or selfhash (by the token itself too)", END, kind=object,
                                  valid="'lefthash' or 'selfhash'", normalise=as_scheme, parse=str,
                                  metavar="lefthash|selfhash")
WATERMARK_CONTEXT_WIDTH = Option("watermark_context_width", 1, "watermark: how many previous tokens seed selfhash's "
                                 "green list", END, kind=int, low=1, high=64, metavar="N")


def mt19937_outputs(seed: int, n: int) -> list[int]:
    """The first n 32-bit outputs of torch's CPU generator after manual_seed(seed): the Mersenne Twister seeded
    with seed's low 32 bits, which NumPy's legacy RandomState is too."""
    return np.random.RandomState(seed & 0xFFFFFFFF)._bit_generator.random_raw(n).tolist()


@lru_cache(maxsize=1024)  # a green list of GPT-2's vocabulary is 100 kB: at most 100 MB kept
def randperm_prefix(seed: int, n: int, k: int) -> np.ndarray:
    """The first k numbers of torch.randperm(n) after manual_seed(seed), read-only [k] int64: its shuffle swaps
    position i with i + r_i mod (n - i), so the first k positions are final after k swaps (the positions moved
    beyond them are kept in a sparse map)."""
    moved, out = {}, []  # position -> the number now there, where it is not the position itself
    for i, r in enumerate(mt19937_outputs(seed, k)):
        j = i + r % (n - i)
        out.append(moved.get(j, j))
        moved[j] = moved.get(i, i)
    prefix = np.array(out, dtype=np.int64)
    prefix.flags.writeable = False
    return prefix


@dataclass(frozen=True)
class GreenLists:
    """The green lists of one watermark setting, for a vocabulary of vocab_size tokens."""
    vocab_size: int
    ratio: float = WATERMARK_GREENLIST_RATIO.default
    key: int = WATERMARK_HASHING_KEY.default
    scheme: str = WATERMARK_SEEDING_SCHEME.default
    width: int = WATERMARK_CONTEXT_WIDTH.default

    @property
    def size(self) -> int:
        return int(self.vocab_size * self.ratio)  # transformers' greenlist_size

    def seed(self, context) -> int:
        """The seed of the green list that follows `context` (ids, the last `width` of which count)."""
        context = [int(t) for t in context[-self.width :]]
        if self.scheme == "lefthash":
            seed = self.key * context[-1]
        else:  # torch's int64 products wrap around; the least is the seed
            table = randperm_prefix(self.key, TABLE_SIZE, max(self.vocab_size, max(context) % TABLE_SIZE + 1))
            a = table[[t % TABLE_SIZE for t in context]] + 1  # [width] int64
            with np.errstate(over="ignore"):
                seed = int((np.int64(self.key) * a * (table[context[-1] % TABLE_SIZE] + 1)).min())
        return seed % (2**64 - 1)

    def green(self, context) -> np.ndarray:
        """The green token ids after `context` [size], in the order the permutation gives them."""
        return randperm_prefix(self.seed(context), self.vocab_size, self.size)

    def selfhash_greens(self, context, scores) -> list[int]:
        """selfhash: each of the 40 most probable tokens (by scores [V], as torch sorts them) that is green in the
        list it seeds itself."""
        order = np.argsort(-scores, kind="stable")[:SELFHASH_CANDIDATES]
        return [int(t) for t in order if (self.green(list(context) + [int(t)]) == t).any()]


@dataclass(repr=False)
class Watermark(Link):
    """x_j + bias for each green token j of each row (Kirchenbauer et al. 2023): with lefthash the green list is
    drawn from the previous token; with selfhash, of the 40 most probable tokens those green in the list each
    seeds itself. transformers.WatermarkLogitsProcessor (its WatermarkingConfig), the same seeds and permutations;
    a row shorter than context_width is left alone, as transformers does. The green share of a marked text is well
    above gamma, which inspection/watermark.py measures."""
    name = "watermark"
    on: bool = reads(WATERMARK)
    bias: float = reads(WATERMARK_BIAS, default=WATERMARK_BIAS.default)
    greenlist_ratio: float = reads(WATERMARK_GREENLIST_RATIO, default=WATERMARK_GREENLIST_RATIO.default)
    hashing_key: int = reads(WATERMARK_HASHING_KEY, default=WATERMARK_HASHING_KEY.default)
    seeding_scheme: str = reads(WATERMARK_SEEDING_SCHEME, default=WATERMARK_SEEDING_SCHEME.default)
    context_width: int = reads(WATERMARK_CONTEXT_WIDTH, default=WATERMARK_CONTEXT_WIDTH.default)

    def green_lists(self, vocab_size: int) -> GreenLists:
        return GreenLists(vocab_size, self.greenlist_ratio, self.hashing_key, self.seeding_scheme, self.context_width)

    def __call__(self, logits, ids):
        out = logits.copy()
        if ids.shape[1] < self.context_width:
            return out
        lists = self.green_lists(logits.shape[-1])
        for row in range(logits.shape[0]):
            if self.seeding_scheme == "selfhash":
                green = lists.selfhash_greens(ids[row], logits[row])
            else:
                green = list(lists.green(ids[row]))
            out[row, green] = logits[row, green] + np.float32(self.bias)
        return out
