"""Models started from a trained language model (model.init): a classifier takes its tokenizer, vocabulary,
embeddings and RNN for its encoder; a translation model takes them for each side that reads the language model's
tokens (Ramachandran et al., 2017): the encoder for the source, the attention decoder for the target."""

from __future__ import annotations

import logging
from dataclasses import replace

from seq2seq.config import Config, shares_vocabulary
from seq2seq.data.tokenizers import Tokenizer
from seq2seq.data.vocab import Vocab
from seq2seq.errors import CheckpointError, ConfigError
from seq2seq.models.classifier import Classifier
from seq2seq.models.seq2seq import Seq2Seq
from seq2seq.models.transfer import (
    check_embeddings,
    check_transferable,
    copy_into_decoder,
    copy_into_encoder,
    decoder_misfit,
    encoder_misfit,
)
from seq2seq.tasks import registry
from seq2seq.tasks.lm import TextGenerator

logger = logging.getLogger(__name__)


def read_language_model(config: Config) -> TextGenerator:
    """The language model of config.model.init (a run directory or a checkpoint file); anything else is a one-line
    CheckpointError naming the file."""
    path = config.model.init
    try:
        generator: TextGenerator = registry.load(path, registry.get("lm"), "cpu")
        check_embeddings(generator.config.model, path)
    except CheckpointError as error:
        raise CheckpointError(f"model.init: {error}") from None
    return generator


def load_language_model(config: Config) -> TextGenerator:
    """The language model of config.model.init, checked to fit the classifier's encoder."""
    generator = read_language_model(config)
    try:
        check_transferable(config.model, generator.config.model, config.model.init)
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
    copy_into_encoder(model.encoder, generator.model)
    fresh = "its backward direction and the head start fresh" if model.config.bidirectional else "the head starts fresh"
    logger.info("model.init: the encoder's embeddings and RNN%s come from the language model %s; %s",
                " (forward direction)" if model.config.bidirectional else "", model.config.init, fresh)


Side = tuple[Tokenizer, Vocab] | None


def translation_sides(config: Config, generator: TextGenerator) -> tuple[Side, Side]:
    """The sides (source, target) a translation model takes from the language model: each whose tokens are read as
    the language model's (data.src or data.tgt equal to its data.tgt) and whose encoder or decoder fits its sizes.
    Neither side is a one-line ConfigError saying what each would need."""
    if shares_vocabulary(config.model):
        raise ConfigError("model.init gives each side the language model's vocabulary: it does not combine with "
                          "model.copy or model.share_embeddings")
    tokens, lm_model = generator.config.data.tgt, generator.config.model
    needs = [(f"data.{name} as its data.tgt" if settings != tokens else misfit(config.model, lm_model))
             for name, settings, misfit in (("src", config.data.src, encoder_misfit),
                                             ("tgt", config.data.tgt, decoder_misfit))]
    if all(needs):
        raise ConfigError(f"model.init: {config.model.init} fits neither side: the encoder needs {needs[0]}; the "
                          f"decoder needs {needs[1]}")
    given = (generator.tokenizer, generator.vocab)
    return (None if needs[0] else given), (None if needs[1] else given)


def start_translation(model: Seq2Seq, generator: TextGenerator, sides: tuple[Side, Side]) -> None:
    """Copy the language model's embeddings and RNN into the sides `translation_sides` chose, saying which."""
    started = []
    if sides[0]:
        copy_into_encoder(model.encoder, generator.model)
        started.append("the encoder's embeddings and RNN" + (" (forward direction)" if model.config.bidirectional
                                                              else ""))
    if sides[1]:
        copy_into_decoder(model.decoder, generator.model)
        started.append("the decoder's embeddings and RNN layers")
    logger.info("model.init: %s come from the language model %s; the rest starts fresh", " and ".join(started),
                model.config.init)
