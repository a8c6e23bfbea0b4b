"""Vocab: special ids, building from counts, encoding / decoding, saving, and the extended ids of copying."""

from __future__ import annotations

import json

import pytest

from seq2seq.data.vocab import BOS, BOS_ID, EOS, EOS_ID, PAD, PAD_ID, SPECIALS, UNK, UNK_ID, Vocab

SENTENCES = [["b", "a", "c"], ["a", "b"], ["a", "d"], ["e"]]  # a x3, b x2, c d e x1


def test_specials_come_first_with_fixed_ids() -> None:
    vocab = Vocab(["x", "y"])
    assert vocab.itos[:4] == [PAD, UNK, BOS, EOS] == list(SPECIALS)
    assert [vocab.stoi[token] for token in SPECIALS] == [PAD_ID, UNK_ID, BOS_ID, EOS_ID] == [0, 1, 2, 3]
    assert vocab.itos[4:] == ["x", "y"] and len(vocab) == 6


def test_specials_given_as_tokens_are_not_repeated() -> None:
    vocab = Vocab(["x", EOS, "y", PAD])
    assert vocab.itos == [*SPECIALS, "x", "y"]


def test_build_ranks_by_frequency_then_alphabetically() -> None:
    assert Vocab.build(SENTENCES).itos[4:] == ["a", "b", "c", "d", "e"]
    assert Vocab.build([["z", "y", "y", "x", "z"]]).itos[4:] == ["y", "z", "x"]


@pytest.mark.parametrize(("min_freq", "max_size", "kept"), [
    (1, 0, ["a", "b", "c", "d", "e"]), (2, 0, ["a", "b"]), (3, 0, ["a"]), (4, 0, []),
    (1, 2, ["a", "b"]), (1, 4, ["a", "b", "c", "d"]), (2, 1, ["a"]), (1, 10, ["a", "b", "c", "d", "e"]),
])
def test_build_min_freq_and_max_size(min_freq: int, max_size: int, kept: list[str]) -> None:
    """max_size counts ordinary tokens (the four specials come on top); 0 means no limit."""
    vocab = Vocab.build(SENTENCES, min_freq=min_freq, max_size=max_size)
    assert vocab.itos == [*SPECIALS, *kept]


def test_encode_maps_unknown_tokens_to_unk_and_adds_bos_eos() -> None:
    vocab = Vocab.build(SENTENCES)
    assert vocab.encode(["a", "zz", "e"]) == [4, UNK_ID, 8]
    assert vocab.encode(["b"], add_bos=True, add_eos=True) == [BOS_ID, 5, EOS_ID]
    assert vocab.encode([], add_eos=True) == [EOS_ID]
    assert "zz" not in vocab.stoi and len(vocab) == 9  # looking up an unknown token does not add it


def test_decode_stops_at_eos_and_drops_pad_and_bos() -> None:
    vocab = Vocab.build(SENTENCES)
    assert vocab.decode([BOS_ID, 4, PAD_ID, 5, EOS_ID, 6, 7]) == ["a", "b"]
    assert vocab.decode([4, UNK_ID, 8]) == ["a", UNK, "e"]
    assert vocab.decode([EOS_ID, 4]) == []


@pytest.mark.parametrize("sentence", SENTENCES)
def test_decode_inverts_encode(sentence: list[str]) -> None:
    vocab = Vocab.build(SENTENCES)
    assert vocab.decode(vocab.encode(sentence, add_bos=True, add_eos=True)) == sentence


def test_to_dict_from_dict_identity() -> None:
    vocab = Vocab.build(SENTENCES, max_size=3)
    again = Vocab.from_dict(json.loads(json.dumps(vocab.to_dict())))
    assert again.itos == vocab.itos and dict(again.stoi) == dict(vocab.stoi)
    assert again.encode(["c", "d", "a"]) == vocab.encode(["c", "d", "a"]) == [6, UNK_ID, 4]


def test_encode_extended_numbers_unknown_tokens_after_the_vocabulary() -> None:
    vocab = Vocab.build(SENTENCES)  # 9 ids
    ids, extension = vocab.encode_extended(["a", "q", "b", "r", "q"])
    assert ids == [4, 9, 5, 10, 9]  # each distinct unknown token one id, in order of appearance
    assert extension == ["q", "r"]
    assert vocab.decode(ids, extension) == ["a", "q", "b", "r", "q"]
    assert vocab.encode_extended(["a", "b"]) == ([4, 5], [])


def test_encode_target_uses_the_sources_extension() -> None:
    vocab = Vocab.build(SENTENCES)
    _, extension = vocab.encode_extended(["q", "a", "r"])
    assert vocab.encode_target(["r", "a", "s", "q"], extension) == [BOS_ID, 10, 4, UNK_ID, 9, EOS_ID]
    assert vocab.decode(vocab.encode_target(["r", "a", "q"], extension), extension) == ["r", "a", "q"]
