"""Named sources: the cmudict split is deterministic and matches the shared copy of the dictionary's dev split."""

from __future__ import annotations

from pathlib import Path

import pytest

from seq2seq.data.datasets import hash_split, load_cmudict, load_pairs
from seq2seq.data.pairs import read_tsv
from seq2seq.errors import DataError


def test_cmudict_splits_are_disjoint_by_word() -> None:
    dev, test = load_cmudict("dev"), load_cmudict("test")
    assert len(dev) > 5000 and len(test) > 5000
    assert not {p.src for p in dev} & {p.src for p in test}
    assert all(hash_split(p.src) == "dev" for p in dev)
    assert dev[0].tgt.split()[0].isupper()  # ARPAbet symbols


def test_cmudict_dev_equals_the_shared_dev_file(shared_data: Path) -> None:
    shared = {(p.src, p.tgt) for p in read_tsv(shared_data / "cmudict" / "dev.tsv")}
    assert {(p.src, p.tgt) for p in load_cmudict("dev")} == shared


def test_named_source_and_unknown_split() -> None:
    assert load_pairs("cmudict:dev")[0] == load_cmudict("dev")[0]
    with pytest.raises(DataError, match="unknown split"):
        load_pairs("cmudict:validation")


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load_pairs(str(tmp_path / "absent.tsv"))
