"""A classifier started from a trained language model (model.init): its tokenizer, vocabulary, embeddings and RNN."""

from __future__ import annotations

import logging
from dataclasses import replace

from seq2seq.config import Config
from seq2seq.errors import CheckpointError
from seq2seq.models.classifier import Classifier
from seq2seq.models.transfer import check_transferable, copy_language_model
from seq2seq.tasks import registry
from seq2seq.tasks.lm import TextGenerator

logger = logging.getLogger(__name__)


def load_language_model(config: Config) -> TextGenerator:
    """The language model of config.model.init (a run directory or a checkpoint file), checked to fit the
    classifier's encoder; anything else is a one-line CheckpointError naming the file."""
    path = config.model.init
    try:
        generator: TextGenerator = registry.load(path, registry.get("lm"), "cpu")
        check_transferable(config.model, generator.config.model, path)
    except CheckpointError as error:
        raise CheckpointError(f"model.init: {error}") from None
    return generator


def with_language_models_tokens(config: Config, generator: TextGenerator) -> Config:
    """config with the language model's tokenizer settings (its data.tgt) as data.src: the classifier reads its
    tokens."""
    tokens = generator.config.data.tgt
    if config.data.src != tokens:
        logger.info("model.init: the texts are tokenized as the language model's were (data.src = its data.tgt)")
    return replace(config, data=replace(config.data, src=tokens))


def start_from(model: Classifier, generator: TextGenerator) -> None:
    """Copy the language model's embeddings and RNN into the classifier's encoder, saying what starts fresh."""
    copy_language_model(model, generator.model)
    fresh = "its backward direction and the head start fresh" if model.config.bidirectional else "the head starts fresh"
    logger.info("model.init: the encoder's embeddings and RNN%s come from the language model %s; %s",
                " (forward direction)" if model.config.bidirectional else "", model.config.init, fresh)
