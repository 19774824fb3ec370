"""The tokenizer: GPT-2's known ids, <|endoftext|> handling, round trips and streaming."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigpt import Tokenizer

tok = Tokenizer()


def test_known_ids():
    # ../shared/data/README.md and transformers' GPT-2 tests give these ids.
    assert tok.encode("The dog") == [464, 3290]
    assert tok.encode("Hello, my dog is a little") == [15496, 11, 616, 3290, 318, 257, 1310]
    assert tok.n_vocab == 50257 and tok.eot == 50256


def test_endoftext_is_text_unless_asked():
    text = "a<|endoftext|>b"
    plain = tok.encode(text)
    assert 50256 not in plain and tok.decode(plain) == text
    special = tok.encode(text, allow_special=True)
    assert special.count(50256) == 1 and tok.decode(special) == text


def test_token_bytes_and_range():
    assert tok.token_bytes(464) == b"The"
    assert tok.token_bytes(50256) == b"<|endoftext|>"
    with pytest.raises(ValueError, match="50257"):
        tok.token_bytes(50257)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_round_trip(text):
    assert tok.decode(tok.encode(text)) == text


def stream(ids):
    decoder = tok.stream_decoder()
    pieces = [decoder.feed(i) for i in ids]
    return pieces, "".join(pieces) + decoder.flush()


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_streamed_text_equals_decode(text):
    ids = tok.encode(text)
    pieces, streamed = stream(ids)
    assert streamed == tok.decode(ids)
    assert all("\ufffd" not in p for p in pieces)  # never half a character


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 50256), max_size=30))
def test_streamed_arbitrary_ids_equal_decode(ids):
    # Arbitrary ids may form invalid UTF-8: both paths must replace it the same way.
    assert stream(ids)[1] == tok.decode(ids)


def test_emoji_split_across_tokens_streams_whole():
    ids = tok.encode("🦙 and 漢字")
    assert any(not tok.token_bytes(i).decode("utf-8", "ignore") for i in ids)  # some token is a fragment
    pieces, streamed = stream(ids)
    assert streamed == "🦙 and 漢字"
    assert "🦙" in pieces[: len(pieces)]  # the emoji comes out in one piece
