"""Every task through every interface: a tiny model of each task trained, resumed, evaluated, used, loaded, trained
from Python, averaged, compared, exported and prepared, with a one-line error wherever an interface refuses."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import seq2seq
from seq2seq.config import Config, apply_overrides
from seq2seq.data.synthesis import Voice, espeak_available, write_speech_list
from seq2seq.errors import ConfigError
from seq2seq.tasks import registry
from tests.cli.test_cli import one_line_error, run_cli
from tests.conftest import toy_pairs

SMALL = ["model.hidden_size=16", "model.embedding_size=8", "train.precision=fp32", "train.max_steps=6",
         "train.checkpoint_every=2", "train.keep_last=3", "train.eval_every=3", "data.batch_size=8"]


@dataclass
class TaskData:
    """A task's files: training and held-out data (as `train --train` takes them), the inputs its use command
    reads, and the config overrides of a tiny model."""

    train: Path
    held_out: Path
    inputs: list[str]
    overrides: list[str]
    plain: list[Any]  # a few training items as plain tuples or strings, for seq2seq.train


def _seq2seq(folder: Path) -> TaskData:
    pairs = toy_pairs("reverse", 60, seed=1)
    for name, rows in (("train.tsv", pairs), ("held_out.tsv", pairs[:8])):
        (folder / name).write_text("".join(f"{pair.src}\t{pair.tgt}\n" for pair in rows), encoding="utf-8")
    return TaskData(folder / "train.tsv", folder / "held_out.tsv", [pair.src for pair in pairs[:3]],
                    ["data.src.kind=word", "data.tgt.kind=word"], [(pair.src, pair.tgt) for pair in pairs[:20]])


def _lm(folder: Path) -> TaskData:
    rng = random.Random(2)
    lines = [" ".join(rng.choice(["the cat", "a dog", "sat", "ran", "on the mat"]) for _ in range(4))
             for _ in range(60)]
    (folder / "train.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "held_out.txt").write_text("\n".join(lines[:8]) + "\n", encoding="utf-8")
    return TaskData(folder / "train.txt", folder / "held_out.txt", [], ["data.entries=line"], lines[:20])


def _classify(folder: Path) -> TaskData:
    rng = random.Random(3)
    rows = []
    for _ in range(60):
        label = rng.choice("ab")
        rows.append((" ".join(rng.choice(label * 3 + "c") for _ in range(rng.randint(3, 7))), label))
    for name, chosen in (("train.tsv", rows), ("held_out.tsv", rows[:8])):
        (folder / name).write_text("".join(f"{text}\t{label}\n" for text, label in chosen), encoding="utf-8")
    return TaskData(folder / "train.tsv", folder / "held_out.tsv", [text for text, _ in rows[:3]],
                    ["data.src.kind=word", "data.src.split_punctuation=false"], rows[:20])


def _speech(folder: Path) -> TaskData:
    if not espeak_available():
        pytest.skip("espeak-ng is not installed")
    spoken = [(word, Voice("en+m1", 160, 40)) for word in ("cat", "dog", "seven")]
    train = write_speech_list(folder, "train", spoken, seed=1)
    rows = [line.split("\t") for line in train.read_text(encoding="utf-8").splitlines()]
    return TaskData(train, train, [str(folder / rows[0][0])], ["model.conv_channels=4", "data.audio.n_mels=16"],
                    [(str(folder / wav), text) for wav, text in rows])


DATA: dict[str, Callable[[Path], TaskData]] = {"seq2seq": _seq2seq, "lm": _lm, "classify": _classify,
                                               "speech": _speech}
TRANSFORMER = ["model.arch=transformer", "model.feedforward_size=32"]
MODELS = {**{task: (task, []) for task in DATA}, "seq2seq-transformer": ("seq2seq", TRANSFORMER),
          "lm-transformer": ("lm", TRANSFORMER), "speech-ctc": ("speech", ["model.ctc_weight=0.3"])}
"""Each task with its default model, the tasks with a Transformer too, and speech with a CTC head: (task, the
model's overrides)."""


def cli(*args: str | Path) -> tuple[int, str, str]:
    """run_cli, and no traceback whatever the outcome."""
    code, out, err = run_cli(*args)
    assert "Traceback" not in err, err
    return code, out, err


@dataclass
class Trained:
    task: registry.Task
    data: TaskData
    folder: Path

    @property
    def run(self) -> Path:
        return self.folder / "run"


@pytest.fixture(scope="module", params=list(MODELS))
def trained(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """A tiny model of the task trained through `seq2seq train` (6 steps), then resumed for 2 more."""
    name, model = MODELS[request.param]
    folder = tmp_path_factory.mktemp(request.param)
    data = DATA[name](folder)
    data.overrides += model
    task = registry.get(name)
    code, out, err = cli("train", "--task", task.name, "--train", data.train, "--dev", data.held_out, "--test",
                         data.held_out, "--out", folder / "run", *SMALL, *data.overrides)
    assert code == 0, err
    assert f"try: seq2seq {task.command} --model {folder / 'run'}" in out
    code, _, err = cli("train", "--resume", "--train", data.train, "--dev", data.held_out, "--out", folder / "run",
                       "train.max_steps=8")
    assert code == 0, err
    return Trained(task, data, folder)


def _last_step(run: Path) -> int:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    return max(row["step"] for row in rows)


def test_train_and_resume_leave_a_run_that_loads_as_the_task(trained: Trained) -> None:
    assert _last_step(trained.run) == 8
    assert not (trained.run / "train.lock").exists()
    model = seq2seq.load(trained.run)
    assert isinstance(model, trained.task.facade) and registry.of_model(model) is trained.task


def test_evaluate_json_gives_the_task_scores(trained: Trained) -> None:
    code, out, err = cli("evaluate", "--model", trained.run, "--data", trained.data.held_out, "--json")
    assert code == 0, err
    scores = json.loads(out)
    config = seq2seq.load(trained.run).config
    assert {key for _, key in trained.task.columns(config)} <= scores.keys()


def test_the_use_command_writes_one_output_per_input(trained: Trained) -> None:
    inputs = trained.data.inputs
    if trained.task.name == "speech":
        code, out, err = cli("transcribe", "--model", trained.run, *inputs)
    elif trained.task.name == "lm":
        code, out, err = cli("generate", "--model", trained.run, "--max-length", "5")
        inputs = [""]
    else:
        source = trained.folder / "inputs.txt"
        source.write_text("\n".join(inputs) + "\n", encoding="utf-8")
        code, out, err = cli(trained.task.command, "--model", trained.run, "--input", source)
    assert code == 0, err
    assert len(out.splitlines()) == len(inputs)


def test_python_train_takes_plain_items_and_returns_the_facade(trained: Trained, tmp_path: Path) -> None:
    config = apply_overrides(Config(), [f"task={trained.task.name}", *SMALL, "train.max_steps=2",
                                        "train.eval_every=0", *trained.data.overrides])
    model = seq2seq.train(config, trained.data.plain, out_dir=tmp_path / "python")
    assert isinstance(model, trained.task.facade)
    assert _last_step(tmp_path / "python") == 2


def test_average_writes_a_model_of_the_task(trained: Trained) -> None:
    out = trained.folder / "average"
    code, printed, err = cli("average", "--model", trained.run, "--last", "2", "--out", out)
    assert code == 0, err
    assert f"try: seq2seq {trained.task.command} --model {out}" in printed
    assert isinstance(seq2seq.load(out), trained.task.facade)
    assert sorted(path.name for path in out.iterdir()) == ["best.safetensors", "config.yaml"]


def test_compare_scores_the_task(trained: Trained) -> None:
    out = trained.folder / "compare"
    code, printed, err = cli("compare", "--task", trained.task.name, "--train", trained.data.train, "--dev",
                             trained.data.held_out, "--out", out, "--max-time", "2", "--set", "train.max_steps=2",
                             *[f"--set={override}" for override in [*SMALL[:3], *trained.data.overrides]],
                             "model.rnn=gru")
    assert code == 0, err
    config = seq2seq.load(out / "rnn=gru").config
    assert all(heading in printed for heading, _ in trained.task.columns(config))


def test_export_runs_the_task_or_refuses_in_one_line(trained: Trained) -> None:
    pytest.importorskip("onnxruntime")
    out = trained.folder / "export"
    code, printed, err = cli("export", "--model", trained.run, "--out", out)
    try:
        registry.export_runtime(trained.task, seq2seq.load(trained.run).config)
    except ConfigError as refusal:
        assert str(refusal) in one_line_error(code, err)
        assert not out.exists()
        return
    assert code == 0, err
    exported = seq2seq.load(out)
    assert registry.of_model(exported) is trained.task
    assert f"seq2seq {trained.task.command} --model {out}" in printed


def test_prepare_takes_the_tasks_that_prepare(trained: Trained) -> None:
    out = trained.folder / "prepared"
    code, _, err = cli("prepare", "--train", trained.data.train, "--out", out, f"task={trained.task.name}",
                       *trained.data.overrides)
    if not trained.task.prepares:
        assert f"not data of task {trained.task.name}" in one_line_error(code, err)
        return
    assert code == 0, err
    code, _, err = cli("train", "--train", out, "--out", trained.folder / "from_prepared", *SMALL[:3],
                       "train.max_steps=2")
    assert code == 0, err


ROUTE_BODIES: dict[str, dict[str, Any]] = {"/v1/translate": {"texts": ["a b c"]}, "/v1/generate": {"max_length": 3},
                                           "/v1/chat": {"message": "a b c"}, "/v1/classify": {"texts": ["a b c"]}}
"""A valid request of each JSON route (/v1/transcribe takes a WAV file's bytes)."""


def test_serve_answers_on_the_tasks_routes_and_refuses_the_others_in_4xx(trained: Trained) -> None:
    pytest.importorskip("uvicorn")
    soundfile = pytest.importorskip("soundfile")
    from seq2seq.serve import load_models
    from seq2seq.serve.app import all_routes
    from tests.serve.test_serve import client_for

    models, paths = load_models([f"model={trained.run}"])
    wav = io.BytesIO()
    soundfile.write(wav, np.zeros(1600, dtype=np.float32), 16000, format="WAV", subtype="PCM_16")
    audio = Path(trained.data.inputs[0]).read_bytes() if "/v1/transcribe" in trained.task.routes else wav.getvalue()
    routes = [route for route in all_routes() if route.startswith("/v1/") and route != "/v1/models"]
    with client_for(models, paths={"model": Path(paths["model"])}) as client:
        assert client.get("/v1/models").status_code == 200
        for route in routes:
            if route == "/v1/transcribe":
                answer = client.post(route, content=audio, headers={"content-type": "audio/wav"})
            else:
                answer = client.post(route, json=ROUTE_BODIES[route])
            expected = 200 if route in trained.task.routes else 400
            assert answer.status_code == expected, (route, answer.text)
            assert expected == 200 or "use " + trained.task.routes[0] in answer.json()["error"]
