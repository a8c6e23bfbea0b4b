"""Data-parallel training in real processes (`--nproc 2`: gloo on CPU, rendezvous on 127.0.0.1): two ranks equal one
process with a batch twice as large, resume exactly, write one run directory, and a killed rank ends the run."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from seq2seq import api
from seq2seq.config import Config, apply_overrides
from seq2seq.data.corpus import prepare_corpus
from seq2seq.errors import Seq2SeqError
from seq2seq.training.checkpoint import load_checkpoint
from seq2seq.training.distributed import process_count, rng_of_rank
from tests.conftest import toy_pairs

pytestmark = pytest.mark.slow  # launches torchrun and its ranks

TINY = ["model.hidden_size=16", "model.embedding_size=8", "model.dropout=0", "train.precision=fp32",
        "train.threads=1", "train.epochs=0", "data.src.kind=word", "data.tgt.kind=word",
        "data.src.split_punctuation=false", "data.tgt.split_punctuation=false"]
PAIRS = toy_pairs("copy", 200, seed=1)


def seq2seq(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`seq2seq ARGS` in a fresh interpreter; fails the test with its error output unless it succeeds."""
    done = subprocess.run([sys.executable, "-m", "seq2seq.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "TQDM_DISABLE": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def model_weights(run: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_checkpoint(run / "last.safetensors")[0].items() if k.startswith("model.")}


DESIGNS = {"rnn": [], "transformer": ["model.arch=transformer", "model.feedforward_size=32", "train.warmup_steps=4"]}


@pytest.fixture(scope="module", params=list(DESIGNS))
def two_ranks(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A run of 2 ranks with batch 8 (an RNN's, a Transformer's): 5 steps, then resumed to 10; and its design."""
    folder = tmp_path_factory.mktemp("ranks")
    data = folder / "copy.tsv"
    data.write_text("".join(f"{p.src}\t{p.tgt}\n" for p in PAIRS), encoding="utf-8")
    run = folder / "run"
    common = ["train", "--nproc", "2", "--train", str(data), "--out", str(run)]
    seq2seq(*common, *TINY, *DESIGNS[request.param], "data.batch_size=8", "train.max_steps=5")
    seq2seq(*common, "--resume", "train.max_steps=10")
    return run, DESIGNS[request.param]


@pytest.mark.parametrize("overrides", [["data.batch_size=16"], ["data.batch_size=8", "train.accumulate=2"]],
                         ids=["batch 2B", "batch B, accumulate 2"])
def test_two_ranks_resumed_equal_one_process(two_ranks: tuple[Path, list[str]], tmp_path: Path,
                                             overrides: list[str]) -> None:
    """2 ranks x batch B (5 steps, then --resume to 10) == 1 process x batch 2B == 1 process x B x accumulate 2."""
    torch.set_num_threads(1)
    run, design = two_ranks
    api.train(apply_overrides(Config(), [*TINY, *design, "train.max_steps=10", *overrides]), PAIRS, [], tmp_path)
    expected = model_weights(tmp_path)
    for name, weight in model_weights(run).items():
        torch.testing.assert_close(weight, expected[name], rtol=0, atol=1e-5, msg=name)


def test_two_ranks_write_one_run_directory_that_translates(two_ranks: tuple[Path, list[str]]) -> None:
    run = two_ranks[0]
    files = sorted(path.name for path in run.iterdir())
    assert files == ["best.safetensors", "config.yaml", "last.safetensors", "metrics.jsonl"]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["event"] == "eval"] == [5, 10]  # one writer
    assert [r["step"] for r in records if r["event"] == "train"] == [1]
    state = load_checkpoint(run / "last.safetensors")[1]["training"]["state"]
    assert state["ranks"] == 2 and state["step"] == 10
    translator = api.load_translator(run, device="cpu")
    assert len(translator.translate(["a b c", "d e"])) == 2


def worker_pids(launcher: int) -> list[int]:
    """The processes the launcher started (its children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2:].split()[1]) == launcher:
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the ranks in /proc")
def test_a_killed_rank_ends_the_run_with_a_clear_error(tmp_path: Path) -> None:
    """A language model trains on 2 ranks; SIGKILL to one rank ends the run within seconds, naming it."""
    text = tmp_path / "text.txt"
    text.write_text("".join(f"{p.src}\n" for p in PAIRS), encoding="utf-8")
    run = tmp_path / "run"
    command = [sys.executable, "-m", "seq2seq.cli", "train", "--task", "lm", "--nproc", "2", "--train", str(text),
               "--out", str(run), *TINY[:5], "data.entries=line", "data.window=20", "data.batch_size=4",
               "train.max_time=60", "train.checkpoint_every=1", "train.early_stopping=0"]
    launcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "TQDM_DISABLE": "1"})
    try:
        deadline = time.monotonic() + 60
        while not (run / "last.safetensors").is_file():
            assert launcher.poll() is None, launcher.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no checkpoint within 60 s"
            time.sleep(0.1)
        victim = max(worker_pids(launcher.pid))
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        _, err = launcher.communicate(timeout=30)
    finally:
        launcher.kill()
    assert time.monotonic() - killed < 10
    assert launcher.returncode == 1
    assert f"(pid {victim}) was killed by SIGKILL, and the other ranks were stopped" in err.splitlines()[-1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_two_nodes_on_loopback_train_from_a_prepared_directory(tmp_path: Path) -> None:
    """Two torchrun "nodes" of one rank each meet at a c10d rendezvous on 127.0.0.1 (as the README's multi-node
    command, both on this machine) and train from a prepared directory: both exit 0, rank 0 alone writes the run
    directory, the weights are those of one process with a batch twice as large on the text, and the model
    translates."""
    data = tmp_path / "copy.tsv"
    data.write_text("".join(f"{p.src}\t{p.tgt}\n" for p in PAIRS), encoding="utf-8")
    prepare_corpus(apply_overrides(Config(), TINY), str(data), None, tmp_path / "corpus")
    run = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
               "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "--rdzv-id", run.parent.name,
               "--local-addr", "127.0.0.1", "-m", "seq2seq.cli", "train", "--train", str(tmp_path / "corpus"),
               "--out", str(run), *TINY[:5], "data.batch_size=8", "train.max_steps=4"]
    nodes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True, env={**os.environ, "TQDM_DISABLE": "1"}) for _ in range(2)]
    deadline = time.monotonic() + 120
    try:
        outputs = [node.communicate(timeout=max(1.0, deadline - time.monotonic())) for node in nodes]
    finally:
        for node in nodes:
            if node.poll() is None:
                os.killpg(node.pid, signal.SIGKILL)  # the node's launcher and its rank
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(err[-2000:] for _, err in outputs)
    assert sum(f"model saved in {run}" in out for out, _ in outputs) == 1  # the node of rank 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(r["event"], r["step"]) for r in records] == [("train", 1), ("eval", 4)]  # one writer
    assert load_checkpoint(run / "last.safetensors")[1]["training"]["state"]["ranks"] == 2
    assert len(api.load_translator(run, device="cpu").translate(["a b c", "d e"])) == 2
    torch.set_num_threads(1)
    one_process = apply_overrides(Config(), [*TINY, "train.max_steps=4", "data.batch_size=16"])
    api.train(one_process, PAIRS, [], tmp_path / "one")
    expected = model_weights(tmp_path / "one")
    for name, weight in model_weights(run).items():
        torch.testing.assert_close(weight, expected[name], rtol=0, atol=1e-5, msg=name)


def test_each_rank_restores_its_own_random_state_or_rank_0s() -> None:
    saved = {"rng.cpu": torch.tensor([0]), "rng.rank1.cpu": torch.tensor([1]), "model.w": torch.tensor([9])}
    assert rng_of_rank(saved, 0) == {"rng.cpu": saved["rng.cpu"]}
    assert rng_of_rank(saved, 1) == {"rng.cpu": saved["rng.rank1.cpu"]}
    assert rng_of_rank(saved, 2) == {"rng.cpu": saved["rng.cpu"]}  # a rank the saved run did not have


def test_process_count() -> None:
    assert process_count("3", torch.device("cpu")) == 3
    assert process_count("auto", torch.device("cpu")) >= 1
    with pytest.raises(Seq2SeqError, match="--nproc must be a number of processes"):
        process_count("0", torch.device("cpu"))
