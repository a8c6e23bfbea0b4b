"""The Python API: `train(config, data)` fits a model of config.task; `load(path)` returns the facade of its task (a
Translator, TextGenerator, TextClassifier or SpeechTranscriber, or an exported model on ONNX Runtime). Both ask
the task registry (`seq2seq.tasks.registry`)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from seq2seq.config import Config
from seq2seq.data.metadata import ModelMetadata, check_ensemble_members, vocabulary_signature
from seq2seq.decoding.ensemble import Ensemble
from seq2seq.errors import CheckpointError, ConfigError
from seq2seq.models.seq2seq import Seq2Seq
from seq2seq.onnx.graphs import MANIFEST
from seq2seq.tasks import classify, lm, registry, speech, translation
from seq2seq.tasks.classification import Classifying
from seq2seq.tasks.lm import TextGenerator
from seq2seq.tasks.transcribing import Transcribing
from seq2seq.tasks.translating import Translation
from seq2seq.tasks.translation import Translator, train_prepared
from seq2seq.training import checkpoint

__all__ = ["Translation", "Translator", "is_export", "load", "load_classifier", "load_ensemble",
           "load_export", "load_generator", "load_transcriber", "load_translator", "saved_config", "task_of", "train",
           "train_prepared"]

Model = Any  # the facade of a task (`registry.Task.facade`), or an exported model on ONNX Runtime (onnx extra)

logger = logging.getLogger(__name__)


def train(config: Config, data: Sequence[Any], dev: Sequence[Any] = (), out_dir: str | Path = "runs/model",
          resume: bool = False) -> Model:
    """Fit a model of config.task on data and return its facade, loaded from the best checkpoint in out_dir.

    data and dev hold what the task trains on: (source, target) pairs for seq2seq, (text, label) for classify,
    (WAV path, transcript) for speech, as `Pair`s or plain tuples, and strings of text for lm. With resume, the
    run in out_dir continues from its last checkpoint.
    """
    task = registry.validate(config)
    return task.train(config, registry.items(task, data), registry.items(task, dev), out_dir, resume)


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
    return registry.from_checkpoint(*checkpoint.read_model(paths[0]), paths[0], device, precision)


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
    return _of_task(load(path, device, precision), translation.TASK, path)


def load_generator(path: str | Path, device: str = "auto", precision: str | None = None) -> TextGenerator:
    """`load` for code that needs a language model (or an exported one): another task raises CheckpointError."""
    return _of_task(load(path, device, precision), lm.TASK, path)


def load_classifier(path: str | Path, device: str = "auto", precision: str | None = None) -> Classifying:
    """`load` for code that needs a classifier (a TextClassifier, or an exported one): another task raises
    CheckpointError."""
    return _of_task(load(path, device, precision), classify.TASK, path)


def load_transcriber(path: str | Path, device: str = "auto", precision: str | None = None) -> Transcribing:
    """`load` for code that needs a speech model (a SpeechTranscriber, or an exported one): another task raises
    CheckpointError."""
    return _of_task(load(path, device, precision), speech.TASK, path)


def task_of(model: Model) -> str:
    """The task of a loaded model: seq2seq, lm, classify, speech or another registered one (an exported model's
    from its manifest)."""
    return registry.of_model(model).name


def _of_task(model: Any, task: registry.Task, path: object) -> Any:
    found = registry.of_model(model)
    if found != task:
        name = path if isinstance(path, str | Path) else " ".join(map(str, path))  # type: ignore[call-overload]
        kind = f"an exported {found.kind.removeprefix('a ')}" if hasattr(model, "manifest") else found.kind
        raise CheckpointError(f"{name}: {kind}, not {task.kind} (use seq2seq {found.command})")
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

