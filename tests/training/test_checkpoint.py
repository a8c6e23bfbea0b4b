"""Tests for seq2seq.training.checkpoint: round trips, atomic writes, corrupt files, resolution, optimizer state."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from seq2seq.errors import CheckpointError
from seq2seq.training.checkpoint import (
    load_checkpoint,
    optimizer_state,
    optimizer_tensors,
    remove_temporaries,
    resolve_checkpoint,
    restore_rng,
    rng_tensors,
    save_checkpoint,
)

METADATA = {"config": {"model": {"hidden_size": 16}}, "vocabs": [{"tokens": ["<pad>", "ä", "日本"]}], "n": 3}


def sample_tensors() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {"model.w": torch.randn(3, 4, generator=generator), "model.b": torch.arange(5),
            "model.t": torch.randn(4, 3, generator=generator).t(),  # not contiguous
            "flag": torch.tensor([True, False])}


def test_round_trip(tmp_path: Path) -> None:
    """Tensors (dtype, shape, values) and JSON metadata come back unchanged."""
    tensors = sample_tensors()
    save_checkpoint(tmp_path / "run" / "best.safetensors", tensors, METADATA)
    loaded, metadata = load_checkpoint(tmp_path / "run" / "best.safetensors")
    assert loaded.keys() == tensors.keys()
    for name, tensor in tensors.items():
        assert loaded[name].dtype == tensor.dtype and torch.equal(loaded[name], tensor)
    assert {k: v for k, v in metadata.items() if k != "format"} == METADATA


def test_atomic_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    """Writing (and overwriting) leaves only the checkpoint itself, readable like other new files."""
    path = tmp_path / "last.safetensors"
    save_checkpoint(path, sample_tensors(), METADATA)
    save_checkpoint(path, {"model.w": torch.zeros(2)}, {"n": 4})
    assert [p.name for p in tmp_path.iterdir()] == ["last.safetensors"]
    tensors, metadata = load_checkpoint(path)
    assert list(tensors) == ["model.w"] and metadata["n"] == 4
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_leftovers_of_a_killed_save_are_removed(tmp_path: Path) -> None:
    """What a save killed midway leaves (its temporary folder, or an older version's temporary file) is cleaned up;
    checkpoints and other files stay."""
    path = tmp_path / "last.safetensors"
    save_checkpoint(path, sample_tensors(), METADATA)
    folder = tmp_path / ".last.safetensors.k3j2.tmp"
    folder.mkdir()
    (folder / ".tmpAbC123").write_bytes(b"partial")
    (tmp_path / ".best.safetensors.x9.tmp").write_bytes(b"partial")
    (tmp_path / "notes.tmp").write_text("mine")
    remove_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.safetensors", "notes.tmp"]
    assert load_checkpoint(path)[1]["n"] == 3


def test_failed_write_keeps_previous_checkpoint(tmp_path: Path) -> None:
    """A save that fails midway (unserialisable metadata) leaves the old file and no temporary."""
    path = tmp_path / "last.safetensors"
    save_checkpoint(path, sample_tensors(), METADATA)
    with pytest.raises(TypeError):
        save_checkpoint(path, {"model.w": torch.zeros(2)}, {"bad": object()})
    assert [p.name for p in tmp_path.iterdir()] == ["last.safetensors"]
    assert load_checkpoint(path)[1]["n"] == 3


def corrupted_message(path: Path) -> str:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    return message


def test_truncated_file(tmp_path: Path) -> None:
    """A checkpoint cut off anywhere raises CheckpointError naming the file."""
    path = tmp_path / "best.safetensors"
    save_checkpoint(path, sample_tensors(), METADATA)
    data = path.read_bytes()
    for size in (0, 5, 20, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:size])
        corrupted_message(path)


def test_random_bytes(tmp_path: Path) -> None:
    """Garbage raises CheckpointError naming the file."""
    path = tmp_path / "best.safetensors"
    path.write_bytes(bytes(range(256)) * 8)
    assert "not a readable seq2seq checkpoint" in corrupted_message(path)
    path.write_bytes(b"not a checkpoint at all")
    corrupted_message(path)


def test_foreign_safetensors_file(tmp_path: Path) -> None:
    """A valid safetensors file without our metadata is rejected."""
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    corrupted_message(path)
    save_file({"w": torch.zeros(2)}, str(path), metadata={"seq2seq": '{"format": "other-9"}'})
    assert "unsupported checkpoint format" in corrupted_message(path)


def test_missing_file(tmp_path: Path) -> None:
    """A missing file raises CheckpointError naming it."""
    assert "not found" in corrupted_message(tmp_path / "nope.safetensors")


def test_resolve_checkpoint(tmp_path: Path) -> None:
    """A directory means best, else last, else an error; a file means itself; a missing path is an error."""
    with pytest.raises(CheckpointError, match="no checkpoint"):
        resolve_checkpoint(tmp_path)
    save_checkpoint(tmp_path / "last.safetensors", {}, {})
    assert resolve_checkpoint(tmp_path) == tmp_path / "last.safetensors"
    save_checkpoint(tmp_path / "best.safetensors", {}, {})
    assert resolve_checkpoint(tmp_path) == tmp_path / "best.safetensors"
    assert resolve_checkpoint(tmp_path / "last.safetensors") == tmp_path / "last.safetensors"
    with pytest.raises(CheckpointError) as info:
        resolve_checkpoint(tmp_path / "missing")
    assert str(tmp_path / "missing") in str(info.value)


def test_optimizer_round_trip(tmp_path: Path) -> None:
    """Adam state after a step survives the checkpoint and makes the same next update."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    tensors, json_part = optimizer_tensors(optimizer.state_dict())
    tensors.update({f"model.{k}": v for k, v in model.state_dict().items()})
    save_checkpoint(tmp_path / "last.safetensors", tensors, {"optimizer": json_part})
    loaded, metadata = load_checkpoint(tmp_path / "last.safetensors")

    clone = torch.nn.Linear(4, 3)
    clone.load_state_dict({k[6:]: v for k, v in loaded.items() if k.startswith("model.")})
    clone_optimizer = torch.optim.Adam(clone.parameters(), lr=0.5)
    clone_optimizer.load_state_dict(optimizer_state(loaded, metadata["optimizer"]))
    original, restored = optimizer.state_dict(), clone_optimizer.state_dict()
    assert [{**g, "betas": tuple(g["betas"])} for g in restored["param_groups"]] == original["param_groups"]
    for index, entry in original["state"].items():
        for name, value in entry.items():
            assert torch.equal(restored["state"][index][name], value)

    batch = torch.randn(2, 4)
    for net, opt in ((model, optimizer), (clone, clone_optimizer)):
        opt.zero_grad()
        net(batch).sum().backward()
        opt.step()
    for a, b in zip(model.parameters(), clone.parameters(), strict=True):
        assert torch.equal(a, b)


def test_rng_round_trip() -> None:
    """restore_rng brings back the generator state saved by rng_tensors."""
    saved = rng_tensors()
    first = torch.rand(5)
    restore_rng(saved)
    assert torch.equal(torch.rand(5), first)
