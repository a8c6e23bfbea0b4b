"""The classification API: train a Classifier on labelled texts, load it, classify texts and score it."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import torch
from torch import Tensor, nn

from seq2seq.config import Config, check_encoder_size, refuse_other_tasks_options
from seq2seq.data.examples import Example
from seq2seq.data.labels import LABEL_OFFSET, example_class, label_counts, read_labelled
from seq2seq.data.metadata import ModelMetadata
from seq2seq.data.pairs import Pair, as_pair, split_dev
from seq2seq.data.preparation import prepare_labelled
from seq2seq.data.tokenizers import Tokenizer
from seq2seq.data.vocab import Vocab
from seq2seq.decoding.torch_arrays import TorchArrays
from seq2seq.errors import ConfigError
from seq2seq.evaluation import metrics
from seq2seq.models.classifier import Classifier
from seq2seq.models.objectives import classification_losses
from seq2seq.models.transfer import layer_parameters
from seq2seq.tasks import registry
from seq2seq.tasks.classification import Classification, Classifying, class_logits  # noqa: F401 (its old home)
from seq2seq.tasks.on_device import OnDevice, inference
from seq2seq.tasks.pretrained import classifier_as_started, load_language_model, start_from
from seq2seq.tasks.registry import Task, register
from seq2seq.training.objective import Scorer
from seq2seq.training.trainer import Trainer, run_training, start_run

logger = logging.getLogger(__name__)

@dataclass
class TextClassifier(OnDevice, Classifying):
    """A trained Classifier with its tokenizer and its text and label vocabularies: texts in, labels out."""

    model: Classifier
    config: Config
    tokenizer: Tokenizer
    vocabs: tuple[Vocab, Vocab]  # the texts', the labels'
    device: torch.device
    precision: str | None = None  # autocast while classifying (auto, fp32, bf16, fp16); None: the training precision

    def attends(self) -> bool:
        """Whether `classify_detailed` gives the attention pooling's weights over the tokens."""
        return self.config.model.pooling == "attention"


def dev_scorer(examples: Sequence[Example], batch_size: int, precision: str) -> Scorer:
    """The Trainer's scorer: accuracy and macro-F1 (percent) of a Classifier on encoded dev texts."""
    references = [example_class(example) for example in examples]

    def score(model: nn.Module) -> dict[str, float]:
        device = next(model.parameters()).device
        logits, _ = class_logits(model, [example.src for example in examples], batch_size, TorchArrays(device),
                                 partial(inference, model, precision, device))
        scores = metrics.classification_scores(logits.argmax(dim=-1).tolist(), references)  # type: ignore[arg-type]
        return {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]}

    return score


def class_weights(examples: Sequence[Example], num_classes: int) -> Tensor:
    """Inverse-frequency class weights (C,), N / (C * count), as scikit-learn's "balanced": 1 on average per text."""
    counts = torch.tensor(label_counts(examples, num_classes), dtype=torch.float32).clamp(min=1)
    return len(examples) / (num_classes * counts)


def load_classifier(path: str | Path, device: str = "auto", precision: str | None = None) -> TextClassifier:
    """Load a trained classifier from its run directory (best checkpoint) or a checkpoint file."""
    return registry.load(path, TASK, device, precision)  # type: ignore[no-any-return]


def build_model(metadata: ModelMetadata) -> Classifier:
    """The untrained Classifier of a checkpoint (or of prepared texts)."""
    texts, labels = metadata.vocabs
    return Classifier(metadata.config.model, len(texts), len(labels) - LABEL_OFFSET)


def classifier_of(model: nn.Module, metadata: ModelMetadata, device: torch.device, precision: str | None = None
                  ) -> TextClassifier:
    """model with the tokenizer and the text and label vocabularies of metadata."""
    texts, labels = metadata.vocabs
    return TextClassifier(model, metadata.config, metadata.tokenizers[0], (texts, labels), device,  # type: ignore[arg-type]
                          precision)


