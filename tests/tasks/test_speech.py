"""Tests for speech recognition: WAV reading and its errors, log-mel features against librosa, the subsampling
encoder's lengths and padding, SpecAugment, and a tiny model learning words that espeak-ng speaks, through the
command line (train --task speech, transcribe, evaluate) and the Python API."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from seq2seq import api
from seq2seq.config import AudioConfig, Config, ModelConfig, apply_overrides
from seq2seq.data.audio import SAMPLE_RATE, load_frames, log_mel, normalise, read_audio_list, read_wav
from seq2seq.data.examples import Example
from seq2seq.data.feature_cache import CACHE_NAME, FeatureCache
from seq2seq.data.pairs import Pair, collate
from seq2seq.data.synthesis import Voice, espeak_available, write_speech_list
from seq2seq.data.vocab import BOS_ID, EOS_ID
from seq2seq.decoding.options import DecodingOptions
from seq2seq.decoding.search import decode
from seq2seq.errors import CheckpointError, ConfigError, DataError
from seq2seq.models.objectives import sequence_loss
from seq2seq.models.speech_encoder import ConvSubsampling, SpeechSeq2Seq, spec_augment
from seq2seq.tasks import registry
from seq2seq.tasks.speech import SpeechTranscriber, score_transcripts
from tests.cli.test_cli import one_line_error, run_cli

soundfile = pytest.importorskip("soundfile")
librosa = pytest.importorskip("librosa")

WORDS = ["cat", "dog", "house", "green", "seven", "table", "river", "music"]
TRAIN_VOICES = [Voice("en+m1", 160, 40), Voice("en+f2", 185, 65), Voice("en-us+m3", 140, 50)]
HELD_OUT_VOICE = Voice("en+f3", 170, 55)  # a variant, speed and pitch that training never hears
TINY = ["model.hidden_size=64", "model.embedding_size=32", "model.conv_channels=8", "data.audio.n_mels=40",
        "data.batch_size=24", "train.lr=0.003", "model.dropout=0", "train.early_stopping=0", "train.seed=3"]
TINY_AUDIO = AudioConfig(n_mels=16)
TINY_MODEL = ModelConfig(hidden_size=16, embedding_size=8, conv_channels=4, dropout=0.0)


def write_wav(path: Path, samples: np.ndarray, rate: int = SAMPLE_RATE, file_format: str = "WAV") -> Path:
    soundfile.write(path, samples, rate, format=file_format)
    return path


def chirp(seconds: float, seed: int = 0) -> np.ndarray:
    """A rising tone with a little noise: features that vary over time and frequency."""
    time = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    noise = np.random.default_rng(seed).normal(0.0, 0.01, time.shape)
    return (0.5 * np.sin(2 * np.pi * (200 + 1500 * time) * time) + noise).astype(np.float32)


# ---- reading WAV files and audio lists

def test_read_wav_gives_the_samples(tmp_path: Path) -> None:
    samples = chirp(0.3)
    read = read_wav(write_wav(tmp_path / "a.wav", samples))
    assert read.dtype == np.float32 and read.shape == samples.shape
    assert np.abs(read - samples).max() < 1e-4  # 16-bit PCM


@pytest.mark.parametrize(("name", "write", "message"), [
    ("tone.flac", lambda p: write_wav(p, chirp(0.1), file_format="FLAC"), "not a WAV file"),
    ("fast.wav", lambda p: write_wav(p, chirp(0.1), rate=22050), "sampled at 22050 Hz; speech input is 16000 Hz"),
    ("stereo.wav", lambda p: write_wav(p, np.stack([chirp(0.1)] * 2, axis=1)), "2 channels; speech input is mono"),
    ("text.wav", lambda p: p.write_text("not audio"), "cannot read as audio"),
    ("empty.wav", lambda p: write_wav(p, np.zeros(0, dtype=np.float32)), "no samples"),
    ("gone.wav", lambda p: None, "no such file"),
])
def test_bad_audio_is_a_data_error_naming_the_file(tmp_path: Path, name: str, write, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / name
    write(path)
    with pytest.raises(DataError) as error:
        read_wav(path)
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)
    assert "\n" not in str(error.value)


def test_audio_list_paths_are_relative_to_it_and_errors_name_the_line(tmp_path: Path) -> None:
    (tmp_path / "clips").mkdir()
    write_wav(tmp_path / "clips" / "a.wav", chirp(0.2))
    listing = tmp_path / "list.tsv"
    listing.write_text("clips/a.wav\thello there\textra\n\n", encoding="utf-8")
    pairs = read_audio_list(listing)
    assert [(pair.src, pair.tgt, pair.origin) for pair in pairs] == [
        (str(tmp_path / "clips" / "a.wav"), "hello there", f"{listing}:1")]
    for text, message in [("clips/a.wav\thi\nclips/a.wav hi\n", f"{listing}:2: expected audio.wav<TAB>transcript"),
                          ("clips/b.wav\thi\n", f"{listing}:1: no such audio file 'clips/b.wav'"),
                          ("clips/a.wav\t \n", f"{listing}:1: empty transcript")]:
        listing.write_text(text, encoding="utf-8")
        with pytest.raises(DataError, match=message):
            read_audio_list(listing)


def test_an_unreadable_file_in_a_list_names_the_line_and_the_file(tmp_path: Path) -> None:
    write_wav(tmp_path / "fast.wav", chirp(0.1), rate=8000)
    (tmp_path / "list.tsv").write_text("fast.wav\thi\n", encoding="utf-8")
    pair = read_audio_list(tmp_path / "list.tsv")[0]
    with pytest.raises(DataError, match=rf"^{tmp_path}/list.tsv:1: {tmp_path}/fast.wav: sampled at 8000 Hz"):
        load_frames(pair.src, AudioConfig(), pair.origin)


# ---- features

def test_log_mel_equals_librosa_and_normalisation_is_per_feature(tmp_path: Path) -> None:
    audio = AudioConfig(n_mels=40, n_fft=512, win_length=400, hop_length=160)
    samples = read_wav(write_wav(tmp_path / "a.wav", chirp(0.5)))
    features = log_mel(samples, audio)
    assert features.shape == (1 + len(samples) // audio.hop_length, audio.n_mels)
    reference = librosa.power_to_db(librosa.feature.melspectrogram(
        y=samples, sr=16000, n_fft=512, hop_length=160, win_length=400, n_mels=40))  # (n_mels, T)
    np.testing.assert_allclose(features, reference.T, rtol=1e-5, atol=1e-4)
    normalised = normalise(features)
    np.testing.assert_allclose(normalised.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(normalised.std(axis=0), 1.0, atol=1e-3)
    frames = load_frames(tmp_path / "a.wav", audio)
    assert frames.dtype == np.float32 and np.allclose(frames, normalised)


# ---- the encoder

def test_subsampling_keeps_one_frame_in_four_rounding_up() -> None:
    subsampling = ConvSubsampling(features=13, channels=3, size=5)
    lengths = torch.arange(1, 12)
    vectors, subsampled = subsampling(torch.randn(len(lengths), 11, 13), lengths)
    assert subsampled.tolist() == [math.ceil(math.ceil(n / 2) / 2) for n in range(1, 12)]
    assert vectors.shape == (11, 3, 5)


def tiny_speech_model(tgt_vocab_size: int = 9) -> SpeechSeq2Seq:
    torch.manual_seed(0)
    return SpeechSeq2Seq(TINY_MODEL, TINY_AUDIO, tgt_vocab_size).eval()


def test_a_padded_batch_encodes_and_decodes_as_each_utterance_alone() -> None:
    model = tiny_speech_model()
    utterances = [torch.randn(length, TINY_AUDIO.n_mels) for length in (37, 8, 21, 1)]
    batch = collate([Example(frames, [0]) for frames in utterances])
    assert batch.src.shape == (4, 37, TINY_AUDIO.n_mels) and batch.src_lengths.tolist() == [37, 8, 21, 1]
    memory = model.encode(batch.src, batch.src_lengths)
    assert memory.mask.sum(dim=1).tolist() == [10, 2, 6, 1]
    options = DecodingOptions(max_length=6)
    together = decode(model, batch.src, batch.src_lengths, options)
    for row, frames in enumerate(utterances):
        alone = model.encode(frames.unsqueeze(0), torch.tensor([len(frames)]))
        width = alone.outputs.size(1)
        assert torch.allclose(memory.outputs[row, :width], alone.outputs[0], atol=1e-5)
        assert all(torch.allclose(part[:, row], own[:, 0], atol=1e-5) for part, own in zip(memory.final, alone.final,
                                                                                            strict=True))
        single = decode(model, frames.unsqueeze(0), torch.tensor([len(frames)]), options)[0][0]
        assert together[row][0].tokens == single.tokens
        assert together[row][0].log_prob == pytest.approx(single.log_prob, abs=1e-4)


def test_spec_augment_masks_bands_inside_each_utterance_and_only_in_training() -> None:
    torch.manual_seed(0)
    audio = AudioConfig(n_mels=16, time_masks=2, time_mask_width=3, freq_masks=1, freq_mask_width=4)
    frames, lengths = torch.randn(64, 30, 16) + 10.0, torch.randint(1, 31, (64,))
    masked = spec_augment(frames, lengths, audio) == 0.0  # (B, S, F)
    whole_frames, whole_channels = masked.all(dim=2), masked.all(dim=1)  # (B, S), (B, F)
    assert bool((masked == (whole_frames[:, :, None] | whole_channels[:, None, :])).all())  # bands, nothing else
    assert int(whole_channels.sum(dim=1).max()) <= 4 and int(whole_channels.sum()) > 0
    assert int(whole_frames.sum(dim=1).max()) <= 6 and int(whole_frames.sum()) > 0
    assert not bool((whole_frames & (torch.arange(30)[None, :] >= lengths[:, None])).any())  # never in the padding
    model = SpeechSeq2Seq(TINY_MODEL, audio, 9)
    utterance, length = frames[:1], torch.tensor([30])
    plain = model.eval().encode(utterance, length).outputs
    assert torch.equal(model.encode(utterance, length).outputs, plain)
    model.train()
    assert sum(not torch.equal(model.encode(utterance, length).outputs, plain) for _ in range(5)) >= 3


def test_speech_config_rules() -> None:
    for overrides, message in [(["model.copy=true"],
                                "model.copy and model.share_embeddings do not apply to task speech"),
                               (["train.metric=bleu"], "train.metric=bleu does not apply to task speech"),
                               (["data.audio.win_length=600"], "must not exceed data.audio.n_fft"),
                               (["model.conv_channels=0"], "model.conv_channels must be at least 1"),
                               (["model.ctc_weight=1.5"], r"model.ctc_weight must be in \[0, 1\], not 1.5")]:
        with pytest.raises(ConfigError, match=message):
            registry.validate(apply_overrides(Config(task="speech"), overrides))
    registry.validate(apply_overrides(Config(task="speech"), ["train.metric=cer", "data.audio.time_masks=2",
                                                              "model.ctc_weight=0.3"]))
    with pytest.raises(ConfigError, match=r"model\.ctc_weight applies to task speech only, not seq2seq"):
        registry.validate(apply_overrides(Config(), ["model.ctc_weight=0.3"]))


@pytest.mark.slow
def test_the_base_install_imports_no_audio_library() -> None:
    code = "import sys, seq2seq.cli, seq2seq.tasks.speech; print(sorted({'librosa', 'soundfile'} & set(sys.modules)))"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert found.strip() == "[]"


# ---- learning words spoken by espeak-ng

@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight words in three training voices, the same words in a held-out voice, and a model trained on them
    through the command line (run/)."""
    if not espeak_available():
        pytest.skip("espeak-ng is not installed")
    folder = tmp_path_factory.mktemp("speech")
    write_speech_list(folder, "train", [(word, voice) for voice in TRAIN_VOICES for word in WORDS], seed=1)
    write_speech_list(folder, "held_out", [(word, HELD_OUT_VOICE) for word in WORDS], seed=2)
    code, out, err = run_cli("train", "--task", "speech", "--train", folder / "train.tsv", "--dev",
                             folder / "held_out.tsv", "--test", folder / "held_out.tsv", "--out", folder / "run",
                             "--epochs", "150", *TINY, "train.eval_every=50")
    assert code == 0, err
    assert "CER = " in out and "seq2seq transcribe --model" in out
    return folder


