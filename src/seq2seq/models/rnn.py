"""The recurrent model kinds (`model.arch` context, repeat, attention) and the RNN language model, registered."""

from __future__ import annotations

from torch import nn

from seq2seq.config import ModelConfig
from seq2seq.models.architectures import Architecture, register
from seq2seq.models.decoder import AttentionDecoder, ContextDecoder, RepeatDecoder
from seq2seq.models.encoder import Encoder
from seq2seq.models.language_model import LanguageModel


def rnn_encoder(config: ModelConfig, vocab_size: int) -> nn.Module:
    """The (bidirectional, stacked) RNN `Encoder` of config."""
    return Encoder(vocab_size, config.embedding_size, config.hidden_size, config.num_layers, config.rnn,
                   config.bidirectional, config.dropout)


CONTEXT = register(Architecture("context", rnn_encoder, ContextDecoder, ContextDecoder.state_axes, LanguageModel))
REPEAT = register(Architecture("repeat", rnn_encoder, RepeatDecoder, RepeatDecoder.state_axes, LanguageModel))
ATTENTION = register(Architecture("attention", rnn_encoder, AttentionDecoder, AttentionDecoder.state_axes,
                                  LanguageModel))
