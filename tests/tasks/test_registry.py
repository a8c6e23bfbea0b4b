"""The task registry: the built-in tasks, and a new task that is one module plus its registration, written here (a
majority vote over a bag of words) and driven through train, evaluate, use, average and resume."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional

import seq2seq
from seq2seq.config import Config
from seq2seq.data.labels import LABEL_OFFSET, read_labelled
from seq2seq.data.metadata import ModelMetadata
from seq2seq.data.pairs import Batch, Pair, as_pair
from seq2seq.data.preparation import prepare_labelled
from seq2seq.data.vocab import PAD_ID
from seq2seq.errors import CheckpointError, ConfigError, DataError
from seq2seq.tasks import registry
from seq2seq.training import checkpoint
from seq2seq.training.trainer import Trainer, run_training, start_run
from tests.cli.test_cli import one_line_error, run_cli
from tests.tasks.test_classification import majority_pairs

# ---- the module of a new task: its model, loss, facade, training, loading and registration


class BagOfWords(nn.Module):
    """Class scores as the sum of one learned vector per token."""

    def __init__(self, vocab_size: int, classes: int) -> None:
        super().__init__()
        self.scores = nn.EmbeddingBag(vocab_size, classes, mode="sum", padding_idx=PAD_ID)

    def forward(self, src: Tensor) -> Tensor:
        return self.scores(src)  # (B, C)


def vote_loss(model: nn.Module, batch: Batch) -> tuple[Tensor, int]:
    targets = batch.tgt_out[:, 0] - LABEL_OFFSET  # (B,)
    return functional.cross_entropy(model(batch.src), targets, reduction="sum"), len(targets)


@dataclass
class Voter:
    model: BagOfWords
    config: Config
    metadata: ModelMetadata

    def vote(self, texts: Sequence[str]) -> list[str]:
        tokenizer, (words, labels) = self.metadata.tokenizers[0], self.metadata.vocabs
        with torch.no_grad():
            for_each = [self.model(torch.tensor([words.encode(tokenizer.tokenize(text)) or [PAD_ID]]))
                        for text in texts]
        return [labels.itos[LABEL_OFFSET + int(scores.argmax())] for scores in for_each]

    def evaluate(self, pairs: Sequence[Pair]) -> dict[str, float]:
        votes = self.vote([pair.src for pair in pairs])
        return {"accuracy": 100 * sum(v == p.tgt for v, p in zip(votes, pairs, strict=True)) / len(pairs)}


def build_voter(metadata: ModelMetadata) -> BagOfWords:
    words, labels = metadata.vocabs
    return BagOfWords(len(words), len(labels) - LABEL_OFFSET)


def voter_of(model: nn.Module, metadata: ModelMetadata, device: torch.device, precision: str | None) -> Voter:
    return Voter(model, metadata.config, metadata)  # type: ignore[arg-type]


def train_voter(config: Config, pairs: Sequence[Pair], dev: Sequence[Pair], out_dir: str | Path,
                resume: bool) -> Voter:
    started, out = time.monotonic(), Path(out_dir)
    saved = start_run(config, out, resume)
    prepared = prepare_labelled(config, pairs, dev, saved.metadata if saved else None)
    torch.manual_seed(config.train.seed)
    model = build_voter(prepared.metadata)
    trainer = Trainer(model, (vote_loss, vote_loss), config, prepared.examples, prepared.dev_examples, out,
                      prepared.metadata.to_dict())
    run_training(trainer, saved, started)
    return registry.load(out, VOTE)  # type: ignore[no-any-return]


def check_voter(config: Config) -> None:
    if config.model.copy:
        raise ConfigError("model.copy does not apply to task vote")


VOTE = registry.Task(
    name="vote", kind="a voter", command="vote", facade=Voter, sides=(1, 2),
    read=lambda config, spec: read_labelled(spec), item=as_pair, train=train_voter,
    build=build_voter, facade_of=voter_of, check=check_voter, columns=lambda config: (("accuracy %", "accuracy"),),
    use=Voter.vote, routes=("/v1/vote",))

# ---- the tests


@pytest.fixture
def vote() -> Iterator[registry.Task]:
    """The vote task, registered for the time of one test."""
    yield registry.register(VOTE)
    registry.TASKS.remove(VOTE.name)


def test_the_built_in_tasks_and_their_commands() -> None:
    assert registry.names()[:4] == ["seq2seq", "lm", "classify", "speech"]
    assert [task.command for task in registry.tasks()][:4] == ["translate", "generate", "classify", "transcribe"]
    assert registry.get("classify").sides == (1, 2)


def test_an_unknown_task_is_a_config_error_naming_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"^task: unknown task 'vote' \(known: seq2seq, lm, classify, speech\)$"):
        registry.get("vote")


def test_plain_items_become_what_the_task_trains_on() -> None:
    assert registry.items(registry.get("seq2seq"), [("a b", "b a")]) == [Pair("a b", "b a")]
    assert registry.items(registry.get("lm"), ["some text"]) == ["some text"]
    with pytest.raises(DataError, match="pair of strings"):
        registry.items(registry.get("classify"), [("a b", "x", "y")])
    with pytest.raises(DataError, match="strings of text"):
        registry.items(registry.get("lm"), [("a", "b")])


def _write(path: Path, pairs: list[Pair]) -> Path:
    path.write_text("".join(f"{pair.src}\t{pair.tgt}\n" for pair in pairs), encoding="utf-8")
    return path


def test_a_registered_task_trains_evaluates_votes_averages_and_resumes(vote: registry.Task, tmp_path: Path) -> None:
    train = _write(tmp_path / "train.tsv", majority_pairs(400, 1))
    held_out = _write(tmp_path / "held_out.tsv", majority_pairs(100, 7))
    overrides = ["data.src.kind=word", "data.src.split_punctuation=false", "train.lr=0.05", "train.max_steps=60",
                 "train.checkpoint_every=20", "train.keep_last=3", "train.eval_every=20", "train.early_stopping=0"]
    code, out, err = run_cli("train", "--task", "vote", "--train", train, "--dev", held_out, "--test", held_out,
                             "--out", tmp_path / "run", *overrides)
    assert code == 0, err
    assert "try: seq2seq vote --model" in out and json.loads(out.splitlines()[0])["accuracy"] >= 90

    voter = seq2seq.load(tmp_path / "run")
    assert isinstance(voter, Voter) and seq2seq.api.task_of(voter) == "vote"
    assert voter.vote(["a a b", "c b c c"]) == ["a", "c"]
    code, out, err = run_cli("evaluate", "--model", tmp_path / "run", "--data", held_out, "--json")
    assert code == 0 and json.loads(out) == voter.evaluate(read_labelled(held_out)), err

    code, out, err = run_cli("average", "--model", tmp_path / "run", "--last", "3", "--out", tmp_path / "average")
    assert code == 0 and "try: seq2seq vote --model" in out, err
    assert seq2seq.load(tmp_path / "average").evaluate(read_labelled(held_out))["accuracy"] >= 90

    code, _, err = run_cli("train", "--resume", "--train", train, "--out", tmp_path / "run", "train.max_steps=80")
    assert code == 0, err
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert max(row["step"] for row in rows) == 80


def test_a_registered_task_trains_from_python_with_its_checks(vote: registry.Task, tmp_path: Path) -> None:
    config = Config(task="vote")
    config.model.copy = True
    with pytest.raises(ConfigError, match="does not apply to task vote"):
        seq2seq.train(config, [("a a b", "a")], out_dir=tmp_path)
    config.model.copy = False
    config.train.max_steps = 3
    voter = seq2seq.train(config, [(pair.src, pair.tgt) for pair in majority_pairs(40, 3)], out_dir=tmp_path)
    assert isinstance(voter, Voter)


def test_the_readme_table_matches_the_registry() -> None:
    """README's tasks x interfaces table names each built-in task's command, facade, route, export and prepare."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    lines = readme.split("| task (`--task`) |", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    rows = [line.split("|")[1:-1] for line in lines]
    table = {cells[0].strip(" `"): [cell.strip(" `") for cell in cells] for cells in rows}
    for task in registry.tasks():
        _, _, command, facade, route, exports, prepares = table[task.name]
        assert (command, facade, route) == (task.command, task.facade.__name__, task.routes[0])
        assert (exports, prepares) == ("yes" if _exports(task) else "no", "yes" if task.prepares else "no")