def test_a_tiny_model_learns_the_words_and_hears_them_in_a_new_voice(spoken: Path) -> None:
    transcriber = api.load(spoken / "run")
    assert isinstance(transcriber, SpeechTranscriber)
    train = read_audio_list(spoken / "train.tsv")
    assert transcriber.transcribe([pair.src for pair in train]) == [pair.tgt for pair in train]
    held_out = transcriber.evaluate(read_audio_list(spoken / "held_out.tsv"))
    config = transcriber.config
    torch.manual_seed(0)
    untrained = SpeechTranscriber(SpeechSeq2Seq(config.model, config.data.audio, len(transcriber.vocab)).eval(),
                                  config, transcriber.tokenizer, transcriber.vocab, transcriber.device,
                                  transcriber.target_lengths)
    before = untrained.evaluate(read_audio_list(spoken / "held_out.tsv"))
    print(f"held-out voice {HELD_OUT_VOICE}: {held_out} (untrained: {before})")
    assert held_out["cer"] <= 0.5 * before["cer"]


def test_transcribe_prints_one_line_per_file(spoken: Path) -> None:
    files = [spoken / "held_out" / name for name in ("00003.wav", "00001.wav", "00003.wav")]
    code, out, err = run_cli("transcribe", "--model", spoken / "run", *files)
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 3 and lines[0] == lines[2]
    code, out, err = run_cli("transcribe", "--model", spoken / "run", files[0], "--strategy", "beam", "--n-best",
                             "2", "--scores")
    assert code == 0, err
    scores = [float(line.split("\t")[0]) for line in out.splitlines()]
    assert len(scores) == 2 and 0.0 >= scores[0] >= scores[1]


