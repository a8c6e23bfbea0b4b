"""Loading an exported directory: its manifest and model description, as a translator, a generator or a classifier
by its task."""

from __future__ import annotations

import json
from pathlib import Path

from seq2seq.data.metadata import ModelMetadata
from seq2seq.errors import CheckpointError
from seq2seq.onnx.classifier import ClassifierGraph, OnnxClassifier
from seq2seq.onnx.ensemble import open_model
from seq2seq.onnx.generator import OnnxGenerator
from seq2seq.onnx.graphs import MANIFEST, METADATA
from seq2seq.onnx.model import OnnxModel, read_manifest
from seq2seq.onnx.translator import OnnxTranslator


def is_export(path: str | Path) -> bool:
    """Whether path is a directory written by `seq2seq export` (it holds a manifest)."""
    return (Path(path) / MANIFEST).is_file()


def load(path: str | Path, threads: int = 0) -> OnnxTranslator | OnnxGenerator | OnnxClassifier:
    """Load an exported model directory: an OnnxTranslator (of one model or an ensemble), for a language model
    (task lm) an OnnxGenerator, for a classifier (task classify) an OnnxClassifier; threads 0 lets ONNX Runtime
    choose. A missing or corrupted file is a CheckpointError
    naming it."""
    directory = Path(path)
    manifest = read_manifest(directory)
    metadata_path = directory / METADATA
    try:
        values = json.loads(metadata_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{metadata_path}: unreadable model description ({error})") from None
    metadata = ModelMetadata.from_dict(values, str(metadata_path))
    if manifest.get("task") == "classify":
        return OnnxClassifier(ClassifierGraph(directory, manifest, threads), metadata, manifest)
    if manifest.get("task") == "lm":
        return OnnxGenerator(OnnxModel(directory, manifest, threads), metadata, manifest)
    return OnnxTranslator(open_model(directory, manifest, threads), metadata, manifest)
