"""Models started from a trained language model (model.init): a classifier takes its tokenizer, vocabulary,
embeddings and RNN for its encoder; a translation model takes them for each side that reads the language model's
tokens (Ramachandran et al., 2017): the encoder for the source, the attention decoder for the target."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from seq2seq.config import Config, ModelConfig, TokenizerConfig
from seq2seq.data.pairs import Pair
from seq2seq.data.preparation import Sides
from seq2seq.data.vocab import UNK_ID
from seq2seq.errors import CheckpointError, ConfigError
from seq2seq.models.classifier import Classifier
from seq2seq.models.language_model import LanguageModel
from seq2seq.models.seq2seq import Seq2Seq
from seq2seq.models.transfer import (
    ENCODER_SHAPE,
    check_embeddings,
    check_transferable,
    copy_into_decoder,
    copy_into_encoder,
    decoder_misfit,
    encoder_misfit,
    encoder_shape,
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
        if not isinstance(generator.model, LanguageModel):
            raise CheckpointError(f"{path}: a {type(generator.model).__name__} has no RNN to start another model")
        check_embeddings(generator.config.model, path)
    except CheckpointError as error:
        raise CheckpointError(f"model.init: {error}") from None
    return generator


def load_language_model(config: Config) -> tuple[Config, TextGenerator]:
    """The language model of config.model.init, and config fitted to it: the classifier reads its tokens (data.src
    becomes its data.tgt) and its encoder takes the language model's shape where config holds the defaults
    (`encoder_shape`); other values that do not fit are a one-line CheckpointError naming the file."""
    generator = read_language_model(config)
    tokens = generator.config.data.tgt
    if config.data.src != tokens:
        logger.info("model.init: the texts are tokenized as the language model's were (data.src = its data.tgt)")
    shape = encoder_shape(config.model, generator.config.model)
    config = replace(config, data=replace(config.data, src=tokens), model=replace(config.model, **shape))
    try:
        check_transferable(config.model, generator.config.model, config.model.init)
    except CheckpointError as error:
        raise CheckpointError(f"model.init: {error}") from None
    if shape:
        logger.info("model.init: the encoder takes the language model's shape: %s",
                    ", ".join(f"model.{key}={value}" for key, value in shape.items()))
    return config, generator


def classifier_as_started(config: Config, saved: Config) -> Config:
    """config (with model.init) fitted as the saved run's start fitted it to its language model, which is not read
    again: the texts split as the language model's (data.src) and the encoder settings config leaves at the
    defaults (`ENCODER_SHAPE`), from the saved run's config."""
    if not config.model.init:
        return config
    defaults = ModelConfig()
    shape = {key: getattr(saved.model, key) for key in ENCODER_SHAPE
             if getattr(config.model, key) == getattr(defaults, key)}
    return replace(config, data=replace(config.data, src=saved.data.src), model=replace(config.model, **shape))


def translation_as_started(config: Config, saved: Config) -> Config:
    """config (with model.init) fitted as the saved run's start fitted it to its language model, which is not read
    again: each side split into tokens as the saved run's side (`TOKENIZING`) takes that side's settings, among them
    the vocabulary's that a side reading the language model's tokens took from it (a resumed run keeps its
    vocabularies whatever their settings say)."""
    if not config.model.init:
        return config
    src, tgt = (getattr(saved.data, name) if _splits_alike(getattr(config.data, name), getattr(saved.data, name))
                else getattr(config.data, name) for name in ("src", "tgt"))
    return replace(config, data=replace(config.data, src=src, tgt=tgt))


def _splits_alike(one: TokenizerConfig, other: TokenizerConfig) -> bool:
    """Whether the two settings split a text into the same tokens (their vocabularies' settings aside)."""
    return one.kind == other.kind and all(getattr(one, key) == getattr(other, key) for key in TOKENIZING[one.kind])


def start_from(model: Classifier, generator: TextGenerator) -> None:
    """Copy the language model's embeddings and RNN into the classifier's encoder, saying what starts fresh."""
    copy_into_encoder(model.encoder, generator.model)
    fresh = "its backward direction and the head start fresh" if model.config.bidirectional else "the head starts fresh"
    logger.info("model.init: the encoder's embeddings and RNN%s come from the language model %s; %s",
                " (forward direction)" if model.config.bidirectional else "", model.config.init, fresh)


TOKENIZING = {"char": ("kind", "lowercase"), "word": ("kind", "lowercase", "split_punctuation", "language"),
              "subword": ("kind", "lowercase")}
"""The settings that change how a text of each token kind is split (the vocabulary's come with the language model)."""
MIN_KNOWN = 0.5  # the share of a side's tokens the language model's vocabulary must hold for that side to take it
SAMPLED_PAIRS = 1000


def translation_sides(config: Config, generator: TextGenerator, pairs: Sequence[Pair]) -> tuple[Config, Sides]:
    """The sides (source, target) a translation model takes from the language model, and config with their
    tokenizer settings: each side split into tokens as the language model's (`TOKENIZING`), whose encoder or decoder
    fits its sizes, and of whose tokens in the first training pairs its vocabulary holds at least MIN_KNOWN (not
    another language). A side left fresh is logged with what it would need; neither side is a one-line ConfigError."""
    tokens, lm_model = generator.config.data.tgt, generator.config.model
    needs = []
    for name, settings, misfit in (("src", config.data.src, encoder_misfit), ("tgt", config.data.tgt, decoder_misfit)):
        field = next((field for field in TOKENIZING[tokens.kind] if getattr(settings, field) != getattr(tokens, field)),
                     "")
        need = (f"data.{name}.{field}={getattr(tokens, field)}, not {getattr(settings, field)}" if field
                else misfit(config.model, lm_model))
        if not need and (known := _known_share(generator, [getattr(pair, name) for pair in pairs[:SAMPLED_PAIRS]])
                         ) < MIN_KNOWN:
            need = f"text the language model knows ({known:.0%} of its tokens are in its vocabulary)"
        needs.append(need)
    if all(needs):
        raise ConfigError(f"model.init: {config.model.init} fits neither side: the encoder needs {needs[0]}; the "
                          f"decoder needs {needs[1]}")
    for part, need in zip(("encoder", "decoder"), needs, strict=True):
        if need:
            logger.info("model.init: the %s starts fresh: it would need %s", part, need)
    given = (generator.tokenizer, generator.vocab)
    data = replace(config.data, src=config.data.src if needs[0] else tokens,
                   tgt=config.data.tgt if needs[1] else tokens)
    return replace(config, data=data), ((None if needs[0] else given), (None if needs[1] else given))


def _known_share(generator: TextGenerator, texts: Sequence[str]) -> float:
    """The share of the texts' tokens (split by the language model's tokenizer) that its vocabulary holds."""
    ids = [token for text in texts for token in generator.vocab.encode(generator.tokenizer.tokenize(text))]
    return sum(token != UNK_ID for token in ids) / max(len(ids), 1)


def start_translation(model: Seq2Seq, generator: TextGenerator, sides: Sides) -> None:
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