def test_evaluate_reports_cer_and_wer(spoken: Path) -> None:
    code, out, err = run_cli("evaluate", "--model", spoken / "run", "--data", spoken / "train.tsv", "--json")
    assert code == 0, err
    assert json.loads(out) == {"cer": 0.0, "wer": 0.0, "exact_match": 100.0}


def test_bad_audio_and_translation_commands_are_one_line_errors(spoken: Path, tmp_path: Path) -> None:
    def transcribe_error(*files: Path) -> str:
        code, _, err = run_cli("transcribe", "--model", spoken / "run", *files)
        return one_line_error(code, err)

    fast = write_wav(tmp_path / "fast.wav", chirp(0.2), rate=44100)
    assert transcribe_error(spoken / "held_out" / "00001.wav", fast) == (
        f"seq2seq transcribe: error: {fast}: sampled at 44100 Hz; speech input is 16000 Hz (resample it)")
    assert "not a WAV file" in transcribe_error(write_wav(tmp_path / "tone.flac", chirp(0.2), file_format="FLAC"))
    with pytest.raises(CheckpointError, match="a speech model, not a translation model"):
        api.load_translator(spoken / "run")


# ---- joint CTC-attention

@pytest.fixture(scope="module")
def spoken_ctc(spoken: Path) -> Path:
    """The model of `spoken` trained again with a CTC head (half the loss) and longer (CTC says only blanks at first),
    in run_ctc/."""
    code, _, err = run_cli("train", "--task", "speech", "--train", spoken / "train.tsv", "--dev",
                           spoken / "held_out.tsv", "--out", spoken / "run_ctc", "--epochs", "400", *TINY,
                           "train.eval_every=50", "model.ctc_weight=0.5")
    assert code == 0, err
    return spoken / "run_ctc"


