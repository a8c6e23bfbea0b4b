"""Configuration: nested dataclasses are the only home of defaults; YAML files and key.path=value override them."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from seq2seq.errors import ConfigError

CHOICES: dict[str, tuple[str, ...]] = {
    "kind": ("char", "word", "subword"),
    "rnn": ("lstm", "gru"),
    "attention": ("bahdanau", "dot", "general"),
    "precision": ("auto", "fp32", "bf16", "fp16"),
    "metric": ("loss", "bleu", "chrf", "exact_match", "wer", "cer", "rouge1", "rouge2", "rougeL",
               "accuracy", "macro_f1"),
    "lr_schedule": ("plateau", "linear", "cosine", "inverse_sqrt"),
    "positions": ("sinusoidal", "learned"),
    "entries": ("file", "line", "delimiter"),
    "pooling": ("last", "mean", "max", "attention", "concat"),
    "truncation": ("head", "head_tail"),
}


@dataclass
class TokenizerConfig:
    """How one side (source or target) is split into tokens and mapped to ids."""

    kind: str = "char"  # tokens: characters, words (Moses rules) or subwords (sentencepiece)
    lowercase: bool = False  # lowercase the text before splitting it
    split_punctuation: bool = True  # word level: Moses-style tokenization instead of plain whitespace
    language: str = "en"  # word level: Moses rules for this language
    min_freq: int = 1  # tokens seen fewer times in training map to <unk>
    max_size: int = 0  # the most frequent tokens kept in the vocabulary; 0 = no limit
    subword_vocab_size: int = 8000  # subword level: sentencepiece vocabulary size


@dataclass
class AudioConfig:
    """Speech (task speech): log-mel features of 16 kHz mono WAV files, perturbed copies of the training utterances,
    and SpecAugment masks while training."""

    n_mels: int = 80  # mel filterbank channels per frame
    n_fft: int = 512  # FFT size in samples (a 25 ms window is 400 samples)
    win_length: int = 400  # window length in samples
    hop_length: int = 160  # samples between frames (10 ms)
    time_masks: int = 0  # SpecAugment while training: time masks per utterance (0 = off)
    time_mask_width: int = 20  # the most frames one time mask covers
    freq_masks: int = 0  # frequency masks per utterance (0 = off)
    freq_mask_width: int = 8  # the most mel channels one frequency mask covers
    cache_features: bool = True  # keep the features of the training and dev files in the run (features.safetensors)
    augment_copies: int = 0  # perturbed copies of each training utterance added beside it (0 = off)
    speed_range: list[float] = field(  # copies: speed factor drawn in [low, high], by resampling (the pitch moves
        default_factory=lambda: [0.9, 1.1])  # with it, as in Kaldi's recipes); [] = none
    pitch_semitones: float = 2.0  # copies: pitch shift drawn in [-x, x] semitones, length kept; 0 = none
    noise_snr_range: list[float] = field(  # copies: white noise at a signal-to-noise ratio drawn in [low, high] dB;
        default_factory=lambda: [10.0, 30.0])  # [] = none


@dataclass
class DataConfig:
    """Tokenization per side, length filtering and batching."""

    src: TokenizerConfig = field(default_factory=TokenizerConfig)  # the source side (classify: the text)
    tgt: TokenizerConfig = field(default_factory=TokenizerConfig)  # the target side
    max_src_length: int = 100  # tokens; longer pairs are filtered out of training (and counted)
    max_tgt_length: int = 100  # tokens; longer pairs are filtered out of training (and counted)
    truncate_src: bool = False  # cut longer sources to max_src_length (training and use) instead of dropping them
    truncation: str = "head"  # classify: a longer text keeps its first max_src_length tokens; head_tail: both ends
    dev_size: int = 0  # when no dev file is given, hold out this many training pairs (lm: windows) (0 = none)
    batch_size: int = 64  # sentences per batch
    batch_tokens: int = 0  # target tokens per batch, padding included (fairseq's --max-tokens); 0 = batch_size
    bucket: bool = True  # group sentences of similar length to avoid padding
    window: int = 100  # lm: tokens per training window (truncated backpropagation through time)
    entries: str = "file"  # lm: one entry (<s> ... </s>) is a whole file, a line, or text between delimiter lines
    entry_delimiter: str = "%"  # lm, entries=delimiter: the line that separates entries (fortune files)
    audio: AudioConfig = field(default_factory=AudioConfig)  # speech: features and augmentation


@dataclass
class ModelConfig:
    """Encoder-decoder architecture."""

    arch: str = "attention"  # a registered kind: RNN context, repeat (final encoder state), attention; transformer
    rnn: str = "lstm"  # the recurrent cell of encoder and decoder
    embedding_size: int = 256  # size of the token embeddings
    hidden_size: int = 256  # encoder output size (split over directions) and decoder size
    num_layers: int = 1  # stacked RNN layers, encoder and decoder
    bidirectional: bool = True  # the encoder reads the source both ways
    dropout: float = 0.1  # between layers and on embeddings and outputs, while training
    attention: str = "general"  # arch attention: the score, additive (Bahdanau) or dot and general (Luong)
    input_feeding: bool = True  # arch attention: feed the last attentional vector to the next step (Luong)
    one_hot: bool = False  # lm: one-hot input vectors instead of learned embeddings
    adaptive_softmax: list[int] = field(default_factory=list)  # lm: ids where tail clusters start; [] = full softmax
    copy: bool = False  # attention: pointer-generator; may copy source tokens, unknown ones too (one shared vocabulary)
    coverage: bool = False  # attention: the sum of past attention feeds the scores, and a loss penalises re-attending
    pooling: str = "attention"  # classify: one vector per text: last, mean, max, attention or concat (last, mean, max)
    bag_of_words: bool = False  # classify: removed; runs trained with its TF-IDF linear SVM (WordScores) still load
    init: str = ""  # classify, seq2seq: a language model (run or checkpoint) gives tokens, vocabulary, embeddings, RNN
    conv_channels: int = 32  # speech: channels of the two stride-2 convolutions before the encoder RNN
    ctc_weight: float = 0.0  # speech: weight of a CTC loss on the encoder (joint CTC-attention); 0 = no CTC head
    heads: int = 4  # transformer: attention heads per layer (hidden_size must be a multiple)
    feedforward_size: int = 1024  # transformer: inner size of each layer's feed-forward block
    positions: str = "sinusoidal"  # transformer: fixed sinusoidal or learned position embeddings
    max_positions: int = 1024  # transformer, learned positions: positions past this share the last one's embedding
    attention_layer: int = 0  # transformer: the decoder layer whose cross-attention is shown, from the top (0: last)
    tie_embeddings: bool = False  # transformer: the output layer's weights are the target token embeddings
    share_embeddings: bool = False  # transformer: one vocabulary of both sides, one embedding matrix for both


@dataclass
class TrainConfig:
    """Optimisation, schedule, stopping and run control."""

    epochs: int = 20  # passes over the training data; 0 = no limit
    max_steps: int = 0  # 0 = no limit
    max_time: float = 0.0  # seconds of wall time from the start of the run, setup included; 0 = no limit
    lr: float = 1e-3  # learning rate of Adam (fused)
    clip_norm: float = 5.0  # gradients are rescaled when their norm is above this
    label_smoothing: float = 0.0  # share of the target probability spread over the vocabulary
    coverage_weight: float = 1.0  # model.coverage: weight of the coverage loss sum_t sum_s min(a_ts, c_ts)
    teacher_forcing: float = 1.0  # probability of feeding the reference token (1 = always)
    lr_schedule: str = "plateau"  # plateau: on a stalled dev metric; linear, cosine: to 0 over the budget; inverse_sqrt
    warmup_steps: int | None = None  # updates of linear warm-up before the schedule; unset: 0, a transformer 400
    lr_decay: float = 0.5  # multiply the learning rate by this when the dev metric plateaus
    lr_patience: int = 2  # evaluations without improvement before decaying
    early_stopping: int = 6  # evaluations without improvement before stopping; 0 = never
    eval_every: int = 0  # steps between dev evaluations; 0 = once per epoch
    eval_max_batches: int = 0  # dev batches per evaluation; 0 = whole dev set
    metric: str = "loss"  # dev metric for early stopping and the best checkpoint
    checkpoint_every: int = 500  # steps between 'last' checkpoints (also written at every evaluation)
    seed: int = 1  # initialisation, batch order, dropout and samples: the same seed gives the same run
    device: str = "auto"  # auto = cuda when present, else cpu
    precision: str = "auto"  # auto = bf16 autocast on CUDA and on CPUs with native bf16, else fp32
    threads: int = 0  # CPU threads; 0 = torch's default
    accumulate: int = 1  # batches summed into one update; the effective batch is accumulate x batch x ranks
    class_weights: bool = False  # classify: weight each label's loss by its inverse training frequency
    layer_lr_decay: float = 1.0  # classify: each layer's learning rate is the one above's divided by this (1: one rate)
    unfreeze_every: int = 0  # classify: updates between unfreezing layers, head first; 0 = all train from the start
    keep_last: int = 0  # also keep the last K 'last' checkpoints as checkpoint-STEP.safetensors (0 = none)
    tensorboard: bool = False  # write scalars, dev samples and attention images to <run dir>/tensorboard/
    sample_temperatures: list[float] = field(default_factory=lambda: [0.5, 1.0, 1.2])  # lm: a sample each, per eval


@dataclass
class Config:
    """Everything a run needs; saved resolved in every checkpoint."""

    task: str = "seq2seq"  # a registered task: seq2seq, lm, classify or speech (--task)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (JSON/YAML serialisable)."""
        return dataclasses.asdict(self)


