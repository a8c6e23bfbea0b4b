"""The examples of the README and docs/ run as written, on the data they name: one test per page runs the shell
lines of the page's bash blocks in order, in a temporary folder laid out as a clone (`repo/` with `configs`, and
`shared` beside it, so `../shared/data/...` resolves). Run with `pytest --examples tests/test_examples.py`.

What the runner changes, so that every page runs in seconds to a minute on 2 cores:
- `train` and `compare` get `--max-time 20` and `train.max_steps=3 train.eval_max_batches=2` (for `compare` through
  `--set`): each trains a few steps, then writes its run directory as a full run does; one that keeps numbered
  checkpoints (`train.keep_last`) gets `train.max_steps=5 train.checkpoint_every=1`, so that `average` finds them.
- Evaluation (`evaluate`, `train --test`, and the scores of `compare`) scores the first EVALUATED items of its
  data; text piped or redirected into a command is cut to its first INPUT_LINES lines.
- `serve` gets a free port (and the `curl` lines of the page that port, and `--fail-with-body`); it is stopped
  once the page's lines ran.
- A `train` line the runner already ran on another page (the same words, and the same files of the clone it names)
  is not trained again: its run directory is copied (the classifier's SVM alone takes over a minute).
- A run a page uses but does not train (`--model runs/X`, `--init runs/X`) is made first by the line of the docs that
  trains it (the first `train --out runs/X`), after the lines of its page that make files.
- Installation, the test suite, multi-node `torchrun` and a few lines that need what no shipped data gives are
  skipped, each with its reason (SKIPPED).

`seq2seq` commands run in this process through the CLI's main (as `.venv/bin/seq2seq` and `seq2seq` do); a line
that only the shell can run (a loop) runs in bash, with `seq2seq` a script that runs this module's `run_command`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import itertools
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import types
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PAGES = ["README.md", "translation.md", "language-models.md", "classification.md", "speech.md", "decoding.md",
         "cli.md", "experiments.md", "export.md", "scale.md", "serving.md"]
EVALUATED = 20
INPUT_LINES = 20
TRAIN_BUDGET = ["--max-time", "20"]
TRAIN_OVERRIDES = ["train.max_steps=3", "train.eval_max_batches=2"]
KEEP_OVERRIDES = ["train.max_steps=5", "train.checkpoint_every=1"]  # train.keep_last=K: K numbered checkpoints

# (a regular expression a line's simple command matches, why it is not run)
SKIPPED = [
    (r"^python3 -m venv|pip install", "installs the package: the runner uses this checkout"),
    (r"-m pytest|ruff check|docs/generate\.py", "the test suite and the tools of development"),
    (r"^torchrun ", "several nodes (or one terminal per node): tests/training/test_distributed.py runs it"),
    (r"runs/a/checkpoint-", "names the checkpoints of a run of 5,000 steps, which no line of the page trains"),
    (r"^for port in", "starts servers in the background, as the serve line of the page above does"),
    (r"\s\.\.\.(\s|$)", "a synopsis (the flags of the line above)"),
]


def page_path(name: str) -> Path:
    return ROOT / name if name == "README.md" else ROOT / "docs" / name


def page_lines(name: str) -> list[str]:
    """The shell lines of a page's bash blocks (continuations joined, comments kept)."""
    text = page_path(name).read_text(encoding="utf-8")
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip():
                lines.append(line.strip())
    return lines


def simple_commands(line: str) -> list[str]:
    """A line's commands joined by `&&`, each as written (a pipeline or a loop stays whole)."""
    return [part.strip() for part in re.split(r"\s&&\s", _without_comment(line))]


def _without_comment(line: str) -> str:
    """The line up to a `#` that begins a word outside quotes."""
    for match in re.finditer(r"(?:^|\s)#", line):
        before = line[:match.start()]
        if before.count('"') % 2 == 0 and before.count("'") % 2 == 0:
            return before.rstrip()
    return line


def skip_reason(command: str) -> str | None:
    return next((reason for pattern, reason in SKIPPED if re.search(pattern, command)), None)


def seq2seq_argv(words: list[str]) -> list[str] | None:
    """The arguments of a `seq2seq` command (`seq2seq`, `.venv/bin/seq2seq`), None for another command."""
    if words and Path(words[0]).name == "seq2seq":
        return words[1:]
    return None


def budgeted(argv: list[str]) -> list[str]:
    """argv with the runner's budget: a few steps for `train` and `compare`."""
    if argv[:1] == ["train"] and any(word.startswith("train.keep_last=") for word in argv):
        return [*argv, *TRAIN_BUDGET, *TRAIN_OVERRIDES, *KEEP_OVERRIDES]
    if argv[:1] == ["train"]:
        return [*argv, *TRAIN_BUDGET, *TRAIN_OVERRIDES]
    if argv[:1] == ["compare"]:
        return [*argv, *TRAIN_BUDGET, *(f"--set={override}" for override in TRAIN_OVERRIDES)]
    return argv


