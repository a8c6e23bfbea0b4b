"""Self-contained checkpoints: tensors in one safetensors file, config and vocabularies as JSON in its header.

Files are written to a temporary name and renamed, so a process killed at any moment leaves the previous
complete checkpoint in place. Loading never unpickles anything.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from seq2seq.data.metadata import ModelMetadata
from seq2seq.errors import CheckpointError
from seq2seq.utils import files
from seq2seq.utils.files import atomic_path

FORMAT = "seq2seq-checkpoint-1"
METADATA_KEY = "seq2seq"


def save_checkpoint(path: str | Path, tensors: dict[str, Tensor], metadata: dict[str, Any]) -> None:
    """Atomically write tensors and JSON-serialisable metadata to path (`files.atomic_path`); a failed write (disk
    full, read-only) raises CheckpointError naming the folder and leaves what path held before."""
    header = {METADATA_KEY: json.dumps({"format": FORMAT, **metadata})}
    contiguous = _unshared({name: t.detach().contiguous().cpu() for name, t in tensors.items()})
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as temporary:
            save_file(contiguous, temporary, metadata=header)
    except (OSError, SafetensorError) as error:
        reason = error.strerror if isinstance(error, OSError) else str(error).rpartition(": ")[2]
        raise CheckpointError(f"{path.parent}: cannot write {path.name} ({reason}); the previous checkpoint is "
                              "kept") from None


def _unshared(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """The tensors, those that share memory with an earlier one (tied weights) copied: safetensors stores each
    tensor's bytes apart, and loading ties them again when the model is built."""
    seen: set[int] = set()
    unshared = {}
    for name, tensor in tensors.items():
        pointer = tensor.untyped_storage().data_ptr()
        unshared[name] = tensor.clone() if pointer in seen and tensor.numel() else tensor
        seen.add(pointer)
    return unshared


NUMBERED = "checkpoint-{step}.safetensors"
"""The name of a kept copy of the last checkpoint (train.keep_last), by training step."""


def keep_numbered(last: str | Path, step: int, keep: int) -> Path:
    """Keep a copy of the last checkpoint as checkpoint-STEP.safetensors beside it (a hard link where the file
    system allows, which `save_checkpoint`'s renames never change, else a copy; written atomically), then delete the
    numbered checkpoints older than the keep newest."""
    last = Path(last)
    numbered = last.with_name(NUMBERED.format(step=step))
    with atomic_path(numbered) as temporary:
        try:
            os.link(last, temporary)
        except OSError:
            shutil.copyfile(last, temporary)
    for old in numbered_checkpoints(last.parent)[:-keep]:
        old.unlink(missing_ok=True)
    return numbered


def numbered_checkpoints(directory: str | Path) -> list[Path]:
    """The numbered checkpoints (checkpoint-STEP.safetensors) in directory, oldest step first."""
    found = []
    for path in Path(directory).glob(NUMBERED.format(step="*")):
        step = path.name[len("checkpoint-"):-len(".safetensors")]
        if step.isdigit():
            found.append((int(step), path))
    return [path for _, path in sorted(found)]


def remove_temporaries(directory: str | Path) -> None:
    """Delete what a process killed in the middle of `save_checkpoint` left behind."""
    files.remove_temporaries(directory, "*.safetensors")


def load_checkpoint(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read tensors and metadata; a missing, truncated or foreign file raises CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
        metadata = json.loads(header[METADATA_KEY])
    except (SafetensorError, OSError, KeyError, ValueError) as error:
        raise CheckpointError(f"{path}: not a readable seq2seq checkpoint ({error})") from error
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path}: unsupported checkpoint format {metadata.get('format')!r}")
    return tensors, metadata


def read_model(path: str | Path) -> tuple[dict[str, Tensor], ModelMetadata]:
    """The tensors and the checked metadata of a run directory's best checkpoint, or of a checkpoint file."""
    file = resolve_checkpoint(path)
    tensors, values = load_checkpoint(file)
    return tensors, ModelMetadata.from_dict(values, str(file))


def resolve_checkpoint(model_path: str | Path) -> Path:
    """A run directory means its best checkpoint (or its last when no best exists); a file means itself."""
    path = Path(model_path)
    if path.is_dir():
        for name in ("best.safetensors", "last.safetensors"):
            if (path / name).is_file():
                return path / name
        raise CheckpointError(f"{path}: no checkpoint in this directory (expected best.safetensors)")
    if not path.exists():
        raise CheckpointError(f"{path}: no such model directory or checkpoint file")
    return path


def optimizer_tensors(state: dict[str, Any]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Split an optimizer state_dict into flat tensors and a JSON part."""
    tensors = {f"optimizer.{index}.{name}": value for index, entry in state["state"].items()
               for name, value in entry.items()}
    return tensors, {"param_groups": state["param_groups"]}


def optimizer_state(tensors: dict[str, Tensor], json_part: dict[str, Any]) -> dict[str, Any]:
    """Inverse of `optimizer_tensors`."""
    state: dict[int, dict[str, Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": json_part["param_groups"]}


def rng_tensors() -> dict[str, Tensor]:
    """Random generator states, so that a resumed run draws the same dropout masks."""
    tensors = {"rng.cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    return tensors


def restore_rng(tensors: dict[str, Tensor]) -> None:
    torch.set_rng_state(tensors["rng.cpu"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])


def load_model_weights(model: torch.nn.Module, tensors: dict[str, Tensor], path: str | Path) -> None:
    """Copy a checkpoint's `model.*` tensors into model; weights that do not fit its config raise CheckpointError."""
    try:
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    except RuntimeError as error:
        raise CheckpointError(f"{path}: weights do not match the saved config ({str(error).splitlines()[0]})") \
            from error
