"""Log-mel frames kept on disk: a speech run computes the features of its WAV files (and of their perturbed copies)
once, and a resumed or repeated run in the same directory reads them back."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import torch
from torch import Tensor

from seq2seq.config import AudioConfig
from seq2seq.data.audio import frames, load_frames, read_wav
from seq2seq.data.augmentation import Perturbation, perturb
from seq2seq.data.pairs import Pair
from seq2seq.errors import DataError

CACHE_NAME = "features.safetensors"
logger = logging.getLogger(__name__)


class FeatureCache:
    """The frames of WAV files in one safetensors file, each under a key made of the file's path, size and modification
    time, the audio settings and a copy's perturbation, so that a changed file, setting or draw is computed again.
    Without a path it keeps nothing."""

    def __init__(self, path: Path | None, audio: AudioConfig) -> None:
        self.path, self.audio = path, audio
        self.frames: dict[str, Tensor] = {}
        self.used: set[str] = set()
        self.added = 0
        if path is not None and path.is_file():
            from safetensors import SafetensorError
            from safetensors.torch import load_file

            try:
                self.frames = load_file(path)
            except (OSError, SafetensorError) as error:  # a damaged cache is computed again
                logger.warning("%s: cannot read the cached features (%s); computing them again", path, error)

    def load(self, pair: Pair, perturbation: Perturbation | None = None) -> Tensor:
        """The frames (T, n_mels) of the pair's WAV file (`audio.load_frames`), or of its samples perturbed
        (`augmentation.perturb`), read back or computed."""
        key = self._key(pair, perturbation)
        self.used.add(key)
        if key not in self.frames:
            computed = (load_frames(pair.src, self.audio, pair.origin) if perturbation is None
                        else frames(perturb(read_wav(pair.src, _named(pair)), perturbation), self.audio))
            self.frames[key] = torch.from_numpy(computed)
            self.added += 1
        return self.frames[key]

    def save(self) -> None:
        """Write the frames of the files loaded since the cache was read, when some were computed or some it held
        were not loaded (a changed file or list): written aside, then moved in, never half a file."""
        if self.path is None or not (self.added or self.used != self.frames.keys()):
            return
        from safetensors.torch import save_file

        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f"{self.path.name}.{os.getpid()}.partial")  # ranks may write at once
        save_file({key: self.frames[key].contiguous() for key in sorted(self.used)}, partial)
        os.replace(partial, self.path)
        self.frames = {key: self.frames[key] for key in self.used}
        self.added = 0

    def _key(self, pair: Pair, perturbation: Perturbation | None) -> str:
        path = Path(pair.src)
        try:
            status = path.stat()
        except OSError as error:
            problem = "no such file" if isinstance(error, FileNotFoundError) else error.strerror or "cannot read"
            raise DataError(f"{_named(pair)}: {problem}") from None
        settings = (self.audio.n_mels, self.audio.n_fft, self.audio.win_length, self.audio.hop_length)
        described = f"{path.resolve()}|{status.st_size}|{status.st_mtime_ns}|{settings}"
        if perturbation is not None:  # the original's key stays as it was
            described += f"|{perturbation}"
        return hashlib.sha1(described.encode()).hexdigest()


def _named(pair: Pair) -> str:
    """How a DataError names a pair's WAV file: its list's line, and the file."""
    return f"{pair.origin}: {pair.src}" if pair.origin else str(pair.src)
