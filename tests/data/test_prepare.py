"""Corpora prepared once (`seq2seq prepare`): the shards give the examples, batches, metadata and training of the text
path; corrupted shards are a one-line error naming the file; memory maps stay within their window."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from seq2seq import api, cli
from seq2seq.config import Config, apply_overrides
from seq2seq.data.corpus import open_corpus, prepare_corpus
from seq2seq.data.datasets import load_pairs
from seq2seq.data.pairs import Pair, batch_order
from seq2seq.data.preparation import prepare_pairs
from seq2seq.data.shards import MANIFEST, ShardedExamples
from seq2seq.errors import ConfigError, DataError
from seq2seq.training.checkpoint import load_checkpoint
from tests.conftest import toy_pairs

TINY = ["model.hidden_size=16", "model.embedding_size=8", "train.precision=fp32", "train.threads=1",
        "train.epochs=0", "data.src.kind=word", "data.tgt.kind=word", "data.src.split_punctuation=false",
        "data.tgt.split_punctuation=false"]
RARE = [Pair(f"a q{i} b", f"b q{i} a") for i in range(12)]  # once a side: unknown above min_freq 1 (copy: 2)
PAIRS = toy_pairs("reverse", 150, seed=3) + RARE


def config_of(*overrides: str) -> Config:
    return apply_overrides(Config(), [*TINY, *overrides])


def write_tsv(path: Path, pairs: list[Pair]) -> str:
    path.write_text("".join(f"{p.src}\t{p.tgt}\n" for p in pairs), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(write_tsv(tmp_path_factory.mktemp("text") / "pairs.tsv", PAIRS))


@pytest.fixture(scope="module")
def prepared_dir(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PAIRS prepared into shards of 40 pairs (the last one shorter)."""
    out = tmp_path_factory.mktemp("prepared") / "corpus"
    prepare_corpus(config_of(), str(data), None, out, shard_pairs=40)
    return out


@pytest.mark.parametrize("overrides", [
    [], ["data.max_src_length=6", "data.max_tgt_length=7"], ["model.copy=true", "data.tgt.min_freq=3"],
    ["data.truncate_src=true", "data.max_src_length=4", "data.src.lowercase=true"],
    ["data.src.kind=subword", "data.tgt.kind=subword", "data.src.subword_vocab_size=40",
     "data.tgt.subword_vocab_size=40"],
], ids=["words", "length limits", "copy", "truncated sources", "subwords"])
def test_shards_hold_the_examples_batches_and_metadata_of_the_text(data: Path, tmp_path: Path,
                                                                   overrides: list[str]) -> None:
    config = config_of(*overrides)
    text = prepare_pairs(config, PAIRS, [])
    prepare_corpus(config, str(data), None, tmp_path / "corpus", shard_pairs=40)
    corpus = open_corpus(tmp_path / "corpus")
    shards = corpus.prepared(corpus.training_config(config), [])
    assert list(shards.examples) == text.examples
    assert shards.metadata.to_dict() == text.metadata.to_dict()
    for bucket, batch_tokens in [(True, 0), (False, 0), (True, 40)]:
        assert ([batch.tolist() for batch in batch_order(shards.examples, 16, bucket, 7, batch_tokens)]
                == [batch.tolist() for batch in batch_order(text.examples, 16, bucket, 7, batch_tokens)])


def test_two_workers_write_the_same_files_as_one(data: Path, prepared_dir: Path, tmp_path: Path) -> None:
    manifest = prepare_corpus(config_of(), str(data), None, tmp_path / "corpus", workers=2, shard_pairs=40)
    assert manifest["files"] == json.loads((prepared_dir / MANIFEST).read_text())["files"]
    assert [shard["pairs"] for shard in manifest["shards"]] == [40, 40, 40, 40, 2]


def test_training_from_shards_equals_training_from_text(data: Path, tmp_path: Path) -> None:
    """Same first-step loss, dev losses and weights; the prepared run stops at step 2 and resumes to 4."""
    config = config_of("data.dev_size=20", "data.batch_size=16", "train.eval_every=2")
    prepare_corpus(config, str(data), None, tmp_path / "corpus")
    api.train(apply_overrides(config, ["train.max_steps=4"]), load_pairs(str(data)), [], tmp_path / "text")
    api.train_prepared(apply_overrides(config, ["train.max_steps=2"]), tmp_path / "corpus", out_dir=tmp_path / "run")
    api.train_prepared(apply_overrides(config, ["train.max_steps=4"]), tmp_path / "corpus", out_dir=tmp_path / "run",
                       resume=True)
    logs = [[(r["event"], r["step"], r["loss"]) for r in map(json.loads, (tmp_path / run / "metrics.jsonl").open())]
            for run in ("text", "run")]
    assert logs[0] == logs[1] and logs[0][0][:2] == ("train", 1) and len(logs[0]) == 3
    expected = load_checkpoint(tmp_path / "text" / "last.safetensors")[0]
    for name, tensor in load_checkpoint(tmp_path / "run" / "last.safetensors")[0].items():
        if name.startswith("model."):
            torch.testing.assert_close(tensor, expected[name], rtol=0, atol=0, msg=name)


