"""Tests for chat: the chatterbot YAML reader, conversation pairs, Chatbot history, the REPL and `seq2seq chat`."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from seq2seq import api
from seq2seq.cli.chat import repl
from seq2seq.config import Config, apply_overrides
from seq2seq.data.conversations import Conversation, conversation_pairs, read_chatterbot, with_context
from seq2seq.data.datasets import hash_split, load_chatterbot, load_pairs
from seq2seq.data.pairs import Pair, read_tsv
from seq2seq.data.tokenizers import WordTokenizer
from seq2seq.decoding.options import DecodingOptions
from seq2seq.errors import ConfigError, DataError
from seq2seq.tasks.chat import Chatbot
from tests.cli.test_cli import one_line_error, run_cli, run_module

GREETINGS = """categories:
- greetings
conversations:
- - Hello
  - Hi there
- - How are   you?
  - |
    Fine,
    thanks.
  - Good to hear.
- - Lonely
- - Is it true?
  - yes
- - 22
  - a number
"""
DIALOGUE = [("hello", "hi there"), ("how are you", "fine thanks"), ("what is your name", "i am a bot"),
            ("bye", "see you"), ("hi there", "hello again"), ("fine thanks", "good to hear")]
TINY = ["data.src.kind=word", "data.tgt.kind=word", "data.src.split_punctuation=false",
        "data.tgt.split_punctuation=false", "data.max_src_length=8", "model.hidden_size=32", "model.embedding_size=16",
        "model.dropout=0", "train.precision=fp32", "train.threads=1", "train.epochs=50", "train.lr=0.02",
        "train.early_stopping=0"]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny word-level model that has learned six message -> reply pairs by heart (about 3 s)."""
    out = tmp_path_factory.mktemp("chat") / "run"
    translator = api.train(apply_overrides(Config(), TINY), [Pair(m, r) for m, r in DIALOGUE], out_dir=out)
    assert translator.translate([m for m, _ in DIALOGUE]) == [r for _, r in DIALOGUE]
    return out


# ---- reading chatterbot-corpus YAML
def test_read_chatterbot_file(tmp_path: Path) -> None:
    """Utterances as written, whitespace runs made one space; one-utterance conversations left out; lines kept."""
    path = write(tmp_path / "greetings.yml", GREETINGS)
    conversations = read_chatterbot(path)
    assert [c.utterances for c in conversations] == [
        ["Hello", "Hi there"], ["How are you?", "Fine, thanks.", "Good to hear."], ["Is it true?", "yes"],
        ["22", "a number"]]
    assert [c.origin for c in conversations] == [f"{path}:{line}" for line in (4, 6, 12, 14)]


def test_read_chatterbot_folder_in_name_order(tmp_path: Path) -> None:
    write(tmp_path / "b.yaml", "conversations:\n- [b1, b2]\n")
    write(tmp_path / "a.yml", "conversations:\n- [a1, a2]\n")
    write(tmp_path / "notes.txt", "not a corpus file")
    assert [c.utterances[0] for c in read_chatterbot(tmp_path)] == ["a1", "b1"]


