"""A model's encoder or decoder started from a LanguageModel's embeddings and RNN (a classifier's encoder; a
translation model's encoder and attention decoder), and the classifier's layers for fine-tuning (bottom first)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from seq2seq.config import ModelConfig
from seq2seq.errors import CheckpointError
from seq2seq.models.classifier import Classifier
from seq2seq.models.decoder import AttentionDecoder
from seq2seq.models.encoder import Encoder
from seq2seq.models.language_model import LanguageModel

RNN_ARCHS = ("context", "repeat", "attention")
"""The kinds whose encoder (and language model) is an RNN over embeddings."""
ENCODER_SHAPE = ("rnn", "num_layers", "embedding_size", "hidden_size")
"""The encoder settings a classifier takes from its language model where its config leaves the defaults."""


def encoder_misfit(model: ModelConfig, language_model: ModelConfig) -> str:
    """The setting an encoder of model's settings would need for the language model's embeddings and RNN ('' when
    they fit): the same cell, layers and embedding size, and its hidden size that of each direction."""
    if model.arch not in RNN_ARCHS:
        return f"an RNN encoder (model.arch {', '.join(RNN_ARCHS)}), not model.arch={model.arch}"
    directions = 2 if model.bidirectional else 1
    both = " (its hidden size per direction: the encoder is bidirectional)" if directions == 2 else ""
    return _misfit(model, language_model, {"hidden_size": (language_model.hidden_size * directions, both)})


def encoder_shape(model: ModelConfig, language_model: ModelConfig) -> dict[str, Any]:
    """The encoder settings of model that hold ModelConfig's defaults (set or not: a value can not tell) and must
    change to fit the language model's embeddings and RNN (its cell, layers, embedding size and hidden size per
    direction), with their new values."""
    directions = 2 if model.bidirectional else 1
    wanted = {"rnn": language_model.rnn, "num_layers": language_model.num_layers,
              "embedding_size": language_model.embedding_size, "hidden_size": language_model.hidden_size * directions}
    defaults = ModelConfig()
    return {key: wanted[key] for key in ENCODER_SHAPE
            if getattr(model, key) == getattr(defaults, key) and getattr(model, key) != wanted[key]}


def decoder_misfit(model: ModelConfig, language_model: ModelConfig) -> str:
    """The setting a decoder of model's settings would need for the language model's embeddings and RNN ('' when
    they fit): an RNN attention decoder of the same cell, layers, embedding and hidden sizes."""
    if model.arch != "attention":
        return f"model.arch=attention (an RNN decoder with attention), not {model.arch}"
    return _misfit(model, language_model, {"hidden_size": (language_model.hidden_size, "")})


def _misfit(model: ModelConfig, language_model: ModelConfig, sizes: dict[str, tuple[int, str]]) -> str:
    wanted = {"rnn": (language_model.rnn, ""), "num_layers": (language_model.num_layers, ""),
              "embedding_size": (language_model.embedding_size, ""), **sizes}
    for key, (value, why) in wanted.items():
        if getattr(model, key) != value:
            return f"model.{key}={value}{why}, not {getattr(model, key)}"
    return ""


def check_embeddings(language_model: ModelConfig, origin: str | Path) -> None:
    """CheckpointError naming origin when the language model has no embeddings to give (model.one_hot)."""
    if language_model.one_hot:
        raise CheckpointError(f"{origin}: a one-hot language model (model.one_hot) has no embeddings to start "
                              "another model")


def check_transferable(classifier: ModelConfig, language_model: ModelConfig, origin: str | Path) -> None:
    """CheckpointError naming origin unless the language model fits the classifier's encoder (`encoder_misfit`)."""
    if misfit := encoder_misfit(classifier, language_model):
        raise CheckpointError(f"{origin}: the language model needs the classifier's {misfit}")


@torch.no_grad()
def copy_into_encoder(encoder: Encoder, language_model: LanguageModel) -> None:
    """Copy the language model's embeddings and RNN into the encoder (`encoder_misfit` passed): into the forward
    direction of a bidirectional one, whose backward direction keeps its fresh weights. Above the first layer the
    forward direction also reads the backward one's outputs, through weights set to zero, so the forward direction
    computes what the language model computed until training changes them."""
    assert encoder.embedding is not None and isinstance(language_model.embedding, nn.Embedding)
    encoder.embedding.weight.copy_(language_model.embedding.weight)
    for name, weight in language_model.rnn.named_parameters():
        _copy_leading(getattr(encoder.rnn, name), weight)


@torch.no_grad()
def copy_into_decoder(decoder: AttentionDecoder, language_model: LanguageModel) -> None:
    """Copy the language model's embeddings and RNN layers into the decoder's embeddings and cells
    (`decoder_misfit` passed). The first cell also reads the fed attentional vector, through weights set to zero, so
    with a zero feed each cell computes what the language model's layer computed from the same state."""
    assert isinstance(language_model.embedding, nn.Embedding)
    decoder.embedding.weight.copy_(language_model.embedding.weight)
    for layer, cell in enumerate(decoder.cells):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            _copy_leading(getattr(cell, name), getattr(language_model.rnn, f"{name}_l{layer}"))


def _copy_leading(target: torch.Tensor, weight: torch.Tensor) -> None:
    """weight into target's leading columns, the others (inputs the language model did not have) zeroed."""
    if target.shape != weight.shape:
        target.zero_()
    target[..., :weight.size(-1)].copy_(weight)


def layer_parameters(classifier: Classifier) -> list[list[nn.Parameter]]:
    """The classifier's parameters as layers, bottom first: the embeddings, each RNN layer, and the head (pooling,
    output, bag of words). With model.init, the backward direction, which the language model did not give, belongs
    to the head, trained from the start at the head's rate."""
    rnn, fresh_backward = classifier.encoder.rnn, bool(classifier.config.init)
    layers: list[list[nn.Parameter]] = [[] for _ in range(rnn.num_layers)]
    head = [parameter for name, parameter in classifier.named_parameters() if not name.startswith("encoder.")]
    for name, parameter in rnn.named_parameters():
        reverse = name.endswith("_reverse")
        layer = int(name.removesuffix("_reverse").rpartition("_l")[2])
        (head if reverse and fresh_backward else layers[layer]).append(parameter)
    embeddings = [] if classifier.encoder.embedding is None else [classifier.encoder.embedding.weight]
    return [embeddings, *layers, head]