def train_classifier(config: Config, train_pairs: Sequence[Pair], dev_pairs: Sequence[Pair] = (),
                     out_dir: str | Path = "runs/classify", resume: bool = False) -> TextClassifier:
    """Build a tokenizer, vocabularies and a Classifier from labelled texts (Pair(text, label)), fit it, and return
    the best model. Without dev pairs, data.dev_size training texts are held out (when set). With model.init, the
    tokenizer, text vocabulary, embeddings and encoder RNN come from that language model (`tasks.pretrained`)."""
    started = time.monotonic()
    config = replace(config, task="classify")
    check_config(config)
    if config.model.bag_of_words:
        raise ConfigError("model.bag_of_words was removed: its SVM, fitted to the very texts the RNN trained on, "
                          "left the RNN little to learn (runs trained with it still load, classify and serve)")
    out = Path(out_dir)
    saved = start_run(config, out, resume, as_started=classifier_as_started)
    config = saved.config if saved else config
    if not dev_pairs and config.data.dev_size:
        train_pairs, dev_pairs = split_dev(list(train_pairs), config.data.dev_size, config.train.seed)
    generator = None
    if config.model.init and saved is None:  # resumed: everything is in the run
        config, generator = load_language_model(config)
    prepared = prepare_labelled(config, train_pairs, dev_pairs, saved.metadata if saved else None,
                                (generator.tokenizer, generator.vocab) if generator else None)
    num_classes = len(prepared.metadata.vocabs[1]) - LABEL_OFFSET
    torch.manual_seed(config.train.seed)
    model = build_model(prepared.metadata)
    if generator:
        start_from(model, generator)
    weights = class_weights(prepared.examples, num_classes) if config.train.class_weights else None
    layerwise = config.train.layer_lr_decay != 1.0 or config.train.unfreeze_every
    trainer = Trainer(model, classification_losses(config.train, weights), config, prepared.examples,
                      prepared.dev_examples, out, prepared.metadata.to_dict(), _scorer(config, prepared.dev_examples),
                      layers=layer_parameters(model) if layerwise else None)
    run_training(trainer, saved, started)
    return load_classifier(out, config.train.device)


def _scorer(config: Config, dev_examples: Sequence[Example]) -> Scorer | None:
    if config.train.metric == "loss":
        return None
    if not dev_examples:
        raise ConfigError(f"train.metric={config.train.metric} needs dev data (--dev or data.dev_size)")
    return dev_scorer(dev_examples, config.data.batch_size, config.train.precision)


METRICS = ("loss", "accuracy", "macro_f1")
"""The values of train.metric that score a classifier."""


def check_config(config: Config) -> None:
    """A classifier reads one text and outputs one label: no target side, no decoder."""
    check_encoder_size(config)
    refuse_other_tasks_options(config)
    if config.train.metric not in METRICS:
        raise ConfigError(f"train.metric={config.train.metric} does not apply to task classify (use loss, accuracy "
                          "or macro_f1)")
    if config.model.copy or config.model.coverage or config.model.share_embeddings:
        raise ConfigError("model.copy, model.coverage and model.share_embeddings do not apply to task classify "
                          "(there is no decoder)")


def export_runtime(config: Config) -> str:
    """A classifier's export runs on OnnxClassifier; the bag of words has no graph."""
    if config.model.bag_of_words:
        raise ConfigError("the classifier's bag of words (model.bag_of_words, a TF-IDF linear SVM, since removed) has "
                          "no ONNX graph; export a classifier trained without it")
    return "classifier"


TASK = register(Task(
    name="classify", kind="a classifier", command="classify", facade=TextClassifier, sides=(1, 2),
    read=lambda config, spec: read_labelled(spec), item=as_pair, train=train_classifier,
    build=build_model, facade_of=classifier_of, check=check_config,
    columns=lambda config: (("accuracy %", "accuracy"), ("macro-F1", "macro_f1")), use=TextClassifier.classify,
    routes=("/v1/classify",), export=export_runtime))