@contextlib.contextmanager
def few_evaluated_items() -> Iterator[None]:
    """Evaluation (`evaluate`, `train --test`) scores the first EVALUATED items of its data."""
    from seq2seq.cli import tasks
    from seq2seq.experiments import compare
    from seq2seq.tasks import registry

    def first(function):
        return lambda *args: function(*args[:-1], list(args[-1])[:EVALUATED])

    def few_scored(read_data):
        def read(*args):
            data = read_data(*args)
            return dataclasses.replace(data, scored=data.scored[:EVALUATED])
        return read

    def of_model(model):
        task = registry.of_model(model)
        return dataclasses.replace(task, read=lambda config, spec: task.read(config, spec)[:EVALUATED])

    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.dict(tasks.REPORTS, {key: first(value) for key, value in tasks.REPORTS.items()}))
        stack.enter_context(mock.patch.object(tasks, "_print_scores", first(tasks._print_scores)))
        stack.enter_context(mock.patch.object(tasks, "registry", types.SimpleNamespace(of_model=of_model)))
        stack.enter_context(mock.patch.object(compare, "read_data", few_scored(compare.read_data)))
        yield


def run_command(argv: list[str]) -> int:
    """`seq2seq ARGV` with the runner's budget, in this process."""
    from seq2seq.cli import main

    with few_evaluated_items():
        return main(budgeted(argv))


TRAINED: dict[tuple[str, ...], Path] = {}
"""The run directory each `train` line made, by train_key: an identical line of another page copies it."""


