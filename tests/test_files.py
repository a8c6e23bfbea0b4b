"""Atomic writes: the new file appears whole with a new file's permissions, or the old one stays untouched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from seq2seq.files import atomic_path, remove_temporaries, write_text_atomically


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text("half", encoding="utf-8")
        raise RuntimeError("killed in the middle")
    assert target.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_a_finished_write_replaces_the_file_with_a_new_files_permissions(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old", encoding="utf-8")
    previous = os.umask(0o022)
    try:
        write_text_atomically(target, "new ✓")
    finally:
        os.umask(previous)
    assert target.read_text(encoding="utf-8") == "new ✓"
    assert target.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_remove_temporaries_deletes_only_leftovers_of_the_pattern(tmp_path: Path) -> None:
    (tmp_path / ".best.safetensors.abc.tmp").mkdir()
    (tmp_path / ".last.safetensors.def.tmp").write_bytes(b"old-style temporary file")
    (tmp_path / ".notes.txt.ghi.tmp").mkdir()
    remove_temporaries(tmp_path, "*.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".notes.txt.ghi.tmp"]


def test_a_missing_folder_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "missing" / "out.txt"):
        pass
