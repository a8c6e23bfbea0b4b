"""The speech recognition API: train a SpeechSeq2Seq on transcribed WAV files, load it, transcribe and score it
(`transcribing.Transcribing`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from seq2seq.config import Config, check_copy_and_coverage, check_encoder_size, refuse_other_tasks_options
from seq2seq.data.audio import read_audio_list
from seq2seq.data.augmentation import check_augmentation
from seq2seq.data.examples import Example
from seq2seq.data.feature_cache import CACHE_NAME, FeatureCache
from seq2seq.data.metadata import ModelMetadata
from seq2seq.data.pairs import Pair, as_pair, split_dev
from seq2seq.data.preparation import prepare_speech
from seq2seq.data.tokenizers import Tokenizer
from seq2seq.data.vocab import Vocab
from seq2seq.errors import ConfigError
from seq2seq.models.objectives import sequence_losses
from seq2seq.models.speech_encoder import SpeechSeq2Seq
from seq2seq.tasks import registry
from seq2seq.tasks.on_device import OnDevice
from seq2seq.tasks.registry import Task, register
from seq2seq.tasks.transcribing import Transcribing, score_transcripts
from seq2seq.training.objective import Scorer
from seq2seq.training.trainer import Trainer, run_training, start_run


@dataclass
class SpeechTranscriber(OnDevice, Transcribing):
    """A trained SpeechSeq2Seq with its transcript tokenizer and vocabulary: 16 kHz mono WAV files in, text out
    (`Transcribing`), decoded on its device."""

    model: SpeechSeq2Seq
    config: Config
    tokenizer: Tokenizer
    vocab: Vocab
    device: torch.device
    target_lengths: dict[str, float] = field(default_factory=dict)  # of the training transcripts, in tokens
    precision: str | None = None  # autocast while decoding (auto, fp32, bf16, fp16); None: the training precision


def load_transcriber(path: str | Path, device: str = "auto", precision: str | None = None) -> SpeechTranscriber:
    """Load a trained speech model from its run directory (best checkpoint) or a checkpoint file."""
    return registry.load(path, TASK, device, precision)  # type: ignore[no-any-return]


def build_model(metadata: ModelMetadata) -> SpeechSeq2Seq:
    """The untrained SpeechSeq2Seq of a checkpoint (or of prepared transcripts)."""
    return SpeechSeq2Seq(metadata.config.model, metadata.config.data.audio, len(metadata.vocabs[0]))


def transcriber_of(model: nn.Module, metadata: ModelMetadata, device: torch.device, precision: str | None = None
                   ) -> SpeechTranscriber:
    """model with the transcript tokenizer and vocabulary of metadata."""
    return SpeechTranscriber(model, metadata.config, metadata.tokenizers[0], metadata.vocabs[0], device,  # type: ignore[arg-type]
                             metadata.target_lengths, precision)


def train_speech(config: Config, train_pairs: Sequence[Pair], dev_pairs: Sequence[Pair] = (),
                 out_dir: str | Path = "runs/speech", resume: bool = False) -> SpeechTranscriber:
    """Build a transcript tokenizer, vocabulary and SpeechSeq2Seq from transcribed WAV files (Pair(path,
    transcript), e.g. from `audio.read_audio_list`), fit it, and return the best model. Without dev pairs,
    data.dev_size training utterances are held out (when set)."""
    started = time.monotonic()
    config = replace(config, task="speech")
    check_config(config)
    out = Path(out_dir)
    saved = start_run(config, out, resume)
    if not dev_pairs and config.data.dev_size:
        train_pairs, dev_pairs = split_dev(list(train_pairs), config.data.dev_size, config.train.seed)
    cache = FeatureCache(out / CACHE_NAME if config.data.audio.cache_features else None, config.data.audio)
    prepared = prepare_speech(config, train_pairs, dev_pairs, saved.metadata if saved else None, cache)
    torch.manual_seed(config.train.seed)
    model = build_model(prepared.metadata)
    trainer = Trainer(model, sequence_losses(config.train), config, prepared.examples,
                      prepared.dev_examples, out, prepared.metadata.to_dict(),
                      _scorer(prepared.metadata, prepared.dev_examples, dev_pairs))
    run_training(trainer, saved, started)
    return load_transcriber(out, config.train.device)


def _scorer(metadata: ModelMetadata, dev_examples: Sequence[Example], dev_pairs: Sequence[Pair]) -> Scorer | None:
    """The Trainer's scorer for train.metric cer, wer or exact_match: greedy transcripts of the dev utterances (with
    train.eval_max_batches, of the first that many batches' worth)."""
    config = metadata.config
    if config.train.metric == "loss":
        return None
    if not dev_examples:
        raise ConfigError(f"train.metric={config.train.metric} needs dev data (--dev or data.dev_size)")
    limit = config.train.eval_max_batches * config.data.batch_size or None  # the first utterances only
    frames, references = [example.src for example in dev_examples][:limit], [pair.tgt for pair in dev_pairs][:limit]

    def score(model: nn.Module) -> dict[str, float]:
        transcriber = transcriber_of(model, metadata, next(model.parameters()).device)
        return score_transcripts(transcriber.best_transcripts(frames), references)  # type: ignore[arg-type]

    return score


METRICS = ("loss", "cer", "wer", "exact_match")
"""The values of train.metric that score a speech model."""


def check_config(config: Config) -> None:
    """A speech model reads log-mel frames (no source tokens to copy) and writes text."""
    check_encoder_size(config)
    refuse_other_tasks_options(config)
    if config.train.metric not in METRICS:
        raise ConfigError(f"train.metric={config.train.metric} does not apply to task speech (use "
                          f"{', '.join(METRICS)})")
    if config.model.copy or config.model.share_embeddings:
        raise ConfigError("model.copy and model.share_embeddings do not apply to task speech (the source is audio, "
                          "not tokens)")
    check_copy_and_coverage(config)
    audio = config.data.audio
    for name in ("n_mels", "n_fft", "win_length", "hop_length"):
        if getattr(audio, name) < 1:
            raise ConfigError(f"data.audio.{name} must be at least 1")
    if audio.win_length > audio.n_fft:
        raise ConfigError(f"data.audio.win_length={audio.win_length} must not exceed data.audio.n_fft={audio.n_fft}")
    check_augmentation(audio)
    if config.model.conv_channels < 1:
        raise ConfigError("model.conv_channels must be at least 1")
    if not 0.0 <= config.model.ctc_weight <= 1.0:
        raise ConfigError(f"model.ctc_weight must be in [0, 1], not {config.model.ctc_weight}")


def export_runtime(config: Config) -> str:
    """A speech model's export runs on OnnxTranscriber (its features are computed without torch, as in training)."""
    return "transcriber"


TASK = register(Task(
    name="speech", kind="a speech model", command="transcribe", facade=SpeechTranscriber, sides=(1, 1),
    read=lambda config, spec: read_audio_list(spec), item=as_pair, train=train_speech,
    build=build_model, facade_of=transcriber_of, check=check_config,
    columns=lambda config: (("CER %", "cer"), ("WER %", "wer")), use=SpeechTranscriber.transcribe,
    routes=("/v1/transcribe",), export=export_runtime))