@pytest.mark.slow
def test_the_joint_loss_mixes_attention_and_ctc_by_the_weight(spoken_ctc: Path) -> None:
    transcriber = api.load(spoken_ctc)
    model, pairs = transcriber.model, read_audio_list(spoken_ctc.parent / "train.tsv")[:4]
    frames = [torch.from_numpy(load_frames(pair.src, transcriber.config.data.audio)) for pair in pairs]
    targets = [transcriber.vocab.encode(transcriber.tokenizer.tokenize(pair.tgt)) for pair in pairs]
    batch = collate([Example(utterance, [BOS_ID, *target, EOS_ID])
                     for utterance, target in zip(frames, targets, strict=True)])
    with torch.no_grad():
        joint, count = sequence_loss(model, batch)
        head, model.ctc = model.ctc, None  # the attention loss alone
        attention, _ = sequence_loss(model, batch)
        model.ctc = head
        memory = model.encode(batch.src, batch.src_lengths)
        frames_left = memory.mask.sum(dim=1).tolist()
        ctc = sum(float(torch.nn.functional.ctc_loss(model.ctc_log_probs(memory)[row, :frames_left[row]],
                                                     torch.tensor(target), [frames_left[row]], [len(target)],
                                                     reduction="sum"))
                  for row, target in enumerate(targets))
    assert count == sum(len(target) + 1 for target in targets)
    assert float(joint) == pytest.approx(0.5 * float(attention) + 0.5 * ctc, rel=1e-4)


