"""Serve models over HTTP: `create_app(models)` is an ASGI app (FastAPI) with a JSON API and a web page."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from seq2seq import api, export_command
from seq2seq.classification import TextClassifier
from seq2seq.errors import Seq2SeqError
from seq2seq.serve.app import ApiError, Limits, Model, Settings, create_app

__all__ = ["ApiError", "Limits", "Settings", "create_app", "load_models"]


def load_models(specs: Sequence[str], device: str = "auto", precision: str | None = None
                ) -> tuple[dict[str, Model], dict[str, str]]:
    """Load `DIR` or `NAME=DIR` specs (DIR1,DIR2 for an ensemble): name -> model, and name -> its first directory.

    Unnamed models take their directory's name; precision is the autocast of decoding (`api.load`; None: as trained).
    A directory written by `seq2seq export` (a translation or language model) runs on ONNX Runtime.
    """
    models: dict[str, Model] = {}
    paths: dict[str, str] = {}
    for spec in specs:
        name, _, location = spec.rpartition("=")
        directories = [part for part in location.split(",") if part]
        if not directories:
            raise Seq2SeqError(f"--model {spec}: no directory")
        name = name or Path(directories[0]).resolve().name
        if name in models:
            raise Seq2SeqError(f"--model {spec}: a model named {name!r} is already loaded; name it NAME=DIR")
        model = export_command.load(directories, precision, partial(_load, device=device), task=None)
        if isinstance(model, TextClassifier):
            raise Seq2SeqError(f"--model {spec}: a classifier; serve does not serve classifiers yet")
        models[name] = model
        paths[name] = directories[0]
    return models, paths


def _load(directories: Sequence[str], device: str, precision: str | None) -> Any:
    """`api.load` of one run directory or checkpoint, or of an ensemble."""
    return api.load(directories if len(directories) > 1 else directories[0], device, precision)
