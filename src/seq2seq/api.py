"""The Python API: `train(...)` builds and fits a model; `load(path)` returns a Translator (or a TextGenerator, a
TextClassifier, a SpeechTranscriber, or an exported model on ONNX Runtime)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from seq2seq.config import Config
from seq2seq.data.metadata import ModelMetadata, check_ensemble_members, vocabulary_signature
from seq2seq.errors import CheckpointError, ConfigError
from seq2seq.models.ensemble import Ensemble
from seq2seq.models.seq2seq import Seq2Seq
from seq2seq.onnx.graphs import MANIFEST
from seq2seq.tasks.classify import TextClassifier, classifier_from_checkpoint
from seq2seq.tasks.lm import TextGenerator, generator_from_checkpoint
from seq2seq.tasks.speech import SpeechTranscriber, transcriber_from_checkpoint
from seq2seq.tasks.translation import Translation, Translator, train_prepared, translator_from_checkpoint
from seq2seq.tasks.translation import train_translator as train
from seq2seq.training import checkpoint

__all__ = ["Translation", "Translator", "is_classifier", "is_export", "load", "load_classifier", "load_ensemble",
           "load_export", "load_generator", "load_translator", "saved_config", "task_of", "train", "train_prepared"]

Model = Translator | TextGenerator | TextClassifier | SpeechTranscriber | Any  # Any: an exported model (onnx extra)
KINDS = {"seq2seq": "a translation model", "lm": "a language model", "classify": "a classifier",
         "speech": "a speech model"}
COMMANDS = {"seq2seq": "translate", "lm": "generate", "classify": "classify", "speech": "transcribe"}

logger = logging.getLogger(__name__)


def load(path: str | Path | Sequence[str | Path], device: str = "auto", precision: str | None = None
         ) -> Model:
    """Load a trained model from its run directory (best checkpoint) or a checkpoint file.

    A language model (task lm) comes back as a TextGenerator, like `load_generator(path)`, a classifier (task
    classify) as a TextClassifier, like `tasks.classify.load_classifier(path)`, a speech model (task speech) as a
    SpeechTranscriber, like `tasks.speech.load_transcriber(path)`: `load(path).transcribe(wav_paths)`. Several
    paths load an ensemble of translation models (`load_ensemble`). precision sets the autocast of decoding
    (default: as trained). A directory written by `seq2seq export` runs on ONNX Runtime (`load_export`).
    """
    paths = [path] if isinstance(path, str | Path) else list(path)
    if any(is_export(each) for each in paths):
        return load_export(paths, precision)
    if len(paths) > 1:
        return load_ensemble(paths, device, precision)
    tensors, metadata = checkpoint.read_model(paths[0])
    path = paths[0]
    if metadata.task == "classify":
        return classifier_from_checkpoint(tensors, metadata, path, device, precision)
    if metadata.task == "speech":
        return transcriber_from_checkpoint(tensors, metadata, path, device, precision)
    if metadata.task == "lm":
        return generator_from_checkpoint(tensors, metadata, path, device, precision)
    return translator_from_checkpoint(tensors, metadata, path, device, precision)


def load_ensemble(paths: Sequence[str | Path], device: str = "auto", precision: str | None = None) -> Translator:
    """Translation models trained with the same tokenizers and vocabularies, decoding as one: each output token is
    chosen from the mean of their next-token probabilities."""
    translators = [load_translator(path, device, precision) for path in paths]
    check_ensemble_members(paths, [vocabulary_signature(translator.config.model.copy, translator.tokenizers,
                                                        translator.vocabs) for translator in translators])
    first = translators[0]
    if len(translators) == 1:
        return first
    members = [cast(Seq2Seq, translator.model) for translator in translators]  # each loaded from one path
    return dataclasses.replace(first, model=Ensemble(members))


def load_translator(path: str | Path | Sequence[str | Path], device: str = "auto", precision: str | None = None
                    ) -> Translator:
    """`load` for code that needs a translation model (or an exported one): another task raises CheckpointError."""
    return _of_task(load(path, device, precision), "seq2seq", path)


def load_generator(path: str | Path, device: str = "auto", precision: str | None = None) -> TextGenerator:
    """`load` for code that needs a language model (or an exported one): another task raises CheckpointError."""
    return _of_task(load(path, device, precision), "lm", path)


def load_classifier(path: str | Path, device: str = "auto", precision: str | None = None) -> TextClassifier:
    """`load` for code that needs a classifier (or an exported one): another task raises CheckpointError."""
    return _of_task(load(path, device, precision), "classify", path)


def is_classifier(model: Model) -> bool:
    """Whether a loaded model is a classifier: a TextClassifier, or an exported one (`task_of`)."""
    return task_of(model) == "classify"


def task_of(model: Model) -> str:
    """The task of a loaded model: seq2seq, lm, classify or speech (an exported model's from its manifest)."""
    for kind, task in ((Translator, "seq2seq"), (TextGenerator, "lm"), (TextClassifier, "classify"),
                       (SpeechTranscriber, "speech")):
        if isinstance(model, kind):
            return task
    return str(model.manifest.get("task", "seq2seq"))


def _of_task(model: Any, task: str, path: object) -> Any:
    found = task_of(model)
    if found != task:
        name = path if isinstance(path, str | Path) else " ".join(map(str, path))  # type: ignore[call-overload]
        kind = KINDS.get(found, f"a model of task {found}")
        kind = f"an exported {kind.removeprefix('a ')}" if hasattr(model, "manifest") else kind
        raise CheckpointError(f"{name}: {kind}, not {KINDS[task]} (use seq2seq {COMMANDS[found]})")
    return model


def is_export(path: str | Path) -> bool:
    """Whether path is a directory written by `seq2seq export` (`onnx.loading.is_export` without importing the
    runtime, whose onnxruntime is an extra)."""
    return (Path(path) / MANIFEST).is_file()


def load_export(paths: Sequence[str | Path], precision: str | None = None) -> Any:
    """An exported directory on ONNX Runtime (`seq2seq.onnx.load`); it cannot join other models in an ensemble, and
    its precision is the export's own."""
    if len(paths) > 1:
        first = next(each for each in paths if is_export(each))
        raise ConfigError(f"{first}: an exported model cannot join other models; export the checkpoints together "
                          "instead (seq2seq export --model A B --out DIR), then --model DIR")
    if precision:
        raise ConfigError("--precision does not apply to an exported model (export --int8 chooses int8)")
    from seq2seq.onnx.loading import load as load_onnx

    return load_onnx(paths[0])


def saved_config(out_dir: str | Path) -> Config:
    """The config of the run in out_dir (from its last checkpoint), the starting point of a resumed run."""
    path = Path(out_dir) / "last.safetensors"
    return ModelMetadata.from_dict(checkpoint.load_checkpoint(path)[1], str(path)).config