def config_from_dict(values: dict[str, Any], source: str = "config") -> Config:
    """Build a Config from a nested dict; unknown keys and bad values raise ConfigError."""
    config = Config()
    for key, value in _flatten(values):
        set_value(config, key, value, source)
    return config


def load_config(path: str | Path) -> Config:
    """Read a YAML config file."""
    return config_from_dict(config_values(path), str(path))


def config_values(path: str | Path) -> dict[str, Any]:
    """The mapping a YAML config file holds, as written (only the keys it sets)."""
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: cannot read config: {str(error).splitlines()[0]}") from error
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a config must be a mapping of keys to values")
    return values


def save_config(config: Config, path: str | Path) -> None:
    """Write the resolved config as YAML."""
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")


def apply_overrides(config: Config, overrides: list[str]) -> Config:
    """Apply `section.key=value` strings (values parsed as YAML scalars)."""
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r}: expected key=value, e.g. train.lr=0.0005")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as error:
            problem = str(error).splitlines()[0]
            raise ConfigError(f"override {item!r}: cannot parse the value ({problem})") from error
        set_value(config, key.strip(), value, "override")
    return config


def set_value(config: Config, key: str, value: Any, source: str) -> None:
    """Set one dotted key, checking that it exists and that the value has the right type and range."""
    target: Any = config
    *parents, name = key.split(".")
    for part in parents:
        if not dataclasses.is_dataclass(target) or part not in _field_types(target):
            raise ConfigError(f"{source}: unknown config key {key!r}")
        target = getattr(target, part)
    fields = _field_types(target) if dataclasses.is_dataclass(target) else {}
    if name not in fields or dataclasses.is_dataclass(getattr(target, name)):
        raise ConfigError(f"{source}: unknown config key {key!r}")
    setattr(target, name, _coerce(value, fields[name], key, source))


