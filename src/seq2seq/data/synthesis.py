"""Synthesized speech for tests, demos and benchmarks: espeak-ng reads texts in chosen voices; the 16 kHz mono WAV
files, with a little seeded noise, are listed in an `audio.wav<TAB>transcript` file (`audio.read_audio_list`)."""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seq2seq.data.audio import SAMPLE_RATE, audio_library
from seq2seq.data.augmentation import with_noise
from seq2seq.errors import DataError
from seq2seq.utils.files import write_text_atomically

ESPEAK = "espeak-ng"


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice (`-v`: a language and a variant, e.g. en+f2 or en-us+m3), its speed in words per minute
    (`-s`) and its pitch from 0 to 99 (`-p`)."""

    name: str
    speed: int = 175
    pitch: int = 50

    def __str__(self) -> str:
        return f"{self.name} -s {self.speed} -p {self.pitch}"


def espeak_available() -> bool:
    """Whether the espeak-ng program is on the PATH (Debian: apt-get install espeak-ng)."""
    return shutil.which(ESPEAK) is not None


def synthesize(text: str, voice: Voice) -> np.ndarray:
    """16 kHz samples (N,) float32 of espeak-ng reading text, resampled by librosa from its own 22050 Hz."""
    if not espeak_available():
        raise DataError(f"{ESPEAK} is not installed (Debian: apt-get install espeak-ng)")
    command = [ESPEAK, "-v", voice.name, "-s", str(voice.speed), "-p", str(voice.pitch), "--stdout", "--stdin"]
    run = subprocess.run(command, input=text.encode("utf-8"), capture_output=True, check=False)
    if run.returncode or not run.stdout:
        problem = run.stderr.decode("utf-8", "replace").strip().splitlines()
        raise DataError(f"{ESPEAK} -v {voice.name} failed on {text!r}: {problem[0] if problem else 'no audio'}")
    samples, rate = audio_library("soundfile").read(io.BytesIO(run.stdout), dtype="float32")
    return audio_library("librosa").resample(samples, orig_sr=rate, target_sr=SAMPLE_RATE)


def write_speech_list(folder: str | Path, name: str, items: Sequence[tuple[str, Voice]], seed: int,
                      snr_db: float = 30.0) -> Path:
    """Speak each (text, voice), add noise (seeded), write folder/name/00001.wav, ... and their list folder/name.tsv
    (lines `name/00001.wav<TAB>text`, paths relative to the list); returns the list's path."""
    soundfile = audio_library("soundfile")
    audio = Path(folder) / name
    audio.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    width = max(5, len(str(len(items))))
    lines = []
    for number, (text, voice) in enumerate(items, start=1):
        file = f"{number:0{width}d}.wav"
        soundfile.write(audio / file, with_noise(synthesize(text, voice), snr_db, rng), SAMPLE_RATE, subtype="PCM_16")
        lines.append(f"{name}/{file}\t{text}\n")
    listing = Path(folder) / f"{name}.tsv"
    write_text_atomically(listing, "".join(lines))
    return listing
