"""Conversations as data: chatterbot-corpus YAML files -> conversations -> (message -> reply) pairs.

A source text is the message alone, or, with history K, the K turns before it (messages and replies alike, oldest
first) and the message, joined by SEPARATOR: `earlier turn | previous reply | message`. Training pairs and the
Chatbot build it the same way (`with_context`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from seq2seq.data.pairs import Pair, read_lines
from seq2seq.errors import DataError

logger = logging.getLogger(__name__)

SEPARATOR = " | "
YAML_SUFFIXES = (".yml", ".yaml")


@dataclass(frozen=True)
class Conversation:
    """The utterances of one conversation, in order, with where it starts (`file:line`)."""

    utterances: list[str]
    origin: str


def read_chatterbot(path: str | Path) -> list[Conversation]:
    """Conversations of a chatterbot-corpus YAML file, or of every .yml/.yaml file in a folder (in name order).

    The format is a mapping whose `conversations` key holds a list of utterance lists. Whitespace runs in an
    utterance become one space; conversations of fewer than two utterances (no pair) are left out; an entry that
    is not a list of utterances is skipped with a warning naming its line. A file that is not in this format
    raises DataError naming it.
    """
    path = Path(path)
    files = sorted(file for file in path.iterdir() if file.suffix in YAML_SUFFIXES) if path.is_dir() else [path]
    conversations = [conversation for file in files for conversation in _read_yaml_file(file)]
    if not conversations:
        raise DataError(f"{path}: no conversations (of two or more utterances in .yml or .yaml files)")
    return conversations


def _read_yaml_file(path: Path) -> list[Conversation]:
    text = "\n".join(line for _, line in read_lines(path))
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)  # nodes keep line numbers and the scalars as written
    except yaml.YAMLError as error:
        raise DataError(f"{path}:{_yaml_line(error, text)}: not valid YAML "
                        f"({str(getattr(error, 'problem', None) or error).splitlines()[0]})") from error
    except RecursionError:  # lists nested thousands deep
        raise DataError(f"{path}: not valid YAML (nested too deeply)") from None
    entries = _mapping_value(root, "conversations")
    if not isinstance(entries, yaml.SequenceNode):
        raise DataError(f"{path}: expected a 'conversations' list of utterance lists (the chatterbot-corpus format)")
    conversations = []
    for entry in entries.value:
        origin = f"{path}:{entry.start_mark.line + 1}"
        if not isinstance(entry, yaml.SequenceNode) or not all(isinstance(u, yaml.ScalarNode) for u in entry.value):
            logger.warning("%s: skipped: a conversation must be a list of utterances", origin)
        elif len(entry.value) >= 2:
            conversations.append(Conversation([_utterance(node) for node in entry.value], origin))
    return conversations


def _yaml_line(error: yaml.YAMLError, text: str) -> int:
    """The line of text that a YAML error points at (a ReaderError gives a character position instead)."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    if mark is not None:
        return int(mark.line) + 1
    return text.count("\n", 0, getattr(error, "position", 0)) + 1


def _mapping_value(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    return next((value for name, value in node.value if isinstance(name, yaml.ScalarNode) and name.value == key),
                None)


def _utterance(node: yaml.ScalarNode) -> str:
    """The text as written (`yes` and `22` stay text), whitespace runs made one space; a YAML null is empty."""
    return "" if node.tag == "tag:yaml.org,2002:null" else " ".join(node.value.split())


def conversation_pairs(conversations: Iterable[Conversation], history: int = 0) -> list[Pair]:
    """(message -> reply) pairs of consecutive utterances, the source built by `with_context`.

    A conversation [u1, u2, u3] gives u1 -> u2 and u2 -> u3 (with history 1: `u1 | u2` -> u3). Pairs with an
    empty side are left out; a repeated pair is kept once.
    """
    seen: set[tuple[str, str]] = set()
    pairs = []
    for conversation in conversations:
        turns = conversation.utterances
        for index in range(1, len(turns)):
            src, tgt = with_context(turns[index - 1], turns[:index - 1], history), turns[index]
            if turns[index - 1] and tgt and (src, tgt) not in seen:
                seen.add((src, tgt))
                pairs.append(Pair(src, tgt, conversation.origin))
    return pairs


def with_context(message: str, earlier: Sequence[str], history: int) -> str:
    """The source text for message: the last `history` non-empty earlier turns and the message, by SEPARATOR."""
    context = [turn for turn in earlier[max(0, len(earlier) - history):] if turn]
    return SEPARATOR.join([*context, message])
