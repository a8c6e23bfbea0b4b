"""Cached, checksum-verified downloads, including the Tatoeba/Anki sentence-pair files from manythings.org."""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import urllib.request
import zipfile
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from seq2seq.errors import DataError
from seq2seq.utils.files import atomic_path

ANKI_URL = "https://www.manythings.org/anki/{pair}.zip"
# manythings.org answers 403 to urllib's default User-Agent.
USER_AGENT = "Mozilla/5.0 (compatible; seq2seq-downloader)"
_CHUNK_SIZE = 1 << 16
_TIMEOUT_S = 60.0


def cache_dir() -> Path:
    """Directory for downloaded data: $SEQ2SEQ_CACHE, else ~/.cache/seq2seq."""
    override = os.environ.get("SEQ2SEQ_CACHE")
    return Path(override) if override else Path.home() / ".cache" / "seq2seq"


def fetch(url: str, destination: Path, sha256: str | None = None) -> Path:
    """Download url to destination atomically, or reuse a cached copy whose checksum still matches.

    The SHA-256 of each download is recorded in `<name>.sha256` beside the file; a cached file is reused
    only if it still hashes to that record (and to sha256, when given), otherwise it is fetched again.

    Args:
        url: Any URL urllib can open (https://, file://, ...).
        destination: Where to store the file.
        sha256: Expected hex digest; the download is rejected if it differs.

    Returns:
        destination.

    Raises:
        DataError: If the download fails or its checksum does not match sha256.
    """
    destination = Path(destination)
    expected = sha256.lower() if sha256 else None
    actual = _cached_digest(destination)
    if actual is not None and actual == _recorded_digest(destination) and expected in (None, actual):
        return destination
    digest = _download(url, destination, expected)
    with atomic_path(_record_path(destination)) as record:
        record.write_text(f"{digest}\n", encoding="utf-8")
    return destination


def download_anki(pair: str = "fra-eng", url: str | None = None, sha256: str | None = None) -> Path:
    """Fetch and extract the pair's .txt file into the cache; return its path.

    Args:
        pair: manythings.org pair name such as "fra-eng"; the zip holds "fra.txt".
        url: Alternative location of the zip (a mirror or a file:// URL).
        sha256: Expected SHA-256 of the zip.

    Raises:
        DataError: If the download fails, fails verification or is not a zip holding the pair's file.
    """
    folder = cache_dir() / "anki"
    source_url = url or ANKI_URL.format(pair=pair)
    archive = fetch(source_url, folder / f"{pair}.zip", sha256)
    member = f"{pair.split('-')[0]}.txt"
    target = folder / f"{pair}.txt"
    try:
        with zipfile.ZipFile(archive) as bundle, bundle.open(member) as source, atomic_path(target) as written, \
                open(written, "wb") as out:
            shutil.copyfileobj(source, out, _CHUNK_SIZE)
    except (zipfile.BadZipFile, KeyError) as exc:
        # The server may have sent an error page; drop it so the next call fetches again.
        archive.unlink(missing_ok=True)
        _record_path(archive).unlink(missing_ok=True)
        raise DataError(f"{source_url} is not a zip holding {member}: {exc}") from exc
    return target


def _record_path(path: Path) -> Path:
    """Path of the file recording path's SHA-256."""
    return path.with_name(f"{path.name}.sha256")


def _recorded_digest(path: Path) -> str | None:
    """The digest recorded at first download, or None if there is no record."""
    try:
        return _record_path(path).read_text(encoding="utf-8").strip().lower() or None
    except FileNotFoundError:
        return None


def _cached_digest(path: Path) -> str | None:
    """SHA-256 of the cached file, or None if it is absent."""
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK_SIZE), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(url: str, destination: Path, expected: str | None) -> str:
    """Stream url into destination, replacing it only once complete and verified; return the digest."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        with (
            urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response,
            atomic_path(destination) as written,
            open(written, "wb") as out,
        ):
            total = int(response.headers.get("Content-Length") or 0) or None
            digest = _copy_with_progress(response, out, total, destination.name)
            if expected and digest != expected:
                raise DataError(f"{url}: SHA-256 is {digest}, expected {expected}")
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise DataError(f"cannot download {url}: {exc}") from exc
    return digest


def _copy_with_progress(source: BinaryIO, out: BinaryIO, total: int | None, label: str) -> str:
    """Copy source to out in chunks with a progress bar; return the SHA-256 of what was copied."""
    digest = hashlib.sha256()
    # disable=None hides the bar when stderr is not a terminal (logs, CI).
    with tqdm(total=total, unit="B", unit_scale=True, desc=label, disable=None) as bar:
        for chunk in iter(lambda: source.read(_CHUNK_SIZE), b""):
            out.write(chunk)
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()