def _exports(task: registry.Task) -> bool:
    """Whether a model of the task in its default config exports."""
    try:
        registry.export_runtime(task, Config(task=task.name))
    except ConfigError:
        return False
    return True


def test_a_checkpoint_or_config_of_an_unknown_task_is_a_one_line_error_naming_it(tmp_path: Path) -> None:
    """A run of a task this process does not know (the vote task, no longer registered): each command names the
    file, and average writes nothing."""
    registry.register(VOTE)
    try:
        config = Config(task="vote")
        config.train.max_steps, config.train.checkpoint_every, config.train.keep_last = 4, 2, 2
        seq2seq.train(config, [(pair.src, pair.tgt) for pair in majority_pairs(40, 3)], out_dir=tmp_path / "run")
    finally:
        registry.TASKS.remove(VOTE.name)
    best = tmp_path / "run" / "best.safetensors"
    unknown = "task: unknown task 'vote' (known: seq2seq, lm, classify, speech)"
    held_out = _write(tmp_path / "held_out.tsv", majority_pairs(5, 4))
    for command in (["evaluate", "--model", tmp_path / "run", "--data", held_out], ["classify", "--model", best],
                    ["export", "--model", tmp_path / "run", "--out", tmp_path / "export"]):
        code, _, err = run_cli(*command)
        line = one_line_error(code, err)
        assert line.endswith(f": {unknown}") and f"{tmp_path / 'run'}" in line, err
    code, _, err = run_cli("average", "--model", tmp_path / "run", "--last", "2", "--out", tmp_path / "average")
    assert unknown in one_line_error(code, err) and not (tmp_path / "average").exists()
    (tmp_path / "vote.yaml").write_text("task: vote\n", encoding="utf-8")
    code, _, err = run_cli("train", "--config", tmp_path / "vote.yaml", "--train", held_out, "--out", tmp_path / "b")
    assert one_line_error(code, err) == f"seq2seq train: error: {tmp_path / 'vote.yaml'}: {unknown}"