def _field_types(instance: Any) -> dict[str, Any]:
    hints = typing.get_type_hints(type(instance))
    return {f.name: hints[f.name] for f in dataclasses.fields(instance)}


def _coerce(value: Any, expected: Any, key: str, source: str) -> Any:
    name = key.rsplit(".", 1)[-1]
    if isinstance(expected, types.UnionType):
        if value is None and type(None) in typing.get_args(expected):
            return None  # unset: the default the field's comment names
        expected = next(t for t in typing.get_args(expected) if t is not type(None))
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if expected is float and isinstance(value, str):  # YAML 1.1 reads 5e-4 (no dot) as a string
        with contextlib.suppress(ValueError):
            value = float(value)
    if typing.get_origin(expected) is list:
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {key} must be a list, e.g. [0.5, 1.0], got {value!r}")
        return [_coerce(item, typing.get_args(expected)[0], key, source) for item in value]
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ConfigError(f"{source}: {key} must be {expected.__name__}, got {value!r}")
    if name in CHOICES and value not in CHOICES[name]:
        raise ConfigError(f"{source}: {key} must be one of {', '.join(CHOICES[name])}, got {value!r}")
    if isinstance(value, int | float) and value < 0:
        raise ConfigError(f"{source}: {key} must not be negative, got {value!r}")
    return value


