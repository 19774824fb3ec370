"""Byte-pair merges rebuilt from GPT-2's ranks: checked against tiktoken's own encoder, and by replaying them."""

import numpy as np
import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from minigpt.core.bpe import Merge, byte_pair_merges
from minigpt.core.tokenizer import SPLIT_PATTERN, Tokenizer
from minigpt.views.text import replay_merges

tok = Tokenizer()
# Every single-byte token, the tokens of a sentence, and 3000 more drawn at random from the vocabulary.
SAMPLED = sorted({*range(0, 50256, 997), *tok.encode("Hello, my dog is a little unbelievable 🤗"),
                  *np.random.default_rng(0).choice(tok.eot, 3000, replace=False).tolist()})


def test_every_sampled_token_is_one_piece_as_tiktoken_encodes_it():
    for token in SAMPLED:
        data = tok.token_bytes(token)
        pieces, _ = byte_pair_merges(data, tok.ranks)
        assert pieces == [data], f"token {token}"
        assert tok.encoding._encode_single_piece(data) == [token]  # tiktoken's BPE of the same bytes


def test_replaying_the_merges_rebuilds_each_token():
    for token in SAMPLED:
        data, merges = tok.token_bytes(token), tok.merges(token)
        pieces = [bytes([b]) for b in data]
        for m in merges:  # an independent replay: find the pair where the merge says, join it
            assert pieces[m.at : m.at + 2] == [m.left, m.right]
            assert tok.encoding.encode_single_token(m.merged) == m.rank  # the rank is the merged piece's id
            pieces[m.at : m.at + 2] = [m.left + m.right]
        assert pieces == [data], f"token {token}"
        assert len(merges) == len(data) - 1  # each merge joins two pieces into one
        if merges:
            assert merges[-1].rank == token
        assert replay_merges(data, merges)[-1] == [data]


def test_a_known_token():
    # " dog" is 20 64 6f 67; ' ' + 'd' is GPT-2's token 288 and ' d' + 'o' its token 466.
    assert tok.token_bytes(288) == b" d" and tok.token_bytes(466) == b" do"
    assert tok.merges(3290) == [Merge(b" ", b"d", 288, 0), Merge(b" d", b"o", 466, 0), Merge(b" do", b"g", 3290, 0)]
    assert tok.merges(11) == []  # "," is a single byte
    assert replay_merges(b" dog", tok.merges(3290)) == [[b" ", b"d", b"o", b"g"], [b" d", b"o", b"g"], [b" do", b"g"], [b" dog"]]


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=40))
def test_bpe_of_any_text_equals_tiktoken(text):
    """Split as GPT-2 does, BPE each piece from the ranks alone: the ids tiktoken gives."""
    ids = []
    for piece in regex.findall(SPLIT_PATTERN, text):
        pieces, _ = byte_pair_merges(piece.encode("utf-8"), tok.ranks)
        ids += [tok.ranks[p] for p in pieces]
    assert ids == tok.encode(text)


def test_refusals():
    with pytest.raises(ValueError, match="special token"):
        tok.merges(tok.eot)
    with pytest.raises(ValueError, match="outside GPT-2's vocabulary"):
        tok.merges(50257)
    with pytest.raises(ValueError, match="does not apply"):
        replay_merges(b"dog", [Merge(b"o", b"g", 519, 0)])
