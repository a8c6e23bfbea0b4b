"""Atomic writes: the new file appears whole with a new file's permissions, or the old one stays untouched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from seq2seq.utils.files import atomic_directory, atomic_path, remove_temporaries, write_text_atomically


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


def test_a_directory_appears_whole_with_a_new_folders_permissions(tmp_path: Path) -> None:
    target = tmp_path / "export"
    previous = os.umask(0o022)
    try:
        with atomic_directory(target) as building:
            (building / "a.txt").write_text("a", encoding="utf-8")
            (building / "sub").mkdir()
            (building / "sub" / "b.txt").write_text("b", encoding="utf-8")
            assert not target.exists()  # nothing under the name while the block runs
    finally:
        os.umask(previous)
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*")) == ["a.txt", "sub", "sub/b.txt"]
    assert target.stat().st_mode & 0o777 == 0o755  # not mkdtemp's 0700
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_a_failed_directory_leaves_nothing_and_the_old_one_untouched(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), atomic_directory(tmp_path / "new") as building:
        (building / "half.txt").write_text("half", encoding="utf-8")
        raise RuntimeError("killed in the middle")
    old = tmp_path / "old"
    old.mkdir()
    (old / "kept.txt").write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_directory(old, replace=True) as building:
        (building / "kept.txt").write_text("new", encoding="utf-8")
        raise RuntimeError("killed in the middle")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]
    assert (old / "kept.txt").read_text(encoding="utf-8") == "old"


def test_a_non_empty_directory_is_replaced_only_when_asked(tmp_path: Path) -> None:
    target = tmp_path / "export"
    target.mkdir()
    with atomic_directory(target) as building:  # an empty one is simply taken
        (building / "first.txt").write_text("1", encoding="utf-8")
    with pytest.raises(OSError), atomic_directory(target) as building:
        (building / "second.txt").write_text("2", encoding="utf-8")
    assert sorted(p.name for p in target.iterdir()) == ["first.txt"]
    with atomic_directory(target, replace=True) as building:
        (building / "second.txt").write_text("2", encoding="utf-8")
    assert sorted(p.name for p in target.iterdir()) == ["second.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
