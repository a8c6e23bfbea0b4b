"""Module paths of the flat layout (0.1): importing one warns once and gives the module at its new home."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

MOVED: dict[str, str] = {  # old name under seq2seq -> new path under seq2seq (CHANGELOG.md lists them)
    "files": "utils.files",
    "device": "utils.device",
    "runtime": "utils.runtime",
    "collector": "utils.collector",
    "plot": "utils.plot",
    "vocab": "data.vocab",
    "tokenizers": "data.tokenizers",
    "text": "data.text",
    "lm_text": "data.lm_text",
    "conversations": "data.conversations",
    "download": "data.download",
    "datasets": "data.datasets",
    "labels": "data.labels",
    "checks": "data.checks",
    "audio": "data.audio",
    "synthesis": "data.synthesis",
    "shards": "data.shards",
    "corpus": "data.corpus",
    "preparation": "data.preparation",
    "metadata": "data.metadata",
    "attention": "models.attention",
    "encoder": "models.encoder",
    "kernels": "models.kernels",
    "decoder": "models.decoder",
    "model": "models.seq2seq",
    "language_model": "models.language_model",
    "classifier": "models.classifier",
    "speech_encoder": "models.speech_encoder",
    "ensemble": "decoding.ensemble",
    "models.ensemble": "decoding.ensemble",
    "loss": "models.loss",
    "objectives": "models.objectives",
    "options": "decoding.options",
    "search": "decoding.search",
    "metrics": "evaluation.metrics",
    "reports": "evaluation.reports",
    "train": "training.trainer",
    "optim": "training.optim",
    "checkpoint": "training.checkpoint",
    "distributed": "training.distributed",
    "divergence": "training.divergence",
    "averaging": "training.averaging",
    "board": "training.board",
    "rundir": "training.rundir",
    "generation": "tasks.lm",
    "classification": "tasks.classify",
    "speech": "tasks.speech",
    "chat": "tasks.chat",
    "compare": "experiments.compare",
    "curves": "experiments.curves",
    "export": "onnx.export",
    "classify_command": "cli.classify",
    "speech_command": "cli.speech",
    "export_command": "cli.export",
    "average_command": "cli.average",
    "experiment_commands": "cli.experiments",
    "prepare_command": "cli.prepare",
}


class _Alias(importlib.abc.Loader):
    """Loads an old path as the module at its new home (which keeps its own spec)."""

    def __init__(self, new: str) -> None:
        self.new = new
        self.own_spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(f"{spec.name} moved to {self.new}; import it from there", DeprecationWarning, stacklevel=2)
        module = importlib.import_module(self.new)
        self.own_spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module at its new home is loaded; its own spec, which loading the alias replaced,
        is given back."""
        module.__spec__ = self.own_spec


class MovedModules(importlib.abc.MetaPathFinder):
    """Finds each old path of MOVED."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
                  ) -> importlib.machinery.ModuleSpec | None:
        package, _, old = fullname.partition(".")
        if package != "seq2seq" or old not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(f"seq2seq.{MOVED[old]}"))


def install() -> None:
    """Let old module paths import (once per process)."""
    if not any(isinstance(finder, MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(MovedModules())
