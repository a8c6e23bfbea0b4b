"""Loading an exported directory: its manifest and model description, as a translator, a generator, a classifier or
a transcriber by the runtime its manifest names."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seq2seq.data.metadata import ModelMetadata
from seq2seq.errors import CheckpointError
from seq2seq.onnx.classifier import ClassifierGraph, OnnxClassifier
from seq2seq.onnx.ensemble import open_model
from seq2seq.onnx.generator import OnnxGenerator
from seq2seq.onnx.graphs import CLASSIFIER_RUNTIME, GENERATOR, MANIFEST, METADATA, TRANSCRIBER, TRANSLATOR
from seq2seq.onnx.model import OnnxModel, read_manifest
from seq2seq.onnx.transcriber import OnnxTranscriber
from seq2seq.onnx.translator import OnnxTranslator


def is_export(path: str | Path) -> bool:
    """Whether path is a directory written by `seq2seq export` (it holds a manifest)."""
    return (Path(path) / MANIFEST).is_file()


RUNTIMES: dict[str, Callable[[Path, dict[str, Any], ModelMetadata, int], Any]] = {
    TRANSLATOR: lambda folder, manifest, metadata, threads: OnnxTranslator(open_model(folder, manifest, threads),
                                                                          metadata, manifest),
    GENERATOR: lambda folder, manifest, metadata, threads: OnnxGenerator(OnnxModel(folder, manifest, threads),
                                                                        metadata, manifest),
    CLASSIFIER_RUNTIME: lambda folder, manifest, metadata, threads: OnnxClassifier(
        ClassifierGraph(folder, manifest, threads), metadata, manifest),
    TRANSCRIBER: lambda folder, manifest, metadata, threads: OnnxTranscriber(OnnxModel(folder, manifest, threads),
                                                                            metadata, manifest),
}
"""The runtime that reads an export, by its manifest's `runtime` (written by the task's `Task.export`)."""

EARLIER_RUNTIMES = {"lm": GENERATOR}
"""The runtime of an export written before manifests named it, by its task (the others ran on OnnxTranslator)."""


def load(path: str | Path, threads: int = 0) -> OnnxTranslator | OnnxGenerator | OnnxClassifier | OnnxTranscriber:
    """Load an exported model directory: an OnnxTranslator (of one model or an ensemble), for a language model
    (task lm) an OnnxGenerator, for a classifier (task classify) an OnnxClassifier, for a speech model (task speech)
    an OnnxTranscriber; threads 0 lets ONNX Runtime choose. A missing or corrupted file is a CheckpointError naming
    it."""
    directory = Path(path)
    manifest = read_manifest(directory)
    metadata_path = directory / METADATA
    try:
        values = json.loads(metadata_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{metadata_path}: unreadable model description ({error})") from None
    metadata = ModelMetadata.from_dict(values, str(metadata_path))
    runtime = manifest.get("runtime") or EARLIER_RUNTIMES.get(manifest.get("task"), TRANSLATOR)
    if runtime not in RUNTIMES:
        raise CheckpointError(f"{directory / MANIFEST}: unknown runtime {runtime!r} (a newer version's export?)")
    return RUNTIMES[runtime](directory, manifest, metadata, threads)
