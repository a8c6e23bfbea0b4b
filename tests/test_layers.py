"""The floors of the package: the one place the layer rule is written (DESIGN.md's "Layers"; the README points here).

A room is a subpackage (data/, models/, ...) or a top-level module (api, config, errors); a module imports only
rooms on its own floor or below, and only cli/ imports a command module.
"""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "seq2seq"

# From the bottom up. A new room must be placed here: the test fails for a room missing from the table.
FLOORS: dict[int, set[str]] = {
    1: {"errors", "config", "utils"},            # import nothing of ours above them
    2: {"data"},                                 # text and audio -> examples; no model, task or app
    3: {"models", "decoding", "evaluation"},     # encode / init_state / step, the search over it, metrics
    4: {"training"},                             # model-agnostic: a model and a loss function
    5: {"tasks", "onnx"},                        # each task's facade; export and the torch-free runtime
    6: {"api", "experiments"},                   # load / train
    7: {"serve", "cli"},                         # thin: parse, call api or a task, serialise
}
FLOOR_OF = {room: floor for floor, rooms in FLOORS.items() for room in rooms}


def room_of(path: Path) -> str:
    """The room of a source file: its subpackage, or its own name at the top level."""
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imported_paths(path: Path) -> set[str]:
    """Dotted paths under seq2seq that path imports (at any depth of the file, lazy imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            raise AssertionError(f"{path}: relative import; write seq2seq.ROOM.MODULE")
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {name for name in names if name.startswith("seq2seq.")}
    return found


def imported_rooms(path: Path) -> set[str]:
    return {name.split(".")[1] for name in imported_paths(path)} & FLOOR_OF.keys()


def sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py")


def test_every_room_has_a_floor() -> None:
    missing = sorted({room_of(path) for path in sources()} - FLOOR_OF.keys())
    assert not missing, f"add these rooms to FLOORS (and DESIGN.md's table): {missing}"


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_down(path: Path) -> None:
    room = room_of(path)
    upward = sorted(f"{name} (floor {FLOOR_OF[name]})" for name in imported_rooms(path)
                    if FLOOR_OF[name] > FLOOR_OF[room])
    assert not upward, f"{room} (floor {FLOOR_OF[room]}) imports from above: {', '.join(upward)}"


def test_only_the_command_line_imports_command_modules() -> None:
    outside = sorted(str(path.relative_to(PACKAGE)) for path in sources() if room_of(path) != "cli"
                     and any(name.startswith("seq2seq.cli") for name in imported_paths(path)))
    assert not outside, f"import a command module: {outside}"


def test_no_chain_of_imports_is_longer_than_nine_rooms() -> None:
    """The longest chain of imports between rooms, counted in rooms: the table's floors, plus the imports within a
    floor (config -> errors, experiments -> api, cli -> serve); 8 today, at most 9."""
    edges: dict[str, set[str]] = {room: set() for room in FLOOR_OF}
    for path in sources():
        edges[room_of(path)] |= imported_rooms(path) - {room_of(path)}

    @functools.cache
    def height(room: str) -> int:
        return 1 + max((height(below) for below in edges[room]), default=0)

    assert max(height(room) for room in FLOOR_OF) <= 9


def test_the_check_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The parser finds plain, from- and lazy (in-function) imports of our modules."""
    probe = tmp_path / "probe.py"
    probe.write_text("import seq2seq.api\nfrom seq2seq.tasks import chat\n\n"
                     "def f():\n    from seq2seq.cli import main\n")
    assert imported_paths(probe) == {"seq2seq.api", "seq2seq.tasks.chat", "seq2seq.cli.main"}


def loaded_rooms(module: str) -> set[str]:
    """The rooms of seq2seq that a fresh process has loaded after importing module."""
    code = (f"import sys, {module}; "
            "print(' '.join(m.split('.')[1] for m in sys.modules if m.startswith('seq2seq.')))")
    return set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
               .stdout.split())


@pytest.mark.slow
def test_loading_data_imports_no_model_training_or_app() -> None:
    """Reading pairs pulls in only the data floor and below: no model, trainer, api or app."""
    loaded = loaded_rooms("seq2seq.data.datasets")
    assert "data" in loaded
    above = sorted(name for name in loaded if FLOOR_OF.get(name, 0) > 2)
    assert not above, f"importing seq2seq.data.datasets loads {above}"


