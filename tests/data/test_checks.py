"""Defaults that never lose data quietly: length filtering, specials-only vocabularies, swapped splits, constant
outputs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from seq2seq import cli
from seq2seq.config import Config, apply_overrides
from seq2seq.data.checks import check_outputs_vary
from seq2seq.data.pairs import Pair
from seq2seq.data.preparation import prepare_pairs, prepare_text
from seq2seq.errors import DataError

LONG = [Pair("a long source of many characters " * 4, "short") for _ in range(6)]
SHORT = [Pair("ab", "ab") for _ in range(4)]


def char_config(*overrides: str) -> Config:
    return apply_overrides(Config(), ["model.hidden_size=8", "model.embedding_size=8", "data.max_src_length=20",
                                      *overrides])


def test_filtering_more_than_half_of_the_pairs_stops_with_the_counts_and_the_fixes() -> None:
    with pytest.raises(DataError) as caught:
        prepare_pairs(char_config(), LONG + SHORT, [])
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("length filtering would drop 6 of 10 training pairs (6 sources over "
                              "data.max_src_length=20 tokens, 0 targets over data.max_tgt_length=100)")
    assert "data.truncate_src=true" in message and "word or subword tokens" in message


def test_filtering_half_or_less_warns_and_truncation_keeps_every_pair(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert len(prepare_pairs(char_config(), LONG[:4] + SHORT, []).examples) == 4
    assert "filtered 4 of 8 training pairs" in caplog.text
    assert len(prepare_pairs(char_config("data.truncate_src=true"), LONG + SHORT, []).examples) == 10


def test_a_vocabulary_of_only_the_specials_is_an_error() -> None:
    with pytest.raises(DataError, match=r"data.src vocabulary holds only the special tokens .* data.src.min_freq "
                                        r"\(now 50\)"):
        prepare_pairs(char_config("data.src.min_freq=50"), SHORT, [])
    with pytest.raises(DataError, match=r"data\.tgt vocabulary holds only the special tokens"):
        prepare_text(apply_overrides(Config(), ["task=lm", "data.tgt.min_freq=9"]), ["abc"], [])


def test_a_dev_set_larger_than_the_training_set_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        prepare_pairs(char_config(), SHORT[:1], SHORT)
    assert "dev set (4 pairs) is larger than the training set (1 pairs)" in caplog.text


def test_every_output_the_same_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert check_outputs_vary(["a", "b"], ["x", "y"]) and check_outputs_vary(["a", "a"], ["x", "x"])
        assert not caplog.text
        assert not check_outputs_vary(["a", "b", "c"], ["x", "x", "x"])
    assert "every output is the same text ('x') for 3 different inputs" in caplog.text


def test_train_on_mostly_too_long_pairs_is_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                               ) -> None:
    data = tmp_path / "long.tsv"
    data.write_text("".join(f"{p.src}\t{p.tgt}\n" for p in LONG + SHORT), encoding="utf-8")
    code = cli.main(["train", "--train", str(data), "--out", str(tmp_path / "run"), "data.max_src_length=20"])
    assert code == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("seq2seq train: error: length filtering would drop 6 of 10 training pairs")
    assert not (tmp_path / "run" / "last.safetensors").exists()
