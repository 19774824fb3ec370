"""Text <-> tokens: GPT-2's byte-pair encoding, the first and last stage of the pipeline.

`encode` splits the text with GPT-2's regular expression into word-like pieces, then merges each piece's
UTF-8 bytes by BPE rank into token ids (Sennrich et al. 2016; Radford et al. 2019). Two encoders give the
same ids from the same rank table (`data/gpt2.tiktoken`, byte for byte OpenAI's GPT-2 vocabulary, shipped
in the package): tiktoken's, fast, the default; and bpe.py's, in plain Python, to read and to step through
(`Tokenizer(bpe="python")`). `decode` maps ids back to their bytes and the bytes back to text.

`Tokenizer.merges(id)` shows how BPE built one token from its bytes (bpe.byte_pair_merges). GPT-2's table
needs no separate list of merges: a token's rank is its id, and the ranks alone replay them.

What this module is not: it does not know about models; it only maps between text, bytes and ids.
"""

import codecs
from functools import cache, cached_property
from numbers import Integral
from pathlib import Path

import tiktoken

from . import bpe

RANKS_FILE = Path(__file__).parent.parent / "data" / "gpt2.tiktoken"
END_OF_TEXT, END_OF_TEXT_ID = bpe.END_OF_TEXT, bpe.END_OF_TEXT_ID
# GPT-2's pre-tokenizer in the syntax of tiktoken's (Rust) regex: bpe.PATTERN with the Unicode classes it names.
SPLIT_PATTERN = bpe.PATTERN.format(L=r"\p{L}", N=r"\p{N}", S=r"\s")
ENCODERS = ("tiktoken", "python")


class Tokenizer:
    """GPT-2's tokenizer: 50,256 BPE tokens plus `<|endoftext|>` = 50256."""

    def __init__(self, bpe: str = "tiktoken"):
        if bpe not in ENCODERS:
            raise ValueError(f"bpe must be 'tiktoken' (fast, the default) or 'python' (minigpt/core/bpe.py, to read "
                             f"and step through); got {bpe!r}.")
        self.bpe = bpe
        self.ranks = read_ranks()  # token bytes -> rank (= id): the 256 bytes, then each merge in order
        self.eot = END_OF_TEXT_ID
        self.n_vocab = len(self.ranks) + 1  # 50257, <|endoftext|> included

    @cached_property
    def encoding(self) -> tiktoken.Encoding:
        return tiktoken.Encoding(name="gpt2", pat_str=SPLIT_PATTERN, mergeable_ranks=self.ranks,
                                 special_tokens={END_OF_TEXT: END_OF_TEXT_ID})

    def encode(self, text: str, allow_special: bool = False) -> list[int]:
        """Text -> token ids. "<|endoftext|>" in the text is ordinary text unless allow_special is True.
        A lone surrogate (not a character: what undecodable bytes become in Python) is encoded as U+FFFD."""
        if not isinstance(text, str):
            raise ValueError(f"encode takes a str, got {type(text).__name__}; decode bytes to text first, "
                             f"e.g. data.decode('utf-8', 'replace').")
        if self.bpe == "python":
            return bpe.encode(text, self.ranks, allow_special)
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
        return self.id_to_bytes[token_id]

    @cached_property
    def id_to_bytes(self) -> list[bytes]:
        """Every token's bytes, by id: the rank table read backwards, then <|endoftext|>."""
        by_id = sorted(self.ranks, key=self.ranks.__getitem__)
        return by_id + [END_OF_TEXT.encode()]

    @cached_property
    def token_texts(self) -> list[str]:
        """Each token's own text, by id: its bytes decoded, U+FFFD for part of a character (the trace's
        candidates share these strings rather than decoding their own)."""
        return [data.decode("utf-8", "replace") for data in self.id_to_bytes]

    def stream_decoder(self) -> "StreamDecoder":
        return StreamDecoder(self)

    def merges(self, token_id: int) -> list[bpe.Merge]:
        """The byte-pair merges that built a token from its bytes, in the order BPE applies them; the
        last one makes the token itself (a single-byte token needs none)."""
        data = self.token_bytes(token_id)
        if token_id == self.eot:
            raise ValueError(f"token {token_id} is {END_OF_TEXT}, a special token added whole, not built by "
                             f"byte-pair merges; choose an ordinary token (0 to {self.eot - 1}).")
        return bpe.byte_pair_merges(data, self.ranks)[1]


@cache
def read_ranks() -> dict[bytes, int]:
    """GPT-2's rank table, read once per process and shared by every Tokenizer (50,256 entries)."""
    return bpe.read_ranks(RANKS_FILE)


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
