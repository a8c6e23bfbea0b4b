"""Translation (summarization, chat and G2P included): the Translator facade, text in and text out, and the
training of a Seq2Seq on pairs or on a prepared corpus."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import Tensor, nn

from seq2seq.config import (
    CHOICES,
    Config,
    check_copy_and_coverage,
    check_encoder_size,
    check_shared_embeddings,
    refuse_other_tasks_options,
    shares_vocabulary,
)
from seq2seq.data.corpus import open_corpus
from seq2seq.data.datasets import load_pairs
from seq2seq.data.metadata import ModelMetadata
from seq2seq.data.pairs import Batch, Pair, as_pair, split_dev
from seq2seq.data.preparation import Prepared, Sides, prepare_pairs
from seq2seq.data.tokenizers import Tokenizer
from seq2seq.data.vocab import Vocab
from seq2seq.decoding.ensemble import Ensemble, members_of
from seq2seq.decoding.options import DecodingOptions
from seq2seq.decoding.scoring import stepwise_nll
from seq2seq.errors import ConfigError, DataError
from seq2seq.evaluation import metrics, reports
from seq2seq.models import architectures
from seq2seq.models.objectives import sequence_loss, sequence_losses
from seq2seq.models.seq2seq import Seq2Seq
from seq2seq.tasks import registry
from seq2seq.tasks.on_device import OnDevice, inference
from seq2seq.tasks.pretrained import read_language_model, start_translation, translation_as_started, translation_sides
from seq2seq.tasks.registry import Columns, Task, register
from seq2seq.tasks.translating import TextTranslator
from seq2seq.training.board import Sample, Sampler
from seq2seq.training.objective import Scorer
from seq2seq.training.trainer import Trainer, run_training, start_run
from seq2seq.utils.collector import paused_gc

logger = logging.getLogger(__name__)


@dataclass
class Translator(OnDevice, TextTranslator):
    """A trained Seq2Seq (or an Ensemble of them) with its tokenizers and vocabularies: text in, text out."""

    model: Seq2Seq | Ensemble
    config: Config
    tokenizers: tuple[Tokenizer, Tokenizer]
    vocabs: tuple[Vocab, Vocab]
    device: torch.device
    target_lengths: dict[str, float] = field(default_factory=dict)  # of the training targets, in tokens
    precision: str | None = None  # autocast while decoding (auto, fp32, bf16, fp16); None: the training precision

    def _reference_nll(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, tgt_out: Tensor) -> tuple[float, int]:
        """A Seq2Seq reads the references in one teacher-forced pass, an ensemble one step at a time; in fp32."""
        with inference(self.model, "fp32", self.device):
            if isinstance(self.model, Ensemble):
                return stepwise_nll(self.model, src, src_lengths, tgt_in, tgt_out)
            loss, count = sequence_loss(self.model, Batch(src, src_lengths, tgt_in, tgt_out))
        return float(loss), count

    def attends(self) -> bool:
        """Whether the model (every member of an ensemble) has attention weights to show: its state holds them."""
        return all("attention" in member.state_axes() for member in members_of(self.model))


def build_model(metadata: ModelMetadata) -> Seq2Seq:
    """The untrained Seq2Seq of a checkpoint (or of prepared data)."""
    return Seq2Seq(metadata.config.model, len(metadata.vocabs[0]), len(metadata.vocabs[1]))


def translator_of(model: nn.Module, metadata: ModelMetadata, device: torch.device, precision: str | None = None
                  ) -> Translator:
    """model (a Seq2Seq or an Ensemble of them) with the tokenizers and vocabularies of metadata."""
    tokenizers, vocabs = metadata.tokenizers, metadata.vocabs
    return Translator(model, metadata.config, (tokenizers[0], tokenizers[1]), (vocabs[0], vocabs[1]),  # type: ignore[arg-type]
                      device, metadata.target_lengths, precision)


def load_translator(path: str | Path, device: str = "auto", precision: str | None = None) -> Translator:
    """Load a trained translation model from its run directory (best checkpoint) or a checkpoint file."""
    return registry.load(path, TASK, device, precision)  # type: ignore[no-any-return]


def train_translator(config: Config, train_pairs: Sequence[Pair], dev_pairs: Sequence[Pair] = (),
                     out_dir: str | Path = "runs/model", resume: bool = False) -> Translator:
    """Build tokenizers, vocabularies and a model from the training pairs, fit it, and return the best model. With
    model.init, each side that reads a language model's tokens takes its tokenizer, vocabulary, embeddings and RNN
    (`tasks.pretrained`)."""
    started = time.monotonic()
    config = replace(config, task=TASK.name)
    check_config(config)
    out = Path(out_dir)
    saved = start_run(config, out, resume, draws_attention=_draws_attention(config),
                      as_started=translation_as_started)
    config = saved.config if saved else config
    if not dev_pairs and config.data.dev_size:
        train_pairs, dev_pairs = split_dev(list(train_pairs), config.data.dev_size, config.train.seed)
    if not train_pairs:
        raise DataError("no training pairs")
    generator = read_language_model(config) if config.model.init and saved is None else None  # resumed: in the run
    sides: Sides = (None, None)
    if generator:
        config, sides = translation_sides(config, generator, train_pairs)
    with paused_gc():
        prepared = prepare_pairs(config, train_pairs, dev_pairs, saved.metadata if saved else None, sides)
    del train_pairs  # when the caller handed over its only reference, the texts are freed before training
    trainer = _trainer(config, prepared, dev_pairs, out,
                       (lambda model: start_translation(model, generator, sides)) if generator else None)
    del prepared  # the trained weights, gradients and data go before the best checkpoint is loaded
    run_training(trainer, saved, started)
    del trainer
    return load_translator(out, config.train.device)


def train_prepared(config: Config, directory: str | Path, dev_pairs: Sequence[Pair] = (),
                   out_dir: str | Path = "runs/model", resume: bool = False) -> Translator:
    """`train` on a directory written by `seq2seq prepare` (`corpus.prepare_corpus`), without tokenizing: the
    examples are read from its memory-mapped shards; its tokenizers, vocabularies and settings of preparation are
    the run's (`Corpus.training_config`); the dev pairs are dev_pairs, or else those prepared with it."""
    started = time.monotonic()
    out = Path(out_dir)
    corpus = open_corpus(directory)
    config = corpus.training_config(replace(config, task=TASK.name))
    check_config(config)
    if config.model.init:
        raise ConfigError("model.init takes its vocabularies from the language model: train on the pairs, not on a "
                          "prepared corpus (whose vocabularies are made)")
    saved = start_run(config, out, resume, draws_attention=_draws_attention(config))
    dev_pairs = list(dev_pairs) or corpus.dev_pairs()
    prepared = corpus.prepared(config, dev_pairs, saved.metadata if saved else None)
    trainer = _trainer(config, prepared, dev_pairs, out)
    del prepared
    run_training(trainer, saved, started)
    del trainer
    return load_translator(out, config.train.device)


