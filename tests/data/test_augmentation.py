"""Tests for the perturbed copies of training utterances: each transform does what it says, the draws are seeded,
only training utterances get copies, the feature cache reads them back, and bad options are one-line errors."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from seq2seq.config import AudioConfig, Config, apply_overrides
from seq2seq.data.audio import SAMPLE_RATE, load_frames
from seq2seq.data.augmentation import Perturbation, change_speed, draw, perturb, shift_pitch, with_noise
from seq2seq.data.feature_cache import FeatureCache
from seq2seq.data.pairs import Pair
from seq2seq.data.preparation import prepare_speech
from seq2seq.errors import ConfigError, DataError
from seq2seq.tasks import registry

soundfile = pytest.importorskip("soundfile")
pytest.importorskip("librosa")


def sine(frequency: float, seconds: float = 1.0, amplitude: float = 0.3) -> np.ndarray:
    time = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * frequency * time)).astype(np.float32)


def dominant_frequency(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)[spectrum.argmax()])


# ---- the transforms

def test_speed_perturbation_shortens_by_the_factor_and_raises_the_pitch_with_it() -> None:
    faster = change_speed(sine(400.0), 1.1)
    assert faster.dtype == np.float32 and abs(len(faster) - SAMPLE_RATE / 1.1) <= 2
    assert dominant_frequency(faster) == pytest.approx(440.0, abs=2.0)
    assert abs(len(change_speed(sine(400.0), 0.9)) - SAMPLE_RATE / 0.9) <= 2


def test_pitch_shift_keeps_the_length_and_multiplies_the_frequency() -> None:
    for semitones in (2.0, -1.5):
        shifted = shift_pitch(sine(440.0), semitones)
        assert len(shifted) == SAMPLE_RATE
        assert dominant_frequency(shifted) == pytest.approx(440.0 * 2 ** (semitones / 12), rel=0.01)


def test_noise_is_added_at_the_signal_to_noise_ratio() -> None:
    clean = sine(300.0)
    for snr_db in (10.0, 25.0):
        noisy = with_noise(clean, snr_db, np.random.default_rng(0))
        measured = 10 * np.log10(np.mean(clean ** 2) / np.mean((noisy - clean) ** 2))
        assert measured == pytest.approx(snr_db, abs=0.2)


def test_draws_are_seeded_per_copy_and_stay_in_their_ranges() -> None:
    audio = AudioConfig(augment_copies=3)
    first = draw(audio, 1, 5, 0)
    assert draw(audio, 1, 5, 0) == first
    assert len({first, draw(audio, 1, 5, 1), draw(audio, 1, 6, 0), draw(audio, 2, 5, 0)}) == 4
    for copy in range(20):
        found = draw(audio, 1, 0, copy)
        assert 0.9 <= found.speed <= 1.1 and -2.0 <= found.semitones <= 2.0
        assert found.snr_db is not None and 10.0 <= found.snr_db <= 30.0
    off = draw(replace(audio, speed_range=[], pitch_semitones=0.0, noise_snr_range=[]), 1, 5, 0)
    assert (off.speed, off.semitones, off.snr_db) == (1.0, 0.0, None)
    samples = sine(200.0, 0.2)
    assert perturb(samples, off) is samples
    perturbed = perturb(samples, first)
    assert np.array_equal(perturb(samples, first), perturbed)  # the noise too
    assert abs(len(perturbed) - len(samples) / first.speed) <= 2


def test_bad_options_are_one_line_errors_naming_the_key() -> None:
    for overrides, message in [
            (["data.audio.speed_range=[1.1, 0.9]"], r"data\.audio\.speed_range must be \[\] or \[low, high\] with "
                                                     r"low <= high, got \[1\.1, 0\.9\]"),
            (["data.audio.speed_range=[0, 1.1]"], r"data\.audio\.speed_range must hold positive factors"),
            (["data.audio.noise_snr_range=[20]"], r"data\.audio\.noise_snr_range must be \[\] or \[low, high\] dB"),
            (["data.audio.augment_copies=-1"], r"data\.audio\.augment_copies must not be negative, got -1"),
            (["data.audio.pitch_semitones=-2"], r"data\.audio\.pitch_semitones must not be negative"),
            (["data.audio.speed_range=1.1"], r"data\.audio\.speed_range must be a list")]:
        with pytest.raises(ConfigError, match=message) as error:
            registry.validate(apply_overrides(Config(task="speech"), overrides))
        assert "\n" not in str(error.value)
    registry.validate(apply_overrides(Config(task="speech"), ["data.audio.augment_copies=2",
                                                              "data.audio.speed_range=[1, 1]",
                                                              "data.audio.noise_snr_range=[]"]))
    with pytest.raises(ConfigError, match=r"^data\.audio\.augment_copies applies to task speech only, not seq2seq$"):
        registry.validate(apply_overrides(Config(), ["data.audio.augment_copies=1"]))


# ---- copies in the prepared data and the feature cache

@pytest.fixture
def utterances(tmp_path: Path) -> tuple[list[Pair], list[Pair]]:
    """Three training utterances and one dev utterance: tones of different pitches and lengths."""
    pairs = []
    for number, (frequency, seconds) in enumerate([(220.0, 0.4), (330.0, 0.5), (500.0, 0.3), (700.0, 0.4)]):
        path = tmp_path / f"{number}.wav"
        soundfile.write(path, sine(frequency, seconds), SAMPLE_RATE)
        pairs.append(Pair(str(path), "ab"[number % 2], f"list:{number + 1}"))
    return pairs[:3], pairs[3:]


def speech_config(*overrides: str) -> Config:
    return apply_overrides(Config(task="speech"), ["data.audio.n_mels=16", *overrides])


def test_training_utterances_get_their_copies_and_dev_utterances_none(
        utterances: tuple[list[Pair], list[Pair]]) -> None:
    train, dev = utterances
    config = speech_config("data.audio.augment_copies=2")
    prepared = prepare_speech(config, train, dev)
    assert len(prepared.examples) == 9 and len(prepared.dev_examples) == 1
    originals = [torch.from_numpy(load_frames(pair.src, config.data.audio)) for pair in train]
    assert all(torch.equal(example.src, frames) for example, frames in zip(prepared.examples, originals,
                                                                             strict=False))
    assert torch.equal(prepared.dev_examples[0].src, torch.from_numpy(load_frames(dev[0].src, config.data.audio)))
    for copy in range(2):
        for number in range(3):
            example = prepared.examples[3 + 3 * copy + number]
            assert example.tgt == prepared.examples[number].tgt
            assert example.src.shape != originals[number].shape or not torch.equal(example.src, originals[number])
    first, second = prepared.examples[3:6], prepared.examples[6:]
    assert not any(torch.equal(a.src, b.src) for a, b in zip(first, second, strict=True))
    again = prepare_speech(config, train, dev)
    assert all(torch.equal(a.src, b.src) for a, b in zip(prepared.examples, again.examples, strict=True))
    other_seed = prepare_speech(speech_config("data.audio.augment_copies=2", "train.seed=2"), train, dev)
    assert not torch.equal(other_seed.examples[3].src, prepared.examples[3].src)


def test_the_cache_reads_the_copies_back_and_keeps_only_what_the_run_used(
        utterances: tuple[list[Pair], list[Pair]], tmp_path: Path) -> None:
    train, dev = utterances
    config = speech_config("data.audio.augment_copies=1")
    cache_file = tmp_path / "run" / "features.safetensors"
    computed = prepare_speech(config, train, dev, cache=FeatureCache(cache_file, config.data.audio))
    cache = FeatureCache(cache_file, config.data.audio)
    assert len(cache.frames) == 7
    read_back = prepare_speech(config, train, dev, cache=cache)
    assert cache.added == 0
    assert all(torch.equal(a.src, b.src) for a, b in zip(computed.examples, read_back.examples, strict=True))
    other_draw = FeatureCache(cache_file, config.data.audio)
    other_draw.load(train[0], Perturbation(speed=1.05))
    assert other_draw.added == 1
    plain = speech_config()
    prepare_speech(plain, train, dev, cache=FeatureCache(cache_file, plain.data.audio))  # the copies are dropped
    assert len(FeatureCache(cache_file, plain.data.audio).frames) == 4


def test_a_file_gone_since_its_list_was_read_names_the_line(utterances: tuple[list[Pair], list[Pair]],
                                                             tmp_path: Path) -> None:
    train, _ = utterances
    Path(train[0].src).rename(tmp_path / "moved.wav")
    cache = FeatureCache(None, speech_config().data.audio)
    for perturbation in (None, Perturbation(speed=1.05)):
        with pytest.raises(DataError, match=f"^{re.escape(train[0].origin)}: {re.escape(train[0].src)}: "):
            cache.load(train[0], perturbation)
