"""Model kinds by `model.arch`: what builds a translation model's encoder and decoder, and a language model.

A kind's module builds its `Architecture` and calls `register`; a built-in kind's module is imported when the kind
is first asked for (`get`). Nothing else switches on model.arch: the task modules, export and the decoding search
work through the encode / init_state / step contract and the decoder state's declaration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from seq2seq.config import ModelConfig
from seq2seq.errors import ConfigError
from seq2seq.models.state import Axes
from seq2seq.utils.registry import Registry

BUILT_IN = {"context": "seq2seq.models.rnn", "repeat": "seq2seq.models.rnn", "attention": "seq2seq.models.rnn",
            "transformer": "seq2seq.models.transformer"}
"""The built-in kinds and the modules that register them."""


@dataclass(frozen=True)
class Architecture:
    """One model kind.

    - encoder(config, vocab_size): reads token ids of a vocabulary of vocab_size (0: given vectors, a speech
      front end's) and returns outputs (B, S, H) and final state parts (each (L, B, H); none for a kind that has no
      final state).
    - decoder(config, vocab_size): init_state / step / forward over the encoder's `Memory`, and memory_keys(outputs),
      what its attention reads of the encoder outputs, made once per sentence.
    - state_axes(config): the declaration of the decoder's state (`seq2seq.models.state`).
    - language_model(config, vocab_size): a language model of this kind (None: the kind has none).
    - check(config): the kind's own config checks (a ConfigError naming the key); `check` below runs them.
    - warmup_steps: the updates of learning-rate warm-up when train.warmup_steps is unset (its models carry it).
    - ties: whether its decoder can give the output layer its token embeddings (`tie(generator)`,
      model.tie_embeddings) and take the encoder's (`share(encoder)`, model.share_embeddings).
    """

    name: str
    encoder: Callable[[ModelConfig, int], nn.Module]
    decoder: Callable[[ModelConfig, int], nn.Module]
    state_axes: Callable[[ModelConfig], dict[str, Axes]]
    language_model: Callable[[ModelConfig, int], nn.Module] | None = None
    check: Callable[[ModelConfig], None] | None = None
    warmup_steps: int = 0
    ties: bool = False


KINDS: Registry[Architecture] = Registry("model.arch", "architecture", BUILT_IN)
"""This process's table of model kinds."""


def register(architecture: Architecture) -> Architecture:
    """Add a model kind (replacing one of the same name) and return it."""
    return KINDS.register(architecture.name, architecture)


def get(name: str) -> Architecture:
    """The model kind named name (a ConfigError names the known kinds)."""
    return KINDS.get(name)


def check(config: ModelConfig) -> None:
    """A ConfigError where model.arch names no kind or the model settings do not fit the kind."""
    kind = get(config.arch)
    if config.tie_embeddings and not kind.ties:
        raise ConfigError(f"model.tie_embeddings: model.arch={config.arch} cannot tie (its embeddings are not the "
                          "size of the features the output layer reads); a transformer can")
    if config.share_embeddings and not kind.ties:
        raise ConfigError(f"model.share_embeddings: model.arch={config.arch} cannot share its embeddings; a "
                          "transformer can")
    if kind.check is not None:
        kind.check(config)


def language_model(config: ModelConfig, vocab_size: int) -> nn.Module:
    """A language model of config.arch over vocab_size tokens (a ConfigError where the kind has none)."""
    builder = get(config.arch).language_model
    if builder is None:
        raise ConfigError(f"model.arch={config.arch} has no language model (task lm: an RNN or transformer)")
    return builder(config, vocab_size)