def _trainer(config: Config, prepared: Prepared, dev_pairs: Sequence[Pair], out: Path,
             start: Callable[[Seq2Seq], None] | None = None) -> Trainer:
    """A Trainer of a new Seq2Seq model (initialised from train.seed, then by start) on the prepared examples."""
    torch.manual_seed(config.train.seed)
    model = build_model(prepared.metadata)
    if start is not None:
        start(model)
    scorer = _dev_scorer(prepared.metadata, dev_pairs) if config.train.metric != "loss" else None
    sampler = _dev_samples(prepared.metadata, dev_pairs) if config.train.tensorboard and dev_pairs else None
    return Trainer(model, sequence_losses(config.train), config, prepared.examples,
                   prepared.dev_examples, out, prepared.metadata.to_dict(), scorer, sampler)


def _draws_attention(config: Config) -> bool:
    """Whether the dev samples shown in TensorBoard carry attention weights (`_dev_samples`): the state of the
    configured decoder holds them."""
    return "attention" in architectures.get(config.model.arch).state_axes(config.model)


def _dev_scorer(metadata: ModelMetadata, dev_pairs: Sequence[Pair]) -> Scorer:
    config = metadata.config
    if not dev_pairs:
        raise ConfigError(f"train.metric={config.train.metric} needs dev data (--dev or data.dev_size)")

    def score(model: nn.Module) -> dict[str, float]:
        translator = _training_translator(metadata, model)
        sources, references = metrics.group_references([p.src for p in dev_pairs], [p.tgt for p in dev_pairs])
        outputs = [found[0].text for found in translator.translate_detailed(sources)]
        return metrics.score_corpus(outputs, references, (metrics.metric_group(config.train.metric),))

    return score


def _training_translator(metadata: ModelMetadata, model: nn.Module) -> Translator:
    """A Translator over the model being trained."""
    return translator_of(model, metadata, next(model.parameters()).device)


def _dev_samples(metadata: ModelMetadata, dev_pairs: Sequence[Pair], count: int = 3) -> Sampler:
    """The Trainer's sampler (train.tensorboard): greedy outputs for count dev pairs spread over the dev set."""
    head = list(dev_pairs[:: max(1, len(dev_pairs) // count)][:count])

    def draw(model: nn.Module) -> list[Sample]:
        found = _training_translator(metadata, model).translate_detailed([pair.src for pair in head])
        return [Sample(f"dev {number}", best.text, pair.src, pair.tgt, best.attention, best.src_tokens, best.tokens)
                for number, (pair, (best, *_)) in enumerate(zip(head, found, strict=True), start=1)]

    return draw


METRICS = tuple(metric for metric in CHOICES["metric"] if metric not in ("accuracy", "macro_f1"))
"""The values of train.metric that score a translation model (every metric but the classifier's)."""

COLUMNS: dict[str, Columns] = {
    "g2p": (("exact match %", "exact_match"), ("PER %", "wer")),
    "translation": (("BLEU", "bleu"), ("chrF", "chrf")),
    "summarization": (("ROUGE-L", "rougeL"), ("ROUGE-2", "rouge2")),
}
"""compare's score columns for each use of a translation model (`reports.task_kind`)."""


def check_config(config: Config) -> None:
    """The settings of a translation model that single values cannot check."""
    check_encoder_size(config)
    refuse_other_tasks_options(config)
    if config.train.metric not in METRICS:
        raise ConfigError(f"train.metric={config.train.metric} does not apply to task {config.task} (it scores "
                          "classifiers: train --task classify)")
    check_copy_and_coverage(config)
    check_shared_embeddings(config)
    if config.model.init and shares_vocabulary(config.model):
        raise ConfigError("model.init gives each side the language model's vocabulary: it does not combine with "
                          "model.copy or model.share_embeddings")


TASK = register(Task(
    name="seq2seq", kind="a translation model", command="translate", facade=Translator, sides=(2, 2),
    read=lambda config, spec: load_pairs(spec), item=as_pair, train=train_translator,
    build=build_model, facade_of=translator_of, check=check_config,
    columns=lambda config: COLUMNS[reports.task_kind(config)], use=Translator.translate,
    routes=("/v1/translate", "/v1/chat"), export=lambda config: "translator", decoding=DecodingOptions(),
    prepares=True))
