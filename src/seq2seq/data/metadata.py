"""The typed description a checkpoint carries besides its weights: task, config, tokenizers, vocabularies.

Read and written only here. Checkpoints of every version load: a language model's used to hold `tokenizer` and
`vocab` (one of each) where every checkpoint now holds the lists `tokenizers` and `vocabs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seq2seq.config import Config, config_from_dict
from seq2seq.data.tokenizers import Tokenizer, tokenizer_from_dict
from seq2seq.data.vocab import Vocab
from seq2seq.errors import CheckpointError


@dataclass(frozen=True)
class ModelMetadata:
    """What a model needs besides its weights to read and write text.

    tokenizers and vocabs are as many as the task needs (`tasks.registry.Task.sides`): (source, target) for task
    seq2seq, (text,) for task lm, and (text,) and (text, labels) for task classify (`labels.LABEL_OFFSET`: a label's
    id past the specials), (transcript,) for task speech; target_lengths holds the mean, 99th percentile and
    maximum training target length in tokens (seq2seq and speech only; empty when unknown).
    """

    config: Config
    tokenizers: tuple[Tokenizer, ...]
    vocabs: tuple[Vocab, ...]
    target_lengths: dict[str, float] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return self.config.task

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "config": self.config.to_dict(),
                "tokenizers": [t.to_dict() for t in self.tokenizers], "vocabs": [v.to_dict() for v in self.vocabs],
                "target_lengths": self.target_lengths}

    @classmethod
    def from_dict(cls, values: dict[str, Any], origin: str) -> ModelMetadata:
        """Parse what `to_dict` (or an earlier version) wrote; origin names the file in errors."""
        try:
            config = config_from_dict(values["config"], origin)
            tokenizers = values["tokenizers"] if "tokenizers" in values else [values["tokenizer"]]
            vocabs = values["vocabs"] if "vocabs" in values else [values["vocab"]]
            parsed = cls(config, tuple(tokenizer_from_dict(t) for t in tokenizers),
                         tuple(Vocab.from_dict(v) for v in vocabs), dict(values.get("target_lengths", {})))
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"{origin}: the checkpoint's description is incomplete or malformed "
                                  f"({type(error).__name__}: {error})") from None
        return parsed


def vocabulary_signature(copy: bool, tokenizers: Sequence[Tokenizer], vocabs: Sequence[Vocab]) -> tuple[Any, ...]:
    """What the members of an ensemble must share: the copy setting, the tokenizers and the vocabularies."""
    return (copy, *(tokenizer.to_dict() for tokenizer in tokenizers), *(vocab.to_dict() for vocab in vocabs))


def check_ensemble_members(paths: Sequence[str | Path], signatures: Sequence[tuple[Any, ...]]) -> None:
    """CheckpointError unless there is at least one member and every member's vocabulary_signature is the first's."""
    if not paths:
        raise CheckpointError("an ensemble needs at least one model")
    for path, signature in zip(paths[1:], signatures[1:], strict=True):
        if signature != signatures[0]:
            raise CheckpointError(f"{path}: its tokenizers, vocabularies or copy setting differ from those of "
                                  f"{paths[0]}; the models of an ensemble must share them")
