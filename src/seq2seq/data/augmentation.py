"""Waveform augmentation of training utterances as ASR recipes do it: speed perturbation by resampling, pitch shift
and white noise at a signal-to-noise ratio, each drawn per copy from a seeded generator (`data.audio`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seq2seq.config import AudioConfig
from seq2seq.data.audio import SAMPLE_RATE, audio_library
from seq2seq.errors import ConfigError


@dataclass(frozen=True)
class Perturbation:
    """One augmented copy's draw: a speed factor (1 = none), a pitch shift in semitones (0 = none), a
    signal-to-noise ratio in dB (None = no noise) and the seed of the noise."""

    speed: float = 1.0
    semitones: float = 0.0
    snr_db: float | None = None
    noise_seed: int = 0


def check_augmentation(audio: AudioConfig) -> None:
    """Each range of the perturbed copies is empty (off) or [low, high]; speed factors are positive."""
    for name, unit in (("speed_range", ""), ("noise_snr_range", " dB")):
        bounds = getattr(audio, name)
        if bounds and (len(bounds) != 2 or bounds[0] > bounds[1]):
            raise ConfigError(f"data.audio.{name} must be [] or [low, high]{unit} with low <= high, got {bounds}")
    if audio.speed_range and audio.speed_range[0] <= 0:
        raise ConfigError(f"data.audio.speed_range must hold positive factors, got {audio.speed_range}")


def draw(audio: AudioConfig, seed: int, utterance: int, copy: int) -> Perturbation:
    """The perturbation of copy number copy of training utterance number utterance, uniform in the ranges of audio;
    the same (seed, utterance, copy) always draws the same."""
    rng = np.random.default_rng([seed, utterance, copy])
    speed = float(rng.uniform(*audio.speed_range)) if audio.speed_range else 1.0
    semitones = float(rng.uniform(-audio.pitch_semitones, audio.pitch_semitones)) if audio.pitch_semitones else 0.0
    snr_db = float(rng.uniform(*audio.noise_snr_range)) if audio.noise_snr_range else None
    return Perturbation(speed, semitones, snr_db, int(rng.integers(2**31)))


def perturb(samples: np.ndarray, perturbation: Perturbation) -> np.ndarray:
    """16 kHz samples (N,) float32 changed in speed (N / speed samples), then in pitch, then given noise."""
    if perturbation.speed != 1.0:
        samples = change_speed(samples, perturbation.speed)
    if perturbation.semitones:
        samples = shift_pitch(samples, perturbation.semitones)
    if perturbation.snr_db is not None:
        samples = with_noise(samples, perturbation.snr_db, np.random.default_rng(perturbation.noise_seed))
    return samples


def change_speed(samples: np.ndarray, factor: float) -> np.ndarray:
    """samples (N,) played factor times faster: resampled to N / factor samples, so the pitch rises by factor too
    (sox's `speed`)."""
    return audio_library("librosa").resample(samples, orig_sr=SAMPLE_RATE * factor, target_sr=SAMPLE_RATE)


def shift_pitch(samples: np.ndarray, semitones: float) -> np.ndarray:
    """samples (N,) with every frequency multiplied by 2 ** (semitones / 12), N kept (librosa's phase vocoder)."""
    return audio_library("librosa").effects.pitch_shift(samples, sr=SAMPLE_RATE, n_steps=semitones)


def with_noise(samples: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """samples plus white noise snr_db decibels below their power, clipped to [-1, 1]."""
    power = float(np.mean(samples ** 2)) or 1e-8
    noise = rng.normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), samples.shape)
    return np.clip(samples + noise, -1.0, 1.0).astype(np.float32)
