"""The README and docs/ cannot rot: docs/configuration.md is what docs/generate.py writes from the config
dataclasses, every `seq2seq` command line shown parses with the CLI's own parser (and its config overrides name
real keys), every relative link and anchor leads somewhere, every facade's member is in docs/python-api.md, and the
imports shown in docs/ work without a deprecation warning."""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import re
import shlex
import subprocess
import sys
from itertools import chain
from pathlib import Path

import pytest

from seq2seq.cli.commands import build_parser
from seq2seq.cli.flags import parse_intermixed
from seq2seq.config import Config, apply_overrides
from seq2seq.errors import ConfigError
from seq2seq.experiments.compare import parse_variant
from seq2seq.tasks import registry
from seq2seq.tasks.chat import Chatbot

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# Shell variables the examples use, and what a reader's shell would put there.
PLACEHOLDERS = {"$seed": "1", "$port": "8001"}
# A segment holding "..." is a synopsis ("the flags of the line above"), not a command to run.
ELLIPSIS = "..."


def _generated_configuration() -> str:
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.configuration()


def test_the_configuration_page_is_generated_from_the_config_dataclasses() -> None:
    written = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert written == _generated_configuration(), "docs/configuration.md is stale: run python docs/generate.py"


def _blocks(page: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)


def command_lines() -> list[tuple[str, list[str]]]:
    """(page, argv after `seq2seq`) for each seq2seq command of the pages' bash blocks."""
    found = []
    for page in PAGES:
        for block in _blocks(page, "bash"):
            for line in block.replace("\\\n", " ").splitlines():
                for placeholder, value in PLACEHOLDERS.items():
                    line = line.replace(placeholder, value)
                for words in _segments(line):
                    argv = _seq2seq_argv(words[1:] if words[:1] == ["do"] else words)
                    if argv is not None and ELLIPSIS not in argv:
                        found.append((page.name, argv))
    return found


def _segments(line: str) -> list[list[str]]:
    """The simple commands of a shell line (split at pipes, `;`, `&` and `&&`), each up to its first redirection."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    segments: list[list[str]] = [[]]
    redirected = False
    for word in lexer:
        if word in {"|", "||", "&&", ";", "&"}:
            segments.append([])
            redirected = False
        elif word in {"<", ">", ">>"}:
            redirected = True
        elif not redirected:
            segments[-1].append(word)
    return segments


def _seq2seq_argv(words: list[str]) -> list[str] | None:
    """The arguments of a seq2seq command (run as `seq2seq`, `.venv/bin/seq2seq` or `-m seq2seq.cli`); None for
    another command."""
    if words and Path(words[0]).name == "seq2seq":
        words = words[1:]
    elif "seq2seq.cli" in words and words[words.index("seq2seq.cli") - 1] == "-m":
        words = words[words.index("seq2seq.cli") + 1:]
    else:
        return None
    return words


def test_the_pages_show_commands_of_every_kind() -> None:
    shown = {argv[0] for _, argv in command_lines()}
    assert shown >= {"train", "translate", "summarize", "evaluate", "generate", "chat", "classify", "transcribe",
                     "serve", "export", "prepare", "average", "compare", "plot"}


@pytest.mark.parametrize(("page", "argv"), command_lines(), ids=lambda value: " ".join(value)[:80]
                         if isinstance(value, list) else value)
def test_each_command_line_shown_parses(page: str, argv: list[str]) -> None:
    try:
        args = parse_intermixed(build_parser(), argv)
    except SystemExit as error:
        pytest.fail(f"{page}: seq2seq {' '.join(argv)}: the parser refused it (exit {error.code})")
    variants = [parse_variant(text).overrides for text in getattr(args, "variants", [])]
    overrides = [*getattr(args, "overrides", []), *(getattr(args, "set", None) or []), *chain(*variants)]
    try:
        apply_overrides(Config(), overrides)
    except ConfigError as error:
        pytest.fail(f"{page}: seq2seq {' '.join(argv)}: {error}")


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def links() -> list[tuple[Path, str, str]]:
    """(page, target, anchor) of each relative link of the pages and BENCHMARKS.md."""
    found = []
    for page in [*PAGES, ROOT / "BENCHMARKS.md"]:
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", text):
            if not re.match(r"[a-z]+:", target):
                found.append((page, target, anchor))
    return found


def test_every_relative_link_leads_to_a_file_and_heading() -> None:
    broken = []
    for page, target, anchor in links():
        path = (page.parent / target).resolve() if target else page
        if not path.exists():
            broken.append(f"{page.name}: {target}")
        elif anchor and path.suffix == ".md":
            headings = re.findall(r"^#+ (.*)$", re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S),
                                  flags=re.M)
            if anchor not in {_slug(heading) for heading in headings}:
                broken.append(f"{page.name}: {target}#{anchor}")
    assert len(links()) > 30 and not broken, broken


@pytest.mark.parametrize("facade", [*(task.facade for task in registry.tasks()), Chatbot],
                         ids=lambda facade: facade.__name__)
def test_the_python_api_page_names_every_member_of_each_facade(facade: type) -> None:
    text = (ROOT / "docs" / "python-api.md").read_text(encoding="utf-8")
    section = text.split(f"### `{facade.__name__}`\n", 1)[1].split("\n### ", 1)[0]
    members = [name for name, _ in inspect.getmembers(facade) if not name.startswith("_") and name != "precision"]
    missing = [name for name in members if not re.search(rf"`{name}[(`]", section)]
    assert members and not missing, f"docs/python-api.md, {facade.__name__}: {missing}"


def test_every_import_the_docs_show_works_without_a_warning() -> None:
    lines = sorted({line for page in PAGES[1:] for block in _blocks(page, "python") for line in block.splitlines()
                    if re.match(r"(from seq2seq\S* import |import seq2seq)", line)})
    assert len(lines) >= 8
    subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-c", "\n".join(lines)], check=True)


def test_the_command_line_page_names_every_flag_of_every_command() -> None:
    """docs/cli.md has each command's flags; the decoding flags are in docs/decoding.md."""
    text = "\n".join((ROOT / "docs" / name).read_text(encoding="utf-8") for name in ("cli.md", "decoding.md"))
    commands = next(action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction))
    missing = [f"{name} {flag}" for name, parser in commands.choices.items() for action in parser._actions
               for flag in action.option_strings if flag.startswith("--") and flag != "--help"
               and not re.search(rf"`?{re.escape(flag)}\b(?!-)", text)]
    assert not missing, missing


def test_the_figures_the_readme_quotes_are_in_the_benchmarks_summary() -> None:
    """The README's benchmark table and each task's headline come from BENCHMARKS.md's summary table."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    summary = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8").split("## Summary\n", 1)[1].split("\n## ", 1)[0]
    table = readme.split("## Benchmarks\n", 1)[1].split("\n## ", 1)[0]
    headlines = re.findall(r"Headline: (.*?)(?:\(\[|\n\n)", readme, flags=re.S)
    figure = r"\d[\d,]*(?:\.\d+)*"
    quoted = set(re.findall(figure, table)) | {found for text in headlines for found in re.findall(figure, text)
                                               if re.search(r"[.,]", found)}
    missing = sorted(found for found in quoted if not re.search(rf"(?<![\d.,]){re.escape(found)}(?![\d,]|\.\d)",
                                                                  summary))
    assert len(headlines) >= 6 and len(quoted) > 20 and not missing, missing