class Clone:
    """A temporary clone: `repo/` (configs linked) and `shared/` beside it; runs the lines of pages there."""

    def __init__(self, base: Path) -> None:
        self.repo = base / "repo"
        (self.repo / ".venv" / "bin").mkdir(parents=True)
        (self.repo / "configs").symlink_to(ROOT / "configs")
        (self.repo / ".venv" / "bin" / "python").write_text(f"#!/bin/sh\nexec {sys.executable} \"$@\"\n")
        (self.repo / ".venv" / "bin" / "python").chmod(0o755)
        (base / "shared").symlink_to(SHARED)
        shim = self.repo / ".venv" / "bin" / "seq2seq"
        shim.write_text(f"#!/bin/sh\nexec {sys.executable} {Path(__file__).resolve()} \"$@\"\n")
        shim.chmod(0o755)
        self.env = {**os.environ, "PATH": f"{shim.parent}:{os.environ['PATH']}",
                    "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
        self.server: subprocess.Popen | None = None
        self.port = 0
        self.log: list[str] = []

    def run_page(self, name: str) -> None:
        try:
            for line in page_lines(name):
                for command in simple_commands(line):
                    self.run(name, command)
        finally:
            self.stop_server()

    def run(self, page: str, command: str) -> None:
        reason = skip_reason(command)
        if reason:
            self.log.append(f"skipped: {command}  ({reason})")
            return
        if self.port:  # a failed request fails the line
            command = re.sub(r"^curl (.*)localhost:8000\b", rf"curl --fail-with-body \1localhost:{self.port}", command)
        self.make_models(page, command)
        self.log.append(f"$ {command}")
        started = time.monotonic()
        segments = _pipeline(command)
        argv = seq2seq_argv(segments[-1][0]) if segments else None
        if argv is not None and argv[:1] == ["serve"]:
            self.start_server(argv)
        elif argv is not None and not re.search(r"\bdo\b|;", command):
            self.run_in_process(command, segments, argv)
        else:
            self.run_in_shell(command)
        self.log.append(f"# {time.monotonic() - started:.1f} s")

    def run_in_process(self, command: str, segments: list[tuple[list[str], dict[str, str]]], argv: list[str]) -> None:
        redirections = segments[-1][1]
        stdin = ""
        if len(segments) > 1:
            producer = " | ".join(shlex.join(words) for words, _ in segments[:-1])
            stdin = self.shell(producer)
        if "<" in redirections:
            stdin = (self.repo / redirections["<"]).read_text(encoding="utf-8")
        stdin = "".join(stdin.splitlines(keepends=True)[:INPUT_LINES])
        if self.copy_trained(argv):
            return
        out, err = io.StringIO(), io.StringIO()
        with (mock.patch.object(sys, "stdin", io.StringIO(stdin)), contextlib.redirect_stdout(out),
              contextlib.redirect_stderr(err)):
            code = run_command(argv)
        if ">" in redirections:
            (self.repo / redirections[">"]).write_text(out.getvalue(), encoding="utf-8")
        self.log.append(out.getvalue()[-2000:] + err.getvalue()[-2000:])
        assert code == 0, f"{command}: exit {code}\n{err.getvalue()[-3000:]}"
        if self.train_key(argv):
            TRAINED[self.train_key(argv)] = Path(tempfile.mkdtemp(prefix="trained-"))
            shutil.copytree(self.repo / _out(argv), TRAINED[self.train_key(argv)], dirs_exist_ok=True)

    def train_key(self, argv: list[str]) -> tuple[str, ...] | None:
        """A `train` line's words and the digests of the clone's files it names (None for another line)."""
        if argv[:1] != ["train"] or "--resume" in argv or "--nproc" in argv:
            return None
        files = [self.repo / word for word in argv if "/" not in word and (self.repo / word).is_file()]
        return (*argv, *(hashlib.sha256(file.read_bytes()).hexdigest() for file in files))

    def copy_trained(self, argv: list[str]) -> bool:
        """A `train` line run before (on another page, the same words and files): its run directory is copied."""
        key = self.train_key(argv)
        if key not in TRAINED:
            return False
        shutil.copytree(TRAINED[key], self.repo / _out(argv))
        self.log.append("# the run of this line on an earlier page, copied")
        return True

    def run_in_shell(self, command: str) -> None:
        self.log.append(self.shell(command))

    def shell(self, command: str) -> str:
        done = subprocess.run(["bash", "-c", command], cwd=self.repo, env=self.env, text=True,
                              capture_output=True, timeout=600)
        assert done.returncode == 0 and "Traceback" not in done.stderr, \
            f"{command}: exit {done.returncode}\n{done.stderr[-3000:]}"
        return done.stdout

    def make_models(self, page: str, command: str) -> None:
        """Train first each run the command uses (`--model`, `--init`) that is not there yet, by the docs' line that
        trains it (and, through `run`, the runs that line uses in turn)."""
        words = shlex.split(command)
        used = [word.split("=", 1)[-1] for flag, word in itertools.pairwise(words) if flag in {"--model", "--init"}]
        for run in used:
            if run.startswith("runs/") and not (self.repo / run).exists():
                self.log.append(f"# {page} uses {run}: made first")
                for other, line in maker(run):
                    self.run(other, line)

    def start_server(self, argv: list[str]) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        argv = [*argv, "--port", str(self.port)]
        self.server = subprocess.Popen([sys.executable, __file__, *argv], cwd=self.repo, env=self.env,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.server.poll() is None, f"serve exited {self.server.returncode}: {self.server.stdout.read()}"
            with (contextlib.suppress(OSError),
                  urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v1/models", timeout=5) as response):
                if response.status == 200:
                    return
            time.sleep(0.5)
        pytest.fail(f"seq2seq {' '.join(argv)}: no /v1/models within 120 s")

    def stop_server(self) -> None:
        if self.server is not None:
            self.server.terminate()
            try:
                self.server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.server.kill()
            self.server = None


def _out(argv: list[str]) -> str:
    return argv[argv.index("--out") + 1]


def _pipeline(command: str) -> list[tuple[list[str], dict[str, str]]]:
    """The simple commands of a pipeline, each (words, {redirection: file})."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    segments: list[tuple[list[str], dict[str, str]]] = [([], {})]
    redirect = None
    for word in lexer:
        if word == "|":
            segments.append(([], {}))
        elif word in {"<", ">", ">>"}:
            redirect = word
        elif redirect:
            segments[-1][1][redirect] = word
            redirect = None
        else:
            segments[-1][0].append(word)
    return segments


def maker(run: str) -> list[tuple[str, str]]:
    """The lines that make a run: the first `train --out RUN` of the pages, after the lines of its page that make
    files (those without `seq2seq`)."""
    for name in PAGES:
        setup = []
        for line in page_lines(name):
            for command in simple_commands(line):
                argv = seq2seq_argv(_pipeline(command)[-1][0])
                if argv is None:
                    if not skip_reason(command):
                        setup.append((name, command))
                elif argv[:1] == ["train"] and "--out" in argv and _out(argv) == run:
                    return [*setup, (name, command)]
    raise AssertionError(f"no line of the docs trains {run}")


@pytest.mark.examples
@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_the_commands_of_the_page_run_as_written(page: str, tmp_path: Path) -> None:
    if not (SHARED / "data").is_dir():
        pytest.skip("the shared data sets (../shared/data) are not available")
    clone = Clone(tmp_path)
    with contextlib.chdir(clone.repo):
        try:
            clone.run_page(page)
        finally:
            print("\n".join(clone.log))


if __name__ == "__main__":
    sys.exit(run_command(sys.argv[1:]))
