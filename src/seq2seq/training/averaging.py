"""Checkpoint averaging: the mean of the weights of several checkpoints of one model (the last K of a run, kept by
train.keep_last, or any list), written as a run directory that loads like any other."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from seq2seq.config import save_config
from seq2seq.data.metadata import ModelMetadata
from seq2seq.errors import CheckpointError, ConfigError
from seq2seq.training import checkpoint, rundir

AVERAGED = "averaged"
"""The metadata key of an averaged checkpoint: the files (and their training steps) it is the mean of."""


def last_checkpoints(run_dir: str | Path, count: int) -> list[Path]:
    """The count newest numbered checkpoints of a run (train.keep_last), oldest first."""
    if count < 1:
        raise ConfigError(f"--last must be at least 1, not {count}")
    if not Path(run_dir).is_dir():
        raise CheckpointError(f"{run_dir}: no such run directory")
    kept = checkpoint.numbered_checkpoints(run_dir)
    if len(kept) < count:
        raise CheckpointError(f"{run_dir}: {len(kept)} numbered checkpoints (checkpoint-STEP.safetensors), fewer than "
                              f"--last {count}; train with train.keep_last={count} or more")
    return kept[-count:]


def average_checkpoints(paths: Sequence[str | Path]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The mean of the model weights of the checkpoints at paths (a run directory means its best), summed in float64
    and given back their own dtype; integer tensors must be equal. Returns the tensors and the first checkpoint's
    metadata, without training state, with the files averaged under AVERAGED."""
    if not paths:
        raise CheckpointError("averaging needs at least one checkpoint")
    files = [checkpoint.resolve_checkpoint(path) for path in paths]
    reference, metadata = _model_part(files[0])
    sums = {name: tensor.double() if tensor.is_floating_point() else tensor for name, tensor in reference.items()}
    steps = [_step(metadata)]
    for file in files[1:]:
        tensors, values = _model_part(file)
        _check_same(file, tensors, values, files[0], reference, metadata)
        for name, tensor in tensors.items():
            if tensor.is_floating_point():
                sums[name] += tensor.double()
        steps.append(_step(values))
    averaged = {name: (total / len(files)).to(reference[name].dtype) if reference[name].is_floating_point() else total
                for name, total in sums.items()}
    written = _without_progress(metadata)
    written[AVERAGED] = [{"file": str(file), "step": step} for file, step in zip(files, steps, strict=True)]
    return averaged, written


def write_average(paths: Sequence[str | Path], out_dir: str | Path,
                  check: Callable[[ModelMetadata], object] = lambda metadata: None) -> dict[str, Any]:
    """Average the checkpoints at paths into the run directory out_dir (best.safetensors and config.yaml), which
    must not hold any of them; returns the averaged checkpoint's metadata. check(metadata) may refuse the average
    (raising) before anything is written.

    Averaging is not a training and holds no lock while it writes (a training started meanwhile is not refused);
    a directory that a training is writing is refused before any work."""
    out = Path(out_dir)
    for file in map(checkpoint.resolve_checkpoint, paths):
        if file.parent.resolve() == out.resolve():
            raise CheckpointError(f"{out}: holds {file.name}, one of the checkpoints to average; choose another --out")
    rundir.check_writable(out)
    tensors, metadata = average_checkpoints(paths)
    described = ModelMetadata.from_dict(metadata, str(paths[0]))
    check(described)
    with rundir.writing(out, lock=False):
        out.mkdir(parents=True, exist_ok=True)
        save_config(described.config, out / "config.yaml")
        checkpoint.save_checkpoint(out / "best.safetensors", tensors, metadata)
    return metadata


def _model_part(file: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """A checkpoint's model tensors and its metadata (checked to describe a model)."""
    tensors, values = checkpoint.load_checkpoint(file)
    ModelMetadata.from_dict(values, str(file))
    return {name: tensor for name, tensor in tensors.items() if name.startswith("model.")}, values


def _check_same(file: Path, tensors: dict[str, Tensor], values: dict[str, Any], first: Path,
                reference: dict[str, Tensor], metadata: dict[str, Any]) -> None:
    """A CheckpointError naming file when it is not a checkpoint of the same model as first."""
    if _description(values) != _description(metadata):
        raise CheckpointError(f"{file}: its task, data or model settings, tokenizers or vocabularies differ from those "
                              f"of {first}; only checkpoints of one model can be averaged")
    differing = sorted(set(tensors) ^ set(reference))
    if differing:
        raise CheckpointError(f"{file}: its tensors differ from those of {first} ({differing[0]} is in one only)")
    for name, tensor in tensors.items():
        expected = reference[name]
        if tensor.shape != expected.shape or tensor.dtype != expected.dtype:
            raise CheckpointError(f"{file}: {name} is {tensor.dtype} {tuple(tensor.shape)} where {first} has "
                                  f"{expected.dtype} {tuple(expected.shape)}")
        if not tensor.is_floating_point() and not tensor.equal(expected):
            raise CheckpointError(f"{file}: the integer tensor {name} differs from that of {first} (only floating "
                                  "weights are averaged)")


def _without_progress(values: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's metadata without its format, training state and the files it was averaged from."""
    return {key: value for key, value in values.items() if key not in ("format", "training", AVERAGED)}


def _description(values: dict[str, Any]) -> dict[str, Any]:
    """What checkpoints of one model share: their metadata but for training progress and the train.* settings."""
    description = _without_progress(values)
    description["config"] = {key: value for key, value in values["config"].items() if key != "train"}
    return description


def _step(values: dict[str, Any]) -> int | None:
    """The training step a checkpoint was written at (None for a best checkpoint, which does not record it)."""
    return values.get("training", {}).get("state", {}).get("step")