def test_malformed_conversation_is_skipped_with_its_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The corpus itself has one entry that is a string, not a list: it is skipped and named."""
    path = write(tmp_path / "trivia.yml", "conversations:\n- - Q?\n  - A.\n- Q? - 'A'\n- - [nested]\n  - x\n")
    with caplog.at_level(logging.WARNING):
        assert [c.utterances for c in read_chatterbot(path)] == [["Q?", "A."]]
    assert [record.getMessage().split(": ")[0] for record in caplog.records] == [f"{path}:4", f"{path}:5"]


@pytest.mark.parametrize(("text", "line", "problem"), [
    ("conversations:\n- [a, b\n", 2, "not valid YAML"),
    ("conversations:\n- - a\n - b\n", 3, "not valid YAML"),
    ("categories: [x]\n", 0, "expected a 'conversations' list"),
    ("conversations: hello\n", 0, "expected a 'conversations' list"),
    ("- - a\n  - b\n", 0, "expected a 'conversations' list"),
    ("", 0, "expected a 'conversations' list"),
    ("conversations:\n- [only one]\n", 0, "no conversations"),
])
def test_malformed_file_is_one_line_naming_it(tmp_path: Path, text: str, line: int, problem: str) -> None:
    path = write(tmp_path / "bad.yml", text)
    with pytest.raises(DataError) as error:
        read_chatterbot(path)
    message = str(error.value)
    assert message.startswith(f"{path}:{line}: " if line else f"{path}: ") and problem in message
    assert len(message.splitlines()) == 1


def test_unreadable_files_and_folders(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yml"
    path.write_bytes(b"conversations:\n- [caf\xe9, ok]\n")
    with pytest.raises(DataError, match=f"^{path}:2: not valid UTF-8"):
        read_chatterbot(path)
    with pytest.raises(DataError, match=f"^{tmp_path / 'none.yml'}: cannot read"):
        read_chatterbot(tmp_path / "none.yml")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=f"^{tmp_path / 'empty'}: no conversations"):
        read_chatterbot(tmp_path / "empty")


# ---- conversations -> pairs
def test_conversation_pairs_without_history() -> None:
    """Consecutive utterances, the overlapping way; empty sides left out; a repeated pair kept once."""
    conversations = [Conversation(["a", "b", "c"], "x:1"), Conversation(["a", "b"], "x:2"),
                     Conversation(["d", "", "e", "f"], "x:3")]
    pairs = conversation_pairs(conversations)
    assert [(p.src, p.tgt, p.origin) for p in pairs] == [("a", "b", "x:1"), ("b", "c", "x:1"), ("e", "f", "x:3")]


def test_conversation_pairs_with_history() -> None:
    """With history K the K turns before the message come first, oldest first, joined by ' | '."""
    conversation = [Conversation(["a", "b", "c", "d"], "x:1")]
    assert [p.src for p in conversation_pairs(conversation, history=1)] == ["a", "a | b", "b | c"]
    assert [p.src for p in conversation_pairs(conversation, history=2)] == ["a", "a | b", "a | b | c"]
    assert [p.tgt for p in conversation_pairs(conversation, history=2)] == ["b", "c", "d"]
    assert with_context("m", ["t1", "t2", "t3"], 0) == "m"
    assert with_context("m", ["t1", "t2", "t3"], 2) == "t2 | t3 | m"


def test_yaml_files_and_named_sources(tmp_path: Path) -> None:
    path = write(tmp_path / "greetings.yml", GREETINGS)
    assert [(p.src, p.tgt) for p in load_pairs(str(path))][:2] == [("Hello", "Hi there"), ("How are you?",
                                                                                             "Fine, thanks.")]
    assert load_pairs(f"chatterbot:{path}:history=1")[2].src == "How are you? | Fine, thanks."
    with pytest.raises(DataError, match=r"unknown option 'history=two' \(train, dev, test or history=K\)"):
        load_pairs(f"chatterbot:{path}:history=two")
    with pytest.raises(DataError, match="chatterbot:klingon: no such file, folder or chatterbot-corpus language"):
        load_pairs("chatterbot:klingon")


def test_chatterbot_english_equals_the_shared_file(shared_data: Path) -> None:
    """The installed package read by `chatterbot:english` gives exactly the shared copy's pairs, in order."""
    shared = [(p.src, p.tgt) for p in read_tsv(shared_data / "chat" / "english.tsv")]
    assert [(p.src, p.tgt) for p in load_pairs("chatterbot:english")] == shared


def test_chatterbot_splits_keep_replies_to_one_opening_together() -> None:
    splits = {name: load_chatterbot(f"english:{name}") for name in ("train", "dev", "test")}
    assert sum(map(len, splits.values())) == len(load_chatterbot("english"))
    assert len(splits["test"]) > 30 and len(splits["train"]) > 900
    assert not {p.origin for p in splits["train"]} & {p.origin for p in splits["test"]}  # conversations whole
    replies = [name for name, pairs in splits.items() for p in pairs if p.src == "Hi, How is it going?"]
    assert replies == [hash_split("Hi, How is it going?")] * 6


# ---- Chatbot: history, reset and long inputs, seen through a stub model
@dataclass
class EchoTranslator:
    """Answers `reply N` to the N-th source and records the sources, like a Translator for Chatbot."""

    config: Config = field(default_factory=Config)
    tokenizers: tuple[WordTokenizer, WordTokenizer] = (WordTokenizer(), WordTokenizer())
    sources: list[str] = field(default_factory=list)

    def translate_detailed(self, texts: list[str], options: DecodingOptions) -> list[list[api.Translation]]:
        self.sources.extend(texts)
        return [[api.Translation(f"reply {len(self.sources)}", 0.0, [], [], [], None)]]


