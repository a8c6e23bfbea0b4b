"""The floors of DESIGN.md's "Layers" table: a module imports only modules on its own floor or below."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "seq2seq"

# From the bottom up. A new module must be placed here: the test fails for a module missing from the table.
FLOORS: dict[int, set[str]] = {
    1: {"errors", "config", "vocab", "tokenizers", "metrics", "runtime", "device", "collector", "files", "plot",
        "options", "rundir", "reports"},
    2: {"data", "text", "lm_text", "conversations", "download", "datasets", "labels", "checks", "curves",
        "audio", "synthesis", "shards"},
    3: {"attention", "encoder", "kernels", "decoder", "model", "language_model", "ensemble", "loss", "objectives",
        "decoding", "classifier", "search", "speech_encoder"},
    4: {"optim", "train", "checkpoint", "metadata", "distributed", "divergence", "averaging", "board"},
    5: {"preparation", "api", "generation", "classification", "speech", "corpus"},
    6: {"chat", "cli", "serve", "onnx", "export", "classify_command", "export_command",
        "average_command", "compare", "experiment_commands", "speech_command", "prepare_command"},
}
FLOOR_OF = {name: floor for floor, names in FLOORS.items() for name in names}


def top_module(path: Path) -> str:
    """The module's name in the table: a package (serve/) counts as one module."""
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imported_modules(path: Path) -> set[str]:
    """Our modules that path imports (at any depth of the file, lazy imports included), by their table name."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            names = [f"seq2seq.{node.module or alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {name.split(".")[1] for name in names if name.startswith("seq2seq.")}
    return found & (FLOOR_OF.keys() | {top_module(p) for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"})


def sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py")


def test_every_module_has_a_floor() -> None:
    missing = sorted({top_module(path) for path in sources()} - FLOOR_OF.keys())
    assert not missing, f"add these modules to FLOORS (and DESIGN.md's table): {missing}"


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_down(path: Path) -> None:
    module = top_module(path)
    upward = sorted(f"{name} (floor {FLOOR_OF[name]})" for name in imported_modules(path) - {module}
                    if FLOOR_OF.get(name, 0) > FLOOR_OF.get(module, 0))
    assert not upward, f"{module} (floor {FLOOR_OF.get(module)}) imports from above: {', '.join(upward)}"


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The parser finds plain, from- and lazy (in-function) imports of our modules."""
    probe = tmp_path / "probe.py"
    probe.write_text("import seq2seq.api\nfrom seq2seq import chat\n\ndef f():\n    from seq2seq.cli import main\n")
    assert imported_modules(probe) == {"api", "chat", "cli"}


def test_loading_data_imports_no_model_training_or_app() -> None:
    """Reading pairs pulls in only the data floor and below: no model, trainer, api or app."""
    code = ("import sys, seq2seq.datasets; "
            "print(' '.join(m.split('.')[1] for m in sys.modules if m.startswith('seq2seq.')))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
                 .stdout.split())
    assert "datasets" in loaded
    above = sorted(name for name in loaded if FLOOR_OF.get(name, 0) > 2)
    assert not above, f"importing seq2seq.datasets loads {above}"
