"""Tests for seq2seq.data.download, using local zips served through file:// URLs."""

from __future__ import annotations

import hashlib
import io
import urllib.request
import zipfile
from pathlib import Path
from typing import ClassVar

import pytest

from seq2seq.data import download
from seq2seq.data.download import cache_dir, download_anki, fetch
from seq2seq.errors import DataError

PAIRS = "Go.\tVa !\tCC-BY 2.0 (France) Attribution: tatoeba.org\nHi.\tSalut !\tCC-BY 2.0 (France)\n"


def _make_zip(path: Path, text: str = PAIRS) -> Path:
    """Write an Anki-style zip holding fra.txt and _about.txt."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr("fra.txt", text)
        bundle.writestr("_about.txt", "about")
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("SEQ2SEQ_CACHE", str(folder))
    return folder


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return _make_zip(tmp_path / "remote" / "fra-eng.zip")


def test_cache_dir_from_environment_or_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEQ2SEQ_CACHE", str(tmp_path / "elsewhere"))
    assert cache_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("SEQ2SEQ_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "seq2seq"


def test_download_anki_extracts_pair_file(cache: Path, source: Path) -> None:
    path = download_anki("fra-eng", url=source.as_uri(), sha256=_sha256(source))
    assert path == cache / "anki" / "fra-eng.txt"
    assert path.read_text(encoding="utf-8") == PAIRS
    archive = cache / "anki" / "fra-eng.zip"
    assert (cache / "anki" / "fra-eng.zip.sha256").read_text().strip() == _sha256(source)
    assert sorted(_files(cache)) == sorted([path, archive, archive.with_name("fra-eng.zip.sha256")])


def test_second_call_reuses_cache(cache: Path, source: Path) -> None:
    first = download_anki(url=source.as_uri())
    source.unlink()
    assert download_anki(url=source.as_uri()) == first
    assert first.read_text(encoding="utf-8") == PAIRS


def test_checksum_mismatch_leaves_nothing(cache: Path, source: Path) -> None:
    with pytest.raises(DataError, match="SHA-256"):
        download_anki(url=source.as_uri(), sha256="0" * 64)
    assert _files(cache) == []


def test_corrupted_cache_is_fetched_again(cache: Path, source: Path) -> None:
    download_anki(url=source.as_uri())
    (cache / "anki" / "fra-eng.zip").write_bytes(b"garbage")
    path = download_anki(url=source.as_uri())
    assert (cache / "anki" / "fra-eng.zip").read_bytes() == source.read_bytes()
    assert path.read_text(encoding="utf-8") == PAIRS


def test_new_expected_checksum_replaces_cached_file(tmp_path: Path, source: Path) -> None:
    destination = tmp_path / "cache" / "data.zip"
    fetch(source.as_uri(), destination)
    _make_zip(source, "Run!\tCours !\tCC-BY\n")
    fetch(source.as_uri(), destination, sha256=_sha256(source).upper())
    assert destination.read_bytes() == source.read_bytes()


def test_missing_source_raises_and_leaves_nothing(cache: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot download"):
        download_anki(url=(tmp_path / "absent.zip").as_uri())
    assert _files(cache) == []


def test_non_zip_download_is_rejected_and_dropped(cache: Path, tmp_path: Path) -> None:
    page = tmp_path / "error.html"
    page.write_text("<html>Forbidden</html>")
    with pytest.raises(DataError, match="not a zip"):
        download_anki(url=page.as_uri())
    assert _files(cache) == []


def test_interrupted_download_leaves_nothing(
    cache: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[urllib.request.Request] = []

    class Broken(io.BytesIO):
        headers: ClassVar[dict[str, str]] = {}

        def read(self, size: int = -1) -> bytes:
            if self.tell():
                raise ConnectionResetError("connection reset")
            return super().read(3)

    def fake_urlopen(request: urllib.request.Request, timeout: float) -> Broken:
        seen.append(request)
        return Broken(source.read_bytes())

    monkeypatch.setattr(download.urllib.request, "urlopen", fake_urlopen)
    with pytest.raises(DataError, match="connection reset"):
        download_anki(url=source.as_uri())
    assert _files(cache) == []
    assert seen[0].get_header("User-agent") == download.USER_AGENT
