"""OnnxTranslator: text in, text out, on an exported model with ONNX Runtime and numpy only (no PyTorch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from seq2seq.data.metadata import ModelMetadata
from seq2seq.decoding.ensemble import Ensemble
from seq2seq.onnx.model import Exported, OnnxModel
from seq2seq.tasks.translating import TextTranslator


@dataclass
class OnnxTranslator(Exported, TextTranslator):
    """An exported translation model (or ensemble) with its tokenizers and vocabularies: `Translator`'s text front
    end (the same knobs, the same outputs in fp32) without torch."""

    model: OnnxModel | Ensemble
    metadata: ModelMetadata
    manifest: dict[str, Any]

    def attends(self) -> bool:
        """Whether the model (every member of an ensemble) has attention weights to show: its state holds them."""
        return all("attention" in member["layout"]["state"] for member in self.manifest.get("members", [self.manifest]))
