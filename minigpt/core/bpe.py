r"""GPT-2's byte-pair encoder in plain Python: text -> token ids, the same ids as tiktoken.

GPT-2 (Radford et al. 2019) turns text into tokens in two steps.

1. Split. A regular expression cuts the text into pieces: a contraction ('s 't 're 've 'm 'll 'd),
   a run of letters, of numbers or of other symbols (each may start with one space), or a run of
   whitespace. No token crosses a piece boundary, so each piece is tokenized on its own (`split`).
2. Merge (byte-level BPE, Sennrich et al. 2016). A piece's UTF-8 bytes start as single bytes, which
   are the first 256 tokens. Then the adjacent pair whose concatenation has the lowest rank in GPT-2's
   table is merged, again and again (the leftmost pair if it occurs twice), until no adjacent pair is
   in the table. Each part left is one token, and a token's rank is its id (`byte_pair_merges`).

The table is all that is needed: ranks are in the order training learned the merges, so they replay them.
tiktoken first looks a whole piece up in the table and takes its id without merging; that shortcut is not
needed here, since all 50,256 GPT-2 tokens are rebuilt whole by the merges (tests/core/test_bpe.py checks).

What this module is not: the fast path (tokenizer.py runs tiktoken over the same table) or decoding.
"""

import base64
import functools
import itertools
import re
import unicodedata
from dataclasses import dataclass

END_OF_TEXT, END_OF_TEXT_ID = "<|endoftext|>", 50256
# Unicode's White_Space property: exactly the 25 code points that Rust's \s matches.
WHITESPACE = ("\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
              "\u2028\u2029\u202f\u205f\u3000")
# GPT-2's pattern with its classes as placeholders: {L} letters, {N} numbers, {S} whitespace
# (so \p{L} is [{L}], \s is [{S}], and the lookahead (?!\S), "not followed by a non-space", is (?![^{S}])).
PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?[{L}]+| ?[{N}]+| ?[^{S}{L}{N}]+|[{S}]+(?![^{S}])|[{S}]+"""


def read_ranks(path) -> dict[bytes, int]:
    """GPT-2's rank table from a .tiktoken file: one line per token, `base64(token bytes) rank`."""
    ranks = {}
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
    return ranks


def char_class(is_member) -> str:
    """The inside of a regex class `[...]` holding every code point c with is_member(chr(c)), as
    ranges of consecutive code points: char_class(str.isdigit) starts '0-9²-³¹-¹٠-٩'."""
    ranges, start = [], 0
    for inside, run in itertools.groupby(map(chr, range(0x110000)), key=is_member):
        end = start + sum(1 for _ in run)  # the run is code points start .. end - 1
        if inside:
            ranges.append(re.escape(chr(start)) + "-" + re.escape(chr(end - 1)))
        start = end
    return "".join(ranges)


@functools.cache
def split_pattern() -> re.Pattern:
    r"""GPT-2's split pattern for Python's `re`, built once on first use. Walking all 1,114,112 code
    points takes about half a second (measured 0.42-0.52 s, Python 3.11 on a 2-core machine).

    Why the classes are spelled out: the pattern GPT-2 uses is written for Rust's regex,
        '(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    and Python's `re` has no \p{L} or \p{N}. Its near look-alikes differ: its \s also matches U+001C..U+001F
    (str.isspace, not Unicode White_Space), its \d misses numbers such as ² ½ Ⅻ (general category No and Nl),
    and its \w counts those as letters. So we list the code points ourselves: letters are general category
    L*, numbers N*, whitespace the 25 code points of White_Space.

    Unicode versions: the classes come from Python's `unicodedata` (Unicode 14.0 in Python 3.11); tiktoken
    0.14 (Rust regex-syntax 0.8.11) uses Unicode 16.0. The 9,392 letters and numbers that Unicode 15.0, 15.1
    and 16.0 assigned (Kawi, CJK Extensions H and I, Garay, Todhri, ...) are unassigned to Python 3.11, so
    here they are symbols and may split differently; no other code point differs."""
    letters = char_class(lambda c: unicodedata.category(c).startswith("L"))
    numbers = char_class(lambda c: unicodedata.category(c).startswith("N"))
    return re.compile(PATTERN.format(L=letters, N=numbers, S=re.escape(WHITESPACE)))


def split(text: str) -> list[str]:
    """GPT-2's pre-tokenizer: split("Hello world's 2024!!  ") is
    ['Hello', ' world', "'s", ' 2024', '!!', '  ']."""
    return split_pattern().findall(text)


@dataclass(frozen=True)
class Merge:
    """One BPE step: the adjacent parts `left` and `right`, at index `at` of the parts so far, become one."""
    left: bytes
    right: bytes
    rank: int  # the merged part's rank in GPT-2's table, which is also its token id
    at: int

    @property
    def merged(self) -> bytes:
        return self.left + self.right


def byte_pair_merges(data: bytes, ranks: dict[bytes, int]) -> tuple[list[bytes], list[Merge]]:
    """The tokens of one piece, and the merges that made them: start from single bytes; while some adjacent
    pair's concatenation is in `ranks`, merge the pair of lowest rank (the leftmost if it occurs twice).
    The piece " tokenizer" (␣ is the space; the new part's rank on the right):

        ␣ t o k e n i z e r          start: 10 single bytes
        ␣t o k e n i z e r           ␣t      256   the lowest rank of all adjacent pairs
        ␣t o k e n i z er            er      263
        ␣t o k en i z er             en      268
        ␣to k en i z er              ␣to     284
        ␣to k en iz er               iz      528
        ␣to ken iz er                ken    3464
        ␣to ken izer                 izer   7509
        ␣token izer                  ␣token 11241  "␣tokenizer" is not in the table: stop
        -> [11241, 7509]
    """
    parts, merges = [bytes([b]) for b in data], []
    while len(parts) > 1:
        pairs = [(ranks.get(a + b), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
        known = [(rank, i) for rank, i in pairs if rank is not None]
        if not known:
            break
        rank, i = min(known)
        merges.append(Merge(parts[i], parts[i + 1], rank, i))
        parts[i : i + 2] = [parts[i] + parts[i + 1]]
    return parts, merges


def encode(text: str, ranks: dict[bytes, int], allow_special: bool = False) -> list[int]:
    """Text -> GPT-2 token ids. "<|endoftext|>" in the text is ordinary text unless allow_special is
    True, when it becomes token 50256 and the text on either side is encoded on its own."""
    # UTF-8 cannot hold a lone surrogate (what undecodable bytes become in Python). Like tiktoken, go
    # through UTF-16: a lone surrogate becomes U+FFFD and a surrogate pair its character.
    text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    parts = text.split(END_OF_TEXT) if allow_special else [text]
    ids, cache = [], {}  # cache: piece -> its ids; words repeat, so most pieces are merged only once
    for n, part in enumerate(parts):
        if n > 0:
            ids.append(END_OF_TEXT_ID)
        for piece in split(part):
            if piece not in cache:
                cache[piece] = [ranks[t] for t in byte_pair_merges(piece.encode("utf-8"), ranks)[0]]
            ids.extend(cache[piece])
    return ids