@pytest.mark.slow
def test_importing_a_package_imports_none_of_its_modules() -> None:
    """Subpackages are lazy: the torch-free runtime reads modules of data/ and decoding/ whose siblings import
    torch, so `import seq2seq.data` must not import them."""
    assert loaded_rooms("seq2seq.data, seq2seq.decoding, seq2seq.onnx, seq2seq.models") <= {
        "data", "decoding", "onnx", "models", "utils"}
    code = "import sys, seq2seq.data, seq2seq.decoding, seq2seq.onnx; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_training_knows_no_model() -> None:
    """The trainer takes a model and a loss function (training/objective.py); it imports no model kind."""
    importers = sorted(str(path.relative_to(PACKAGE)) for path in sources()
                       if room_of(path) == "training" and "models" in imported_rooms(path))
    assert not importers, f"training imports models: {importers}"


def test_the_command_line_reaches_models_only_through_api_and_tasks() -> None:
    """cli/ parses, calls api or a task, and prints: it imports no model, search, trainer loop or checkpoint."""
    forbidden = ("seq2seq.models", "seq2seq.decoding.search", "seq2seq.training.trainer",
                 "seq2seq.training.checkpoint")
    found = sorted(f"{path.relative_to(PACKAGE)}: {name}" for path in sources() if room_of(path) == "cli"
                   for name in imported_paths(path) if name.startswith(forbidden))
    assert not found, f"the command line imports below api: {found}"


def test_every_import_names_a_room() -> None:
    """No module imports an old path of the flat layout (which would still work, through a warning)."""
    unknown = sorted(f"{path.relative_to(PACKAGE)}: {name}" for path in sources() for name in imported_paths(path)
                     if name.split(".")[1] not in FLOOR_OF)
    assert not unknown, f"imports of no room: {unknown}"


FACADES = {"Translator", "TextGenerator", "TextClassifier", "SpeechTranscriber", "Chatbot", "OnnxTranslator",
           "OnnxGenerator", "OnnxClassifier"}
TASK_CLASSES = FACADES | {"Seq2Seq", "LanguageModel", "Classifier", "SpeechSeq2Seq"}
"""The facades and model classes of the tasks: outside tasks/, code asks the registry instead of checking them."""


def _names_a_task(node: ast.expr) -> bool:
    """`x.task`, `task`, `task_of(...)`, `x["task"]` or `x.get("task")`: an expression that reads a task's name."""
    if isinstance(node, ast.Attribute | ast.Name):
        return (node.attr if isinstance(node, ast.Attribute) else node.id) in {"task", "task_name"}
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value == "task"
    if isinstance(node, ast.Call):
        function = node.func
        name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
        reads_key = name == "get" and node.args and isinstance(node.args[0], ast.Constant) and \
            node.args[0].value == "task"
        return name == "task_of" or bool(reads_key)
    return False


def _is_text(node: ast.expr) -> bool:
    """A string literal, or a tuple, list or set of them."""
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return bool(node.elts) and all(map(_is_text, node.elts))
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def task_switches(path: Path, models: bool = True) -> list[str]:
    """Where path compares a task's name to a string or isinstance-checks a facade (or, with models, a model class)
    of a task."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(map(_names_a_task, operands)) and any(map(_is_text, operands)):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "isinstance" and len(node.args) == 2:
            kinds = node.args[1].elts if isinstance(node.args[1], ast.Tuple) else [node.args[1]]
            named = {kind.attr if isinstance(kind, ast.Attribute) else getattr(kind, "id", "") for kind in kinds}
            if named & (TASK_CLASSES if models else FACADES):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


MODEL_KINDS_OF_EXPORT = PACKAGE / "onnx" / "export.py"
"""The export writes each model kind's graphs (`Seq2Seq`, `LanguageModel`, `Classifier`): the one module outside
tasks/ that checks model classes, until model kinds register themselves as tasks do."""


def test_only_tasks_switch_on_the_task() -> None:
    """Outside tasks/, no module compares a task's name to a string or checks a task's facade or model class: the
    registry (tasks/registry.py) holds what differs between tasks."""
    found = [f"{path.relative_to(PACKAGE)} {switch}" for path in sources() if room_of(path) != "tasks"
             for switch in task_switches(path, models=path != MODEL_KINDS_OF_EXPORT)]
    assert not found, "ask seq2seq.tasks.registry instead:\n" + "\n".join(found)


def test_the_task_check_sees_every_kind_of_switch(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text('if config.task == "lm": pass\nif api.task_of(m) != "lm": pass\nif "lm" == task: pass\n'
                     'if manifest.get("task") == "lm": pass\nif values["task"] in ("lm",): pass\n'
                     "if isinstance(m, (TextClassifier, int)): pass\nif isinstance(m, classify.TextClassifier): "
                     "pass\nif config.kind == 'char': pass\nif isinstance(m, Ensemble): pass\n")
    assert [line.split(":")[0] for line in task_switches(probe)] == [f"line {n}" for n in range(1, 8)]
