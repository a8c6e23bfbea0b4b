"""Labelled texts for classification: `text<TAB>label` TSV and {"text", "label"} JSONL, checked and encoded."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from seq2seq.config import DataConfig
from seq2seq.data.examples import Example
from seq2seq.data.pairs import Pair, json_record, read_lines, read_pairs
from seq2seq.data.tokenizers import Tokenizer
from seq2seq.data.truncation import cut_text
from seq2seq.data.vocab import BOS_ID, EOS_ID, LABEL_OFFSET, PAD_ID, SPECIALS, Vocab
from seq2seq.errors import DataError

_PAIR_WORDING = {"source<TAB>target": "text<TAB>label", "empty source": "empty text", "empty target": "empty label"}


def read_labelled(spec: str | Path) -> list[Pair]:
    """Labelled texts (Pair(text, label, origin)) from `file.jsonl` ({"text", "label"} per line) or a TSV file
    (`text<TAB>label`); a missing or empty text or label, or a label that is a special token, raises DataError
    naming the file and line."""
    spec = str(spec)
    if spec.endswith(".jsonl") and Path(spec).is_file():
        pairs = _read_labelled_jsonl(spec)
    else:
        try:
            pairs = read_pairs(spec)
        except DataError as error:
            raise DataError(_reworded(str(error))) from None
    for pair in pairs:
        check_label(pair.tgt, pair.origin)
    return pairs


def _reworded(message: str) -> str:
    for pairs_word, label_word in _PAIR_WORDING.items():
        message = message.replace(pairs_word, label_word)
    return message


def _read_labelled_jsonl(path: str) -> list[Pair]:
    pairs = []
    for number, line in read_lines(path):
        if not line.strip():
            continue
        origin = f"{path}:{number}"
        record = json_record(line, origin)
        if not isinstance(record, dict) or not all(isinstance(record.get(k), str) for k in ("text", "label")):
            raise DataError(f'{origin}: expected an object with string fields "text" and "label"')
        if not record["text"].strip():
            raise DataError(f"{origin}: empty text")
        pairs.append(Pair(record["text"].strip(), record["label"].strip(), origin))
    if not pairs:
        raise DataError(f"{path}: no data (the file is empty)")
    return pairs


def check_label(label: str, origin: str) -> None:
    """A label is a non-empty string on one line that is not one of the vocabulary's special tokens."""
    if not label.strip():
        raise DataError(f"{origin}: empty label")
    if label in SPECIALS or "\n" in label or "\r" in label:
        raise DataError(f"{origin}: bad label {label!r} (a label is one line and not one of {', '.join(SPECIALS)})")


def build_labels(labels: Sequence[str]) -> Vocab:
    """The label vocabulary: the labels seen, most frequent first (ties alphabetical)."""
    return Vocab.build([labels])


def label_counts(examples: Sequence[Example], num_classes: int) -> list[int]:
    """How many examples have each class."""
    counts = Counter(example_class(example) for example in examples)
    return [counts[k] for k in range(num_classes)]


def encode_label(labels: Vocab, label: str) -> list[int]:
    """A label as a one-token target `<s> label </s>` (so labelled texts batch like pairs; `Batch.tgt_out[:, 0]`
    holds the label's id); an unknown label gets <unk>, which no class has."""
    return [BOS_ID, labels.stoi[label], EOS_ID]


def example_class(example: Example) -> int:
    """The class of an encoded example (-1 for a label the classifier does not know)."""
    return example.tgt[1] - LABEL_OFFSET if example.tgt[1] >= LABEL_OFFSET else -1


def encode_labelled(pairs: Sequence[Pair], tokenizer: Tokenizer, vocabs: tuple[Vocab, Vocab], data: DataConfig
                    ) -> list[Example]:
    """Examples of labelled texts, each text cut as data says (`cut_text`)."""
    return labelled_examples([cut_text(tokenizer.tokenize(pair.src), data) for pair in pairs],
                             [pair.tgt for pair in pairs], vocabs)


def labelled_examples(token_lists: Sequence[list[str]], labels: Sequence[str], vocabs: tuple[Vocab, Vocab]
                      ) -> list[Example]:
    """Examples of tokenized texts and their labels; vocabs are the texts' and the labels'."""
    return [Example(vocabs[0].encode(tokens) or [PAD_ID], encode_label(vocabs[1], label))
            for tokens, label in zip(token_lists, labels, strict=True)]