def _flatten(values: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        items.extend(_flatten(value, path + ".") if isinstance(value, dict) else [(path, value)])
    return items


def validate(config: Config) -> None:
    """Cross-field checks that single values cannot express and that hold for every task (each task checks its
    own: `seq2seq.tasks.registry.validate`)."""
    if not 0.0 <= config.model.dropout < 1.0:
        raise ConfigError(f"model.dropout must be in [0, 1), got {config.model.dropout}")
    if not 0.0 <= config.train.teacher_forcing <= 1.0:
        raise ConfigError(f"train.teacher_forcing must be in [0, 1], got {config.train.teacher_forcing}")
    for name in ("hidden_size", "embedding_size", "num_layers", "heads", "max_positions"):
        if getattr(config.model, name) < 1:
            raise ConfigError(f"model.{name} must be at least 1")
    if config.train.lr_schedule in ("linear", "cosine") and not (config.train.max_steps or config.train.max_time):
        raise ConfigError(f"train.lr_schedule={config.train.lr_schedule} needs a budget to decay over: "
                          "train.max_steps or train.max_time")
    if config.data.batch_size < 1:
        raise ConfigError("data.batch_size must be at least 1")
    if config.train.accumulate < 1:
        raise ConfigError("train.accumulate must be at least 1")
    if config.train.checkpoint_every < 1:
        raise ConfigError("train.checkpoint_every must be at least 1")
    for name in ("lr", "clip_norm"):
        if getattr(config.train, name) <= 0:
            raise ConfigError(f"train.{name} must be positive, got {getattr(config.train, name)}")
    if not 0.0 < config.train.lr_decay < 1.0:
        raise ConfigError(f"train.lr_decay must be in (0, 1), got {config.train.lr_decay}")
    if config.train.layer_lr_decay < 1.0:
        raise ConfigError(f"train.layer_lr_decay must be at least 1, got {config.train.layer_lr_decay}")


def check_encoder_size(config: Config) -> None:
    """A bidirectional encoder splits model.hidden_size between its two directions."""
    if config.model.bidirectional and config.model.hidden_size % 2:
        raise ConfigError("model.hidden_size must be even with a bidirectional encoder")


TASK_OPTIONS: dict[str, dict[str, Any]] = {
    "classify": {"train.class_weights": False, "model.bag_of_words": False, "model.init": "",
                 "train.layer_lr_decay": 1.0, "train.unfreeze_every": 0,
                 "data.truncation": "head"},
    "lm": {"model.adaptive_softmax": []},
    "seq2seq": {"model.init": ""},
    "speech": {"model.ctc_weight": 0.0, "data.audio.augment_copies": 0}}
"""The options of one task only, with their values that leave them off."""


def refuse_other_tasks_options(config: Config) -> None:
    """The options of the other tasks (`TASK_OPTIONS`) are off: they do not apply to config.task."""
    owners: dict[str, list[str]] = {}
    for task, options in TASK_OPTIONS.items():
        for key in options:
            owners.setdefault(key, []).append(task)
    for key, tasks in owners.items():
        *sections, name = key.split(".")
        off = TASK_OPTIONS[tasks[0]][key]
        if config.task not in tasks and getattr(functools.reduce(getattr, sections, config), name) != off:
            raise ConfigError(f"{key} applies to task{'s' if len(tasks) > 1 else ''} {' and '.join(tasks)} only, not "
                              f"{config.task}")


def shares_vocabulary(model: ModelConfig) -> bool:
    """Whether source and target tokens are read with one vocabulary: copying makes source tokens target tokens,
    shared embeddings make one matrix of them."""
    return model.copy or model.share_embeddings


def check_shared_embeddings(config: Config) -> None:
    """Shared source and target embeddings need one vocabulary of tokens of one kind."""
    if config.model.share_embeddings and config.data.src.kind != config.data.tgt.kind:
        raise ConfigError(f"model.share_embeddings needs the same token kind on both sides (data.src.kind="
                          f"{config.data.src.kind}, data.tgt.kind={config.data.tgt.kind})")


def check_copy_and_coverage(config: Config) -> None:
    """Copying and coverage act on the attention weights; copying maps source tokens to the target vocabulary."""
    if not (config.model.copy or config.model.coverage):
        return
    if config.model.arch != "attention":
        raise ConfigError(f"model.copy and model.coverage need model.arch=attention, not {config.model.arch}")
    if config.model.copy and config.train.label_smoothing:
        raise ConfigError("train.label_smoothing does not apply with model.copy (its loss is over the copy mixture)")
    if config.model.copy and config.data.src.kind != config.data.tgt.kind:
        raise ConfigError(f"model.copy needs the same token kind on both sides (data.src.kind={config.data.src.kind},"
                          f" data.tgt.kind={config.data.tgt.kind}): copied source tokens become target tokens")


def source_truncation(config: Config) -> int:
    """Source tokens kept per input (0 = all): data.max_src_length where data.truncate_src says to cut."""
    return config.data.max_src_length if config.data.truncate_src else 0
