"""Data preparation shared by every task: tokenizers and vocabularies (built from the training data, or restored
from the run being resumed), training and dev examples, and the statistics the checkpoint keeps of them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from seq2seq.checks import check_length_filtering, check_split, check_vocabulary
from seq2seq.config import Config
from seq2seq.data import Example, Pair, TokenPair, encode_pairs, encode_tokens, split_dev, tokenize_pairs
from seq2seq.errors import DataError
from seq2seq.labels import LABEL_OFFSET, build_labels, encode_labelled, example_class, labelled_examples
from seq2seq.metadata import ModelMetadata
from seq2seq.text import encode_stream, windows
from seq2seq.tokenizers import build_tokenizer
from seq2seq.vocab import Vocab

logger = logging.getLogger(__name__)


@dataclass
class Prepared:
    """What training needs from the data: the model's metadata and the encoded examples."""

    metadata: ModelMetadata
    examples: list[Example]
    dev_examples: list[Example]


def source_truncation(config: Config) -> int:
    """Source tokens kept per input (0 = all): data.max_src_length where data.truncate_src says to cut."""
    return config.data.max_src_length if config.data.truncate_src else 0


def prepare_pairs(config: Config, train_pairs: Sequence[Pair], dev_pairs: Sequence[Pair],
                  saved: ModelMetadata | None = None) -> Prepared:
    """Tokenizers, vocabularies and examples for a seq2seq run; the training tokens, made once for the vocabularies
    and the examples, are freed on return."""
    check_split(len(train_pairs), len(dev_pairs))
    if saved is not None:
        tokenizers = (saved.tokenizers[0], saved.tokenizers[1])
    else:
        tokenizers = (build_tokenizer(config.data.src, [p.src for p in train_pairs]),
                      build_tokenizer(config.data.tgt, [p.tgt for p in train_pairs]))
    train_tokens = tokenize_pairs(train_pairs, tokenizers)
    vocabs = (saved.vocabs[0], saved.vocabs[1]) if saved is not None else _build_vocabs(config, train_tokens)
    examples = _encode_training_pairs(config, train_tokens, vocabs)
    dev_examples, _ = encode_pairs(dev_pairs, tokenizers, vocabs, copy=config.model.copy,
                                   truncate_src=source_truncation(config))
    metadata = ModelMetadata(config, tokenizers, vocabs, length_statistics(examples))
    return Prepared(metadata, examples, dev_examples)


def _build_vocabs(config: Config, token_pairs: Sequence[TokenPair]) -> tuple[Vocab, Vocab]:
    src, tgt = config.data.src, config.data.tgt
    if config.model.copy:  # one vocabulary, so that a copied source token is a target token
        shared = Vocab.build([side for pair in token_pairs for side in pair], tgt.min_freq, tgt.max_size)
        check_vocabulary(shared, "data.tgt", tgt.min_freq)
        logger.info("vocabulary: %d tokens shared by source and target", len(shared))
        return shared, shared
    vocabs = (Vocab.build((pair[0] for pair in token_pairs), src.min_freq, src.max_size),
              Vocab.build((pair[1] for pair in token_pairs), tgt.min_freq, tgt.max_size))
    check_vocabulary(vocabs[0], "data.src", src.min_freq)
    check_vocabulary(vocabs[1], "data.tgt", tgt.min_freq)
    logger.info("vocabulary: %d source / %d target tokens", len(vocabs[0]), len(vocabs[1]))
    return vocabs


def _encode_training_pairs(config: Config, train_tokens: Sequence[TokenPair], vocabs: tuple[Vocab, Vocab]
                           ) -> list[Example]:
    limits = (config.data.max_src_length, config.data.max_tgt_length)
    examples, dropped = encode_tokens(train_tokens, vocabs, limits, config.model.copy, source_truncation(config))
    check_length_filtering(train_tokens, dropped, limits, config.data.truncate_src)
    return examples


