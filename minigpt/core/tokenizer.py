"""Text <-> tokens: GPT-2's byte-pair encoding, through tiktoken.

The first and last stage of the pipeline. `encode` first splits the text with GPT-2's regular
expression into word-like pieces, then merges each piece's UTF-8 bytes by BPE rank into token ids
(Sennrich et al. 2016; Radford et al. 2019). `decode` maps ids back to their bytes and the bytes back
to text. The rank table (`data/gpt2.tiktoken`, byte-for-byte OpenAI's GPT-2 vocabulary) ships inside
the package, so nothing is downloaded.

`Tokenizer.merges(id)` shows how BPE built one token: starting from its single bytes, the adjacent
pair whose concatenation has the lowest rank is merged, again and again, until one piece is left
(`byte_pair_merges`, the loop tiktoken runs for every word; minbpe explains it in prose). GPT-2's
table needs no separate list of merges: a token's rank is its id, and the ranks alone replay them.

This module does not know about models; it only maps between text, bytes and ids.
"""

import codecs
from dataclasses import dataclass
from functools import cached_property
from numbers import Integral
from pathlib import Path

import tiktoken
from tiktoken.load import load_tiktoken_bpe

RANKS_FILE = Path(__file__).parent.parent / "data" / "gpt2.tiktoken"
END_OF_TEXT = "<|endoftext|>"
END_OF_TEXT_ID = 50256
# GPT-2's pre-tokenizer. A piece is a contraction ('s 't 're 've 'm 'll 'd), a run of letters, of digits or of
# other symbols that may start with one space (optional: " dog" and "dog" are both pieces), or a run of whitespace.
SPLIT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def visible(text: str) -> str:
    """A token's text with its spaces, newlines and tabs made visible: ␣, ↵, ⇥ (all in DejaVu Sans,
    matplotlib's default font, so the plots show them too)."""
    return text.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥")


class Tokenizer:
    """GPT-2's tokenizer: 50,256 BPE tokens plus `<|endoftext|>` = 50256."""

    def __init__(self):
        self.ranks = load_tiktoken_bpe(str(RANKS_FILE))  # token bytes -> rank (= id): the 256 bytes, then each merge
        self.encoding = tiktoken.Encoding(
            name="gpt2",
            pat_str=SPLIT_PATTERN,
            mergeable_ranks=self.ranks,
            special_tokens={END_OF_TEXT: END_OF_TEXT_ID},
        )
        self.eot = END_OF_TEXT_ID
        self.n_vocab = self.encoding.n_vocab  # 50257

    def encode(self, text: str, allow_special: bool = False) -> list[int]:
        """Text -> token ids. "<|endoftext|>" in the text is ordinary text unless allow_special is True.
        A lone surrogate (not a character: what undecodable bytes become in Python) is encoded as U+FFFD."""
        if not isinstance(text, str):
            raise ValueError(f"encode takes a str, got {type(text).__name__}; decode bytes to text first, "
                             f"e.g. data.decode('utf-8', 'replace').")
        if allow_special:
            return self.encoding.encode(text, allowed_special={END_OF_TEXT})
        return self.encoding.encode(text, disallowed_special=())

    def decode(self, ids) -> str:
        """Token ids -> text; bytes that are not valid UTF-8 become U+FFFD, as in transformers."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def decode_bytes(self, ids) -> bytes:
        return b"".join(self.token_bytes(i) for i in ids)

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes one token stands for (a token may hold part of a UTF-8 character)."""
        if not isinstance(token_id, Integral) or isinstance(token_id, bool):
            raise ValueError(f"a token id must be an integer, got {token_id!r}.")
        token_id = int(token_id)
        if not 0 <= token_id < self.n_vocab:
            raise ValueError(f"token id {token_id} is outside GPT-2's vocabulary (0 to {self.n_vocab - 1}).")
        return self._id_to_bytes[token_id]

    @cached_property
    def _id_to_bytes(self) -> list[bytes]:
        return [self.encoding.decode_single_token_bytes(i) for i in range(self.n_vocab)]

    @cached_property
    def token_texts(self) -> list[str]:
        """Each token's own text, by id: its bytes decoded, U+FFFD for part of a character (the trace's
        candidates share these strings rather than decoding their own)."""
        return [data.decode("utf-8", "replace") for data in self._id_to_bytes]

    def stream_decoder(self) -> "StreamDecoder":
        return StreamDecoder(self)

    def merges(self, token_id: int) -> list["Merge"]:
        """The byte-pair merges that built a token from its bytes, in the order BPE applies them; the
        last one makes the token itself (a single-byte token needs none)."""
        data = self.token_bytes(token_id)
        if token_id == self.eot:
            raise ValueError(f"token {token_id} is {END_OF_TEXT}, a special token added whole, not built by "
                             f"byte-pair merges; choose an ordinary token (0 to {self.eot - 1}).")
        return byte_pair_merges(data, self.ranks)[1]


@dataclass(frozen=True)
class Merge:
    """One BPE step: the adjacent pieces `left` and `right`, at index `at` of the pieces so far, become one."""
    left: bytes
    right: bytes
    rank: int  # the merged piece's rank in GPT-2's table, which is also its token id
    at: int

    @property
    def merged(self) -> bytes:
        return self.left + self.right


def byte_pair_merges(data: bytes, ranks: dict[bytes, int]) -> tuple[list[bytes], list[Merge]]:
    """Byte-level BPE of one piece of text (Sennrich et al. 2016, over bytes as in GPT-2): start from
    single bytes; while some adjacent pair's concatenation is in `ranks`, merge the pair of lowest rank
    (the leftmost if it occurs twice). Returns the final pieces (each one token) and the merges made."""
    pieces = [bytes([b]) for b in data]
    merges = []
    while len(pieces) > 1:
        pair_ranks = [ranks.get(pieces[i] + pieces[i + 1]) for i in range(len(pieces) - 1)]
        known = [(r, i) for i, r in enumerate(pair_ranks) if r is not None]
        if not known:
            break
        rank, i = min(known)
        merges.append(Merge(left=pieces[i], right=pieces[i + 1], rank=rank, at=i))
        pieces[i : i + 2] = [pieces[i] + pieces[i + 1]]
    return pieces, merges


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


class StreamDecoder:
    """Incremental decoding for streaming: feed ids one by one, get text as soon as it is whole.

    A token can end in the middle of a UTF-8 character (emoji and CJK often span two tokens), so bytes
    are held back until the character is complete. The concatenation of everything `feed` and `flush`
    return equals `Tokenizer.decode` of all the ids.
    """

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, token_id: int) -> str:
        return self._utf8.decode(self.tokenizer.token_bytes(token_id))

    def flush(self) -> str:
        return self._utf8.decode(b"", final=True)
