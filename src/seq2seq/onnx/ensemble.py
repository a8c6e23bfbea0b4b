"""Opening an export on ONNX Runtime: one model's graphs, or an ensemble's members' graphs decoding as one
(`decoding.ensemble.Ensemble`, the class PyTorch ensembles use)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seq2seq.decoding.ensemble import Ensemble
from seq2seq.errors import CheckpointError
from seq2seq.onnx.graphs import ENCODER, ENSEMBLE_FORMAT, MANIFEST, STEP
from seq2seq.onnx.model import OnnxModel


def open_model(directory: Path, manifest: dict[str, Any], threads: int = 0) -> OnnxModel | Ensemble:
    """The export's model by its format: its two graphs, or an ensemble's members' (each in the folder its entry
    names, inside the export). An entry missing what it needs is a CheckpointError naming the manifest."""
    if manifest["format"] != ENSEMBLE_FORMAT:
        return OnnxModel(directory, _checked_entry(directory, manifest), threads)
    members = manifest.get("members")
    if not isinstance(members, list) or not members:
        raise CheckpointError(f"{directory / MANIFEST}: an ensemble export without its list of members")
    return Ensemble([OnnxModel(_member_folder(directory, member), _checked_entry(directory, member), threads)
                     for member in members])


def _member_folder(directory: Path, member: Any) -> Path:
    """The folder of one member: a relative path inside the export."""
    folder = member.get("directory") if isinstance(member, dict) else None
    if not isinstance(folder, str) or Path(folder).is_absolute() or ".." in Path(folder).parts:
        raise CheckpointError(f"{directory / MANIFEST}: a member's directory must be a folder inside the export, "
                              f"not {folder!r}")
    return directory / folder


def _checked_entry(directory: Path, entry: Any) -> dict[str, Any]:
    """entry, once it holds the graphs' hashes and the layout that OnnxModel reads."""
    graphs, layout = (entry.get(key) if isinstance(entry, dict) else None for key in ("graphs", "layout"))
    if not (isinstance(graphs, dict) and {ENCODER, STEP} <= graphs.keys() and isinstance(layout, dict)
            and {"state", "target_vocab_size", "copy"} <= layout.keys()):
        raise CheckpointError(f"{directory / MANIFEST}: damaged manifest (a model entry lacks its graphs' hashes or "
                              "its layout)")
    return entry