def length_statistics(examples: Sequence[Example]) -> dict[str, float]:
    """Mean, 99th percentile and maximum of the training targets' lengths in tokens (without <s> and </s>)."""
    lengths = sorted(len(example.tgt) - 2 for example in examples)
    return {"mean": sum(lengths) / len(lengths), "p99": lengths[min(len(lengths) - 1, int(0.99 * len(lengths)))],
            "max": lengths[-1]}


def prepare_text(config: Config, entries: Sequence[str], dev_entries: Sequence[str],
                 saved: ModelMetadata | None = None) -> Prepared:
    """Tokenizer, vocabulary and windows of data.window tokens for a language model.

    The training text is one stream of `<s> entry </s>`; without dev entries, data.dev_size of its windows (chosen
    by train.seed) are held out. The tokenizer and vocabulary (data.tgt settings) come from all the training text.
    """
    if not entries:
        raise DataError("no training text")
    tokenizer = saved.tokenizers[0] if saved is not None else build_tokenizer(config.data.tgt, entries)
    token_lists = [tokenizer.tokenize(entry) for entry in entries]
    vocab = saved.vocabs[0] if saved is not None else Vocab.build(token_lists, config.data.tgt.min_freq,
                                                                   config.data.tgt.max_size)
    check_vocabulary(vocab, "data.tgt", config.data.tgt.min_freq)
    check_split(len(entries), len(dev_entries), "entries")
    examples = windows(encode_stream(token_lists, vocab), config.data.window)
    dev_examples = windows(encode_stream([tokenizer.tokenize(e) for e in dev_entries], vocab), config.data.window)
    if not dev_entries and config.data.dev_size:
        examples, dev_examples = split_dev(examples, config.data.dev_size, config.train.seed)
    logger.info("text: %d entries, %d training windows of %d tokens, vocabulary of %d", len(entries),
                len(examples), config.data.window, len(vocab))
    return Prepared(ModelMetadata(config, (tokenizer,), (vocab,)), examples, dev_examples)


def prepare_labelled(config: Config, train_pairs: Sequence[Pair], dev_pairs: Sequence[Pair],
                     saved: ModelMetadata | None = None) -> Prepared:
    """Tokenizer (data.src settings), text and label vocabularies, and examples for a classifier.

    Texts are cut to their first data.max_src_length tokens (0 = all); dev texts whose label never occurs in the
    training data are left out of the dev examples (no class can score them), with a warning.
    """
    if not train_pairs:
        raise DataError("no training texts")
    limit = config.data.max_src_length or None
    tokenizer = saved.tokenizers[0] if saved else build_tokenizer(config.data.src, [p.src for p in train_pairs])
    token_lists = [tokenizer.tokenize(pair.src)[:limit] for pair in train_pairs]
    texts = saved.vocabs[0] if saved else Vocab.build(token_lists, config.data.src.min_freq, config.data.src.max_size)
    check_vocabulary(texts, "data.src", config.data.src.min_freq)
    check_split(len(train_pairs), len(dev_pairs), "texts")
    labels = saved.vocabs[1] if saved else build_labels([pair.tgt for pair in train_pairs])
    examples = labelled_examples(token_lists, [pair.tgt for pair in train_pairs], (texts, labels))
    dev_examples = encode_labelled(dev_pairs, tokenizer, (texts, labels), config.data.max_src_length)
    known = [example for example in dev_examples if example_class(example) >= 0]
    if len(known) < len(dev_examples):
        logger.warning("%d of %d dev texts have labels never seen in training; left out of the dev scores",
                       len(dev_examples) - len(known), len(dev_examples))
    logger.info("classification: %d training texts, %d labels, vocabulary of %d tokens", len(examples),
                len(labels) - LABEL_OFFSET, len(texts))
    return Prepared(ModelMetadata(config, (tokenizer,), (texts, labels)), examples, known)

