"""OnnxTranscriber: transcripts of WAV files from an exported speech model, with ONNX Runtime and numpy only (no
PyTorch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from seq2seq.data.metadata import ModelMetadata
from seq2seq.data.vocab import Vocab
from seq2seq.onnx.model import Exported, OnnxModel
from seq2seq.tasks.transcribing import Transcribing


@dataclass
class OnnxTranscriber(Exported, Transcribing):
    """An exported speech model with its transcript tokenizer and vocabulary: `SpeechTranscriber`'s transcribe,
    decode_frames and evaluate (the same knobs, in fp32 the same transcripts) without torch."""

    model: OnnxModel
    metadata: ModelMetadata
    manifest: dict[str, Any]

    @property
    def vocab(self) -> Vocab:  # type: ignore[override]
        return self.metadata.vocabs[0]
