"""The task registry: one `Task` per value of `config.task`, holding what every interface needs to know of it.

A task's module builds its Task and calls `register`; a built-in task's module is imported when the task is first
asked for by name (`get`), so a command about one task imports that task's module only. Nothing outside
`seq2seq.tasks` switches on a task's name: the API, the command line, compare, average, export and the server ask
the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seq2seq import config as configuration
from seq2seq.errors import CheckpointError, ConfigError
from seq2seq.models import architectures
from seq2seq.training import checkpoint
from seq2seq.utils.device import resolve_device
from seq2seq.utils.registry import Registry

if TYPE_CHECKING:
    import torch
    from torch import Tensor, nn

    from seq2seq.config import Config
    from seq2seq.data.metadata import ModelMetadata
    from seq2seq.decoding.options import DecodingOptions

BUILT_IN = {"seq2seq": "seq2seq.tasks.translation", "lm": "seq2seq.tasks.lm", "classify": "seq2seq.tasks.classify",
            "speech": "seq2seq.tasks.speech"}
"""The built-in tasks and the modules that register them."""

Columns = tuple[tuple[str, str], ...]  # (heading, key of the model's evaluate scores), best first


@dataclass(frozen=True)
class Task:
    """What the toolkit needs to know of one task.

    - name: the value of `config.task` saved in checkpoints; kind: its models in messages ("a classifier");
      command: the command that uses them; facade: the class `load` returns; sides: how many tokenizers and
      vocabularies its checkpoints hold.
    - read(config, spec): a data spec read into what train takes; item(value): one plain value (a tuple, a string)
      as one such item; train(config, items, dev_items, out_dir, resume): fit a model (after check(config): `start_run`
      checks only what holds for every task), return its facade.
    - build(metadata): the untrained model of a checkpoint; facade_of(model, metadata, device, precision): a model
      in its facade.
    - check(config): refuse the settings that do not apply to the task; columns(config): compare's score columns;
      use(facade, inputs): decode inputs (None: nothing to decode, as for a language model).
    - routes: the server's routes that serve its models, its own first.
    - export(config): the torch-free runtime that runs the export of a model of config ("translator",
      "generator" or "classifier": `seq2seq.onnx.loading.RUNTIMES`), or a ConfigError saying why it does not
      export (None: the task's models do not export); decoding: the decoding defaults its exports carry (None:
      its models decode nothing); prepares: `seq2seq prepare` can prepare its corpora.
    """

    name: str
    kind: str
    command: str
    facade: type
    sides: tuple[int, int]
    read: Callable[[Config, str], list[Any]]
    item: Callable[[Any], Any]
    train: Callable[[Config, Sequence[Any], Sequence[Any], str | Path, bool], Any]
    build: Callable[[ModelMetadata], nn.Module]
    facade_of: Callable[[nn.Module, ModelMetadata, torch.device, str | None], Any]
    check: Callable[[Config], None]
    columns: Callable[[Config], Columns]
    use: Callable[[Any, list[Any]], Any] | None
    routes: tuple[str, ...]
    export: Callable[[Config], str] | None = None
    decoding: DecodingOptions | None = None
    prepares: bool = False

    def check_sides(self, metadata: ModelMetadata, origin: str | Path) -> None:
        """CheckpointError unless the checkpoint holds as many tokenizers and vocabularies as the task needs."""
        if (len(metadata.tokenizers), len(metadata.vocabs)) != self.sides:
            raise CheckpointError(f"{origin}: task {self.name} needs {self.sides[0]} tokenizer(s) and "
                                  f"{self.sides[1]} vocabularies")


TASKS: Registry[Task] = Registry("task", "task", BUILT_IN)
"""This process's table of tasks, filled by `register`."""


def export_runtime(task: Task, config: Config) -> str:
    """The runtime of the export of a model of task with config (`Task.export`); a ConfigError says why it does not
    export."""
    if task.export is None:
        raise ConfigError(f"{task.kind} does not export to ONNX")
    return task.export(config)


def register(task: Task) -> Task:
    """Add task to the registry (replacing a task of the same name) and return it."""
    return TASKS.register(task.name, task)


def get(name: str) -> Task:
    """The task named name (a ConfigError names the known tasks)."""
    return TASKS.get(name)


def names() -> list[str]:
    """The names of the built-in tasks and of those registered since, built-in first."""
    return TASKS.names()


def tasks() -> list[Task]:
    """Every task of `names`."""
    return [get(name) for name in names()]


def of_model(model: Any) -> Task:
    """The task of a loaded model: a task's facade, or an exported model (whose manifest names its task)."""
    for task in tasks():
        if isinstance(model, task.facade):
            return task
    manifest = getattr(model, "manifest", None)
    if isinstance(manifest, dict) and "task" in manifest:
        return get(str(manifest["task"]))
    raise ConfigError(f"{type(model).__name__} is not a model of any task")


def validate(config: Config, origin: str | Path | None = None) -> Task:
    """The config's task, after the checks of every config (`config.validate`) and the task's own (`Task.check`);
    origin (the config's file) begins the message of an unknown task."""
    configuration.validate(config)
    architectures.check(config.model)
    try:
        task = get(config.task)
    except ConfigError as error:
        raise ConfigError(f"{origin}: {error}" if origin else str(error)) from None
    task.check(config)
    return task


def items(task: Task, values: Sequence[Any]) -> list[Any]:
    """values as the items task.train takes (plain tuples or strings converted by `Task.item`)."""
    return [task.item(value) for value in values]


def of_metadata(metadata: ModelMetadata, origin: str | Path) -> Task:
    """The task of a checkpoint's metadata, checked to hold the task's tokenizers and vocabularies; an unknown task
    is a CheckpointError naming origin."""
    try:
        task = get(metadata.task)
    except ConfigError as error:
        raise CheckpointError(f"{origin}: {error}") from None
    task.check_sides(metadata, origin)
    return task


def from_checkpoint(tensors: dict[str, Tensor], metadata: ModelMetadata, path: str | Path, device: str = "auto",
                    precision: str | None = None) -> Any:
    """The facade of a loaded checkpoint, by its task: its model built (`Task.build`), given the checkpoint's
    weights, moved to device (auto: CUDA when present) in eval mode, and put in its facade (`Task.facade_of`)."""
    task = of_metadata(metadata, path)
    model = task.build(metadata)
    checkpoint.load_model_weights(model, tensors, path)
    target = resolve_device(device)
    return task.facade_of(model.to(target).eval(), metadata, target, precision)


def load(path: str | Path, task: Task, device: str = "auto", precision: str | None = None) -> Any:
    """The facade of the model of task in a run directory (its best checkpoint) or a checkpoint file; a model of
    another task is a CheckpointError saying which command uses it."""
    tensors, metadata = checkpoint.read_model(path)
    found = of_metadata(metadata, path)
    if found != task:
        raise CheckpointError(f"{path}: {found.kind}, not {task.kind} (use seq2seq {found.command})")
    return from_checkpoint(tensors, metadata, path, device, precision)
