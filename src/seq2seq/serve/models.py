"""The models a server serves, loaded from `--model` specs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from seq2seq import api
from seq2seq.errors import Seq2SeqError
from seq2seq.serve.app import Model


def load_models(specs: Sequence[str], device: str = "auto", precision: str | None = None
                ) -> tuple[dict[str, Model], dict[str, str]]:
    """Load `DIR` or `NAME=DIR` specs (DIR1,DIR2 for an ensemble): name -> model, and name -> its first directory.

    Unnamed models take their directory's name; precision is the autocast of decoding (`api.load`; None: as trained).
    Any task serves (`app.routes_of`); a directory written by `seq2seq export` (a translation model, language model or
    classifier) runs on ONNX Runtime.
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
        models[name] = api.load(directories, device, precision)
        paths[name] = directories[0]
    return models, paths
