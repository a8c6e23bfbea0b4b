"""Module paths of the flat 0.1 layout import with a warning and give the module at its new home; every import the
README shows works without one."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from seq2seq.utils.moved import MOVED

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_path_warns_and_is_the_new_module(old: str) -> None:
    sys.modules.pop(f"seq2seq.{old}", None)
    with pytest.warns(DeprecationWarning, match=rf"seq2seq\.{old} moved to seq2seq\.{re.escape(MOVED[old])}"):
        module = importlib.import_module(f"seq2seq.{old}")
    assert module is importlib.import_module(f"seq2seq.{MOVED[old]}")
    assert module.__spec__.name == module.__name__ == f"seq2seq.{MOVED[old]}"


@pytest.mark.slow
def test_old_from_imports_of_names_work() -> None:
    code = ("import warnings; warnings.simplefilter('ignore')\n"
            "from seq2seq.datasets import load_pairs\nfrom seq2seq.data import Pair, read_pairs\n"
            "from seq2seq.decoding import DecodingOptions, decode\nfrom seq2seq import search, api\n"
            "from seq2seq.data.datasets import load_pairs as new\nassert load_pairs is new and search.decode\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def readme_imports() -> list[str]:
    """The import lines of the README's Python examples."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    return [line for block in blocks for line in block.splitlines()
            if re.match(r"(from seq2seq\S* import |import seq2seq)", line)]


@pytest.mark.slow
def test_every_import_the_readme_shows_works_without_a_warning() -> None:
    lines = readme_imports()
    assert len(lines) >= 8
    subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-c", "\n".join(lines)], check=True)


@pytest.mark.slow
def test_the_warning_names_the_line_that_imports_the_old_path(tmp_path: Path) -> None:
    script = tmp_path / "user_script.py"
    script.write_text("import seq2seq.vocab\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-W", "default", str(script)], capture_output=True, text=True, check=True)
    assert f"{script}:1: DeprecationWarning: seq2seq.vocab moved to seq2seq.data.vocab" in done.stderr