@pytest.mark.slow
def test_a_ctc_model_transcribes_with_its_head_alone_and_jointly(spoken_ctc: Path) -> None:
    transcriber = api.load(spoken_ctc)
    train = read_audio_list(spoken_ctc.parent / "train.tsv")
    references = [pair.tgt for pair in train]
    assert transcriber.model.ctc_weight == 0.5 and api.load(spoken_ctc.parent / "run").model.ctc is None
    for options, most in (({"strategy": "ctc"}, 25.0), ({}, 5.0), ({"strategy": "beam", "beam_size": 3}, 5.0),
                          ({"ctc_weight": 0.0}, 5.0)):  # the head alone is the slower learner
        transcripts = transcriber.transcribe([pair.src for pair in train], **options)
        cer = score_transcripts(transcripts, references)["cer"]
        print(options, cer)
        assert cer <= most, options
    code, out, err = run_cli("evaluate", "--model", spoken_ctc, "--data", spoken_ctc.parent / "held_out.tsv",
                             "--json", "--strategy", "beam", "--ctc-weight", "0.3")
    assert code == 0, err
    assert 0.0 <= json.loads(out)["cer"] <= 100.0
    code, _, err = run_cli("transcribe", "--model", spoken_ctc.parent / "run",
                           spoken_ctc.parent / "held_out" / "00001.wav", "--strategy", "ctc")
    assert one_line_error(code, err).endswith("strategy ctc needs a model with a CTC head (a speech model trained "
                                              "with model.ctc_weight above 0)")


def test_features_are_computed_once_and_read_back_until_the_file_changes(tmp_path: Path) -> None:
    pairs = [Pair(str(write_wav(tmp_path / f"{n}.wav", chirp(0.3, seed=n))), "x", f"list:{n}") for n in range(3)]
    cache_file = tmp_path / "run" / CACHE_NAME  # the folder is made when the frames are written
    first = FeatureCache(cache_file, TINY_AUDIO)
    computed = [first.load(pair) for pair in pairs]
    expected = [torch.from_numpy(load_frames(pair.src, TINY_AUDIO)) for pair in pairs]
    assert first.added == 3 and all(map(torch.equal, computed, expected))
    first.save()
    again = FeatureCache(cache_file, replace(TINY_AUDIO, time_masks=2))  # masks do not change the features
    assert all(torch.equal(again.load(pair), frames) for pair, frames in zip(pairs, computed, strict=True))
    assert again.added == 0
    write_wav(Path(pairs[1].src), chirp(0.4, seed=9))
    assert again.load(pairs[1]).shape[0] > computed[1].shape[0] and again.added == 1
    assert FeatureCache(cache_file, replace(TINY_AUDIO, n_mels=8)).load(pairs[0]).shape[1] == 8
    again.save()
    only_first = FeatureCache(cache_file, TINY_AUDIO)
    assert only_first.load(pairs[0]).shape == computed[0].shape and only_first.added == 0
    only_first.save()  # the files it was not asked for (a changed list) are dropped
    assert len(FeatureCache(cache_file, TINY_AUDIO).frames) == 1
    cache_file.write_bytes(b"not a safetensors file")
    damaged = FeatureCache(cache_file, TINY_AUDIO)  # computed again, with a warning
    assert torch.equal(damaged.load(pairs[0]), computed[0]) and damaged.added == 1
    assert not list(cache_file.parent.glob("*.partial"))