def test_chatbot_history_and_reset() -> None:
    translator = EchoTranslator()
    chatbot = Chatbot(translator, history=2)  # type: ignore[arg-type]
    assert [chatbot.reply(m) for m in ("a", " b  c ", "d")] == ["reply 1", "reply 2", "reply 3"]
    chatbot.reset()
    chatbot.reply("e")
    assert translator.sources == ["a", "a | reply 1 | b c", "b c | reply 2 | d", "e"]


def test_chatbot_keeps_the_last_tokens_of_a_long_input(caplog: pytest.LogCaptureFixture) -> None:
    translator = EchoTranslator()
    translator.config.data.max_src_length = 6
    with caplog.at_level(logging.WARNING):
        Chatbot(translator).reply("one two three four five six seven eight")  # type: ignore[arg-type]
    assert translator.sources == ["three four five six seven eight"]
    assert "input of 8 tokens cut to its last 6" in caplog.text


def test_chatbot_bad_inputs() -> None:
    with pytest.raises(ConfigError, match="history must be >= 0"):
        Chatbot(EchoTranslator(), history=-1)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="an empty message has no reply"):
        Chatbot(EchoTranslator()).reply("  \t ")  # type: ignore[arg-type]


# ---- the REPL and the command, on a really trained model
def test_repl_turns_commands_and_end_of_input(run: Path) -> None:
    """Several turns, empty lines, /reset, an unknown command and a very long line; the end of input ends it."""
    stdout = io.StringIO()
    lines = ["hello", "", "   ", "/reset", "/help me", "bye " * 5000, "how are you"]
    repl(Chatbot(api.load_translator(run)), io.StringIO("".join(f"{line}\n" for line in lines)), stdout)
    parts = stdout.getvalue().split("> ")
    assert parts[:6] == ["(/reset clears the history, /quit or Ctrl-D ends)\n", "hi there\n", "", "",
                         "(history cleared)\n", "(unknown command /help: /reset clears the history, /quit or Ctrl-D "
                         "ends)\n"]
    assert parts[6].endswith("\n") and parts[6].count("\n") == 1  # the long line's reply, cut to 8 tokens
    assert parts[7:] == ["fine thanks\n", "\n"]


@pytest.mark.slow
def test_chat_command_reads_stdin_until_quit(run: Path) -> None:
    """`seq2seq chat` end to end in a real process: replies one per message, nothing read after /quit."""
    result = run_module("chat", "--model", run, stdin="hello\n\nwhat is your name\n/reset\nbye\n/quit\nhello\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("> ") == ["(/reset clears the history, /quit or Ctrl-D ends)\n", "hi there\n", "",
                                         "i am a bot\n", "(history cleared)\n", "see you\n", ""]


def test_chat_message_and_decoding_flags(run: Path) -> None:
    code, out, _ = run_cli("chat", "--help")
    assert code == 0 and out.startswith("usage: seq2seq chat")
    assert run_cli("chat", "--model", run, "--message", "what is your name") == (0, "i am a bot\n", "")
    code, out, err = run_cli("chat", "--model", run, "--message", "hello", "--strategy", "beam", "--beam-size", "3")
    assert (code, out) == (0, "hi there\n"), err
    code, out, err = run_cli("chat", "--model", run, "--message", "bye", "--strategy", "sample", "--seed", "1",
                             "--temperature", "0.01")
    assert (code, out) == (0, "see you\n"), err


def test_chat_bad_inputs_are_one_line(run: Path, tmp_path: Path) -> None:
    code, _, err = run_cli("chat", "--model", tmp_path / "none", "--message", "hello")
    assert str(tmp_path / "none") in one_line_error(code, err)
    code, _, err = run_cli("chat", "--model", run, "--message", " ")
    assert "empty message" in one_line_error(code, err)
    code, _, err = run_cli("chat", "--model", run, "--history", "-2", "--message", "hello")
    assert "history must be >= 0" in one_line_error(code, err)
    code, _, err = run_cli("chat", "--model", run, "--message", "hello", "--temperature", "0.5")
    assert "temperature applies only to strategy 'sample'" in one_line_error(code, err)
