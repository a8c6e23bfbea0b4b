"""Speech input: 16 kHz mono WAV files read and checked (soundfile), normalised log-mel features (librosa), and
`audio.wav<TAB>transcript` lists, without torch (the exported models' runtime reads them too). The audio libraries
(the speech extra) are imported here only, when first used."""

from __future__ import annotations

import importlib
import io
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from seq2seq.config import AudioConfig
from seq2seq.data.lines import Pair, read_lines
from seq2seq.errors import DataError

SAMPLE_RATE = 16000
NORMALISATION_EPSILON = 1e-5  # keeps a constant feature (silence) finite after division by its deviation


def audio_library(name: str) -> Any:
    """soundfile or librosa, or a DataError saying how to install them."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise DataError(f"speech needs the speech extra: pip install 'seq2seq[speech]' ({error})") from None


def read_wav(source: str | Path | BinaryIO, name: str = "") -> np.ndarray:
    """The samples (N,) float32 in [-1, 1] of a 16 kHz mono WAV file or file object; anything else is a DataError
    naming it (name, by default the path)."""
    soundfile = audio_library("soundfile")
    name = name or str(source)
    if isinstance(source, str | Path) and not Path(source).is_file():
        raise DataError(f"{name}: no such file")
    try:
        with soundfile.SoundFile(str(source) if isinstance(source, str | Path) else source) as wav:
            _check_format(name, wav)
            samples = wav.read(dtype="float32")
    except (RuntimeError, OSError) as error:  # soundfile.LibsndfileError is a RuntimeError
        problem = getattr(error, "error_string", "") or str(error).partition("\n")[0] or type(error).__name__
        raise DataError(f"{name}: cannot read as audio ({problem})") from None
    if not len(samples):
        raise DataError(f"{name}: no samples")
    return samples


def _check_format(path: str | Path, info: Any) -> None:
    """Speech input is 16 kHz mono WAV (info: the open soundfile.SoundFile)."""
    if info.format != "WAV":
        raise DataError(f"{path}: not a WAV file ({info.format_info}); speech input is 16 kHz mono WAV")
    if info.channels != 1:
        raise DataError(f"{path}: {info.channels} channels; speech input is mono (mix it down first)")
    if info.samplerate != SAMPLE_RATE:
        raise DataError(f"{path}: sampled at {info.samplerate} Hz; speech input is {SAMPLE_RATE} Hz (resample it)")


def log_mel(samples: np.ndarray, audio: AudioConfig) -> np.ndarray:
    """Log-mel filterbank energies (T, n_mels) in dB: librosa's mel power spectrogram of 16 kHz samples (N,),
    frames centred every hop_length samples (T = 1 + N // hop_length)."""
    librosa = audio_library("librosa")
    power = librosa.feature.melspectrogram(y=samples, sr=SAMPLE_RATE, n_fft=audio.n_fft, hop_length=audio.hop_length,
                                           win_length=audio.win_length, n_mels=audio.n_mels)  # (n_mels, T)
    return librosa.power_to_db(power).T.astype(np.float32)


def normalise(features: np.ndarray) -> np.ndarray:
    """Per-utterance normalisation: each feature (column of (T, F)) to mean 0 and standard deviation 1."""
    return (features - features.mean(axis=0)) / (features.std(axis=0) + NORMALISATION_EPSILON)


def load_frames(path: str | Path, audio: AudioConfig, origin: str = "") -> np.ndarray:
    """The model's input for one WAV file: its normalised log-mel frames (T, n_mels), float32; origin (the list's
    line) starts the message of a DataError."""
    try:
        return frames(read_wav(path), audio)
    except DataError as error:
        raise DataError(f"{origin}: {error}" if origin else str(error)) from None


def wav_frames(data: bytes, audio: AudioConfig, name: str) -> np.ndarray:
    """The model's input for a WAV file's bytes in memory (an upload), as `load_frames`; name starts the message of a
    DataError."""
    return frames(read_wav(io.BytesIO(data), name), audio)


def frames(samples: np.ndarray, audio: AudioConfig) -> np.ndarray:
    """Normalised log-mel frames (T, n_mels), float32, of 16 kHz samples (N,)."""
    return normalise(log_mel(samples, audio))


def read_audio_list(path: str | Path) -> list[Pair]:
    """Read `audio.wav<TAB>transcript` lines (audio paths relative to the list's folder) into Pair(the audio file's
    path, transcript, origin); blank lines are skipped, a line without a tab or whose audio file is missing is a
    DataError naming the line."""
    pairs = []
    for number, line in read_lines(path):
        if not line.strip():
            continue
        audio, tab, transcript = line.partition("\t")
        origin = f"{path}:{number}"
        if not tab:
            raise DataError(f"{origin}: expected audio.wav<TAB>transcript, found no tab")
        file = Path(path).parent / audio.strip()
        if not file.is_file():
            raise DataError(f"{origin}: no such audio file {audio.strip()!r} (paths are relative to the list)")
        if not transcript.strip():
            raise DataError(f"{origin}: empty transcript")
        pairs.append(Pair(str(file), transcript.split("\t")[0].strip(), origin))
    if not pairs:
        raise DataError(f"{path}: no data (the file is empty)")
    return pairs