def test_a_checkpoint_missing_a_vocabulary_of_its_task_is_a_one_line_error(tmp_path: Path) -> None:
    """A classifier's checkpoint with its label vocabulary cut away: export and load name the file."""
    config = Config(task="classify")
    config.train.max_steps = 2
    seq2seq.train(config, [(pair.src, pair.tgt) for pair in majority_pairs(40, 3)], out_dir=tmp_path / "run")
    tensors, values = checkpoint.load_checkpoint(tmp_path / "run" / "best.safetensors")
    values["vocabs"] = values["vocabs"][:1]
    checkpoint.save_checkpoint(tmp_path / "broken.safetensors", tensors, values)
    needs = "task classify needs 1 tokenizer(s) and 2 vocabularies"
    code, _, err = run_cli("export", "--model", tmp_path / "broken.safetensors", "--out", tmp_path / "export")
    assert one_line_error(code, err).endswith(f"{tmp_path / 'broken.safetensors'}: {needs}")
    with pytest.raises(CheckpointError, match=re.escape(needs)):
        seq2seq.load(tmp_path / "broken.safetensors")


def test_the_command_lines_parts_are_of_known_commands() -> None:
    """cli/tasks.py's reports and evaluations are keyed by the commands of the built-in tasks, no other."""
    from seq2seq.cli import tasks as cli_tasks

    commands = {task.command for task in registry.tasks()}
    assert set(cli_tasks.REPORTS) == set(cli_tasks.EVALUATES) == commands