def corrupt(folder: Path, case: str) -> str:
    """Damage the prepared folder one way; the name of the file the error must name."""
    if case == "truncated":
        path = folder / "00001.tgt"
        path.write_bytes(path.read_bytes()[:-2])
    elif case == "flipped":
        path = folder / "00000.offsets"
        data = bytearray(path.read_bytes())
        data[-3] ^= 0x10
        path.write_bytes(bytes(data))
    elif case == "missing":
        (path := folder / "00002.src").unlink()
    else:  # ids beyond the vocabulary: a target vocabulary of 6 tokens where the ids were made with 23
        manifest = json.loads((folder / MANIFEST).read_text())
        manifest["metadata"]["vocabs"][1]["tokens"] = manifest["metadata"]["vocabs"][1]["tokens"][:6]
        (folder / MANIFEST).write_text(json.dumps(manifest))
        path = folder / "00000.tgt"
    return str(path)


@pytest.mark.parametrize(("case", "problem"), [
    ("truncated", "bytes where the manifest says"), ("flipped", "SHA-256 is not the manifest's"),
    ("missing", "cannot read"), ("ids", "beyond the vocabulary"),
])
def test_a_damaged_shard_is_a_one_line_error_naming_it(prepared_dir: Path, tmp_path: Path, case: str,
                                                       problem: str) -> None:
    folder = Path(shutil.copytree(prepared_dir, tmp_path / "corpus"))
    path = corrupt(folder, case)
    corpus = open_corpus(folder)
    with pytest.raises(DataError) as caught:
        corpus.prepared(corpus.training_config(config_of()), [])
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and problem in message and "\n" not in message


def test_prepared_settings_are_taken_and_conflicting_ones_refused(prepared_dir: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    corpus = open_corpus(prepared_dir)
    caplog.set_level("INFO")
    config = corpus.training_config(Config())  # defaults: char tokens, which the directory's word tokens replace
    assert config.data.src.kind == config.data.tgt.kind == "word" and not config.data.src.split_punctuation
    assert "data.src.kind='word', as" in caplog.text
    with pytest.raises(ConfigError, match=r"data.tgt.lowercase=True, but .* was prepared with False"):
        corpus.training_config(config_of("data.tgt.lowercase=true"))


def test_memory_maps_stay_within_their_window(prepared_dir: Path) -> None:
    """With a window of one shard, reading every example (the last from shard 0) leaves only shard 0 mapped."""
    manifest = json.loads((prepared_dir / MANIFEST).read_text())
    examples = ShardedExamples(prepared_dir, manifest, window_bytes=1)
    read = [examples[i] for i in reversed(range(len(examples)))]
    if Path("/proc/self/maps").is_file():
        mapped = {Path(line.split()[-1]).name for line in Path("/proc/self/maps").read_text().splitlines()
                  if str(prepared_dir) in line}
        assert mapped == {"00000.src", "00000.tgt", "00000.offsets"}
    reference = ShardedExamples(prepared_dir, manifest)
    assert examples.window == 1 and reference.window > 1
    assert read == list(reversed(reference)) and len(read) == len(PAIRS)
    with pytest.raises(IndexError):
        examples[len(examples)]


def test_a_failed_preparation_leaves_nothing_and_only_prepared_folders_are_replaced(data: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no training pairs left after length filtering"):
        prepare_corpus(config_of("data.max_src_length=1"), str(data), None, tmp_path / "corpus")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep")
    with pytest.raises(DataError, match="exists and is not a prepared directory"):
        prepare_corpus(config_of(), str(data), None, tmp_path / "notes")
    prepare_corpus(config_of(), str(data), None, tmp_path / "again")
    prepare_corpus(config_of("data.src.lowercase=true"), str(data), None, tmp_path / "again")  # replaces it
    assert open_corpus(tmp_path / "again").metadata.config.data.src.lowercase
    assert sorted(path.name for path in tmp_path.iterdir()) == ["again", "notes"]
    with pytest.raises(DataError, match="a directory written by seq2seq prepare"):
        load_pairs(str(tmp_path / "again"))


def test_prepare_train_translate_on_the_command_line(data: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """prepare (two workers, dev pairs held out), train from the directory, translate; a truncated shard then stops
    training with one line naming it."""
    corpus, run, texts = tmp_path / "corpus", tmp_path / "run", tmp_path / "in.txt"
    assert cli.main(["prepare", "--train", str(data), "--out", str(corpus), "--workers", "2", *TINY[5:],
                     "--set", "data.dev_size=10"]) == 0
    assert f"prepared {len(PAIRS) - 10:,} training pairs in 1 shards" in capsys.readouterr().out
    assert cli.main(["train", "--train", str(corpus), "--out", str(run), *TINY[:4], "train.max_steps=3"]) == 0
    texts.write_text("a b c\nd e\n")
    assert cli.main(["translate", "--model", str(run), "--input", str(texts), "--output", str(tmp_path / "out")]) == 0
    assert len((tmp_path / "out").read_text().splitlines()) == 2
    (corpus / "00000.src").write_bytes((corpus / "00000.src").read_bytes()[:-1])
    capsys.readouterr()
    assert cli.main(["train", "--train", str(corpus), "--out", str(tmp_path / "again"), *TINY[:4]]) == 1
    assert capsys.readouterr().err.splitlines()[-1].startswith(f"seq2seq train: error: {corpus / '00000.src'}: ")
