"""A Classifier's encoder started from a LanguageModel's embeddings and RNN, and the classifier's layers for
fine-tuning (bottom first)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from seq2seq.config import ModelConfig
from seq2seq.errors import CheckpointError
from seq2seq.models.classifier import Classifier
from seq2seq.models.language_model import LanguageModel


def check_transferable(classifier: ModelConfig, language_model: ModelConfig, origin: str | Path) -> None:
    """CheckpointError naming origin unless the language model's embeddings and RNN fit the classifier's encoder: the
    same cell, layers and embedding size, and its hidden size that of each direction of the classifier's."""
    if language_model.one_hot:
        raise CheckpointError(f"{origin}: a one-hot language model (model.one_hot) has no embeddings to start a "
                              "classifier")
    directions = 2 if classifier.bidirectional else 1
    wanted = {"rnn": language_model.rnn, "num_layers": language_model.num_layers,
              "embedding_size": language_model.embedding_size, "hidden_size": language_model.hidden_size * directions}
    for key, value in wanted.items():
        if getattr(classifier, key) != value:
            both = " (its hidden size per direction: the encoder is bidirectional)" if key == "hidden_size" and \
                directions == 2 else ""
            raise CheckpointError(f"{origin}: the language model's model.{key} needs the classifier's model.{key}="
                                  f"{value}{both}, not {getattr(classifier, key)}")


@torch.no_grad()
def copy_language_model(classifier: Classifier, language_model: LanguageModel) -> None:
    """Copy the language model's embeddings and RNN into the classifier's encoder (`check_transferable` passed):
    into the forward direction of a bidirectional one, whose backward direction keeps its fresh weights. Above the
    first layer the forward direction also reads the backward one's outputs, through weights set to zero, so the
    forward direction computes what the language model computed until training changes them."""
    encoder = classifier.encoder
    assert encoder.embedding is not None and isinstance(language_model.embedding, nn.Embedding)
    encoder.embedding.weight.copy_(language_model.embedding.weight)
    for name, weight in language_model.rnn.named_parameters():
        target = getattr(encoder.rnn, name)
        if target.shape != weight.shape:  # (G * H, 2 * H) input weights above the first layer
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
