"""Data preparation shared by every task: tokenizers and vocabularies (built from the training data, or restored
from the run being resumed), training and dev examples, and the statistics the checkpoint keeps of them."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain

from tqdm import tqdm

from seq2seq.config import Config, TokenizerConfig, shares_vocabulary, source_truncation
from seq2seq.data.audio import SAMPLE_RATE
from seq2seq.data.augmentation import Perturbation, draw
from seq2seq.data.checks import check_length_filtering, check_split, check_vocabulary
from seq2seq.data.examples import Example, TokenPair, encode_pairs, encode_tokens, tokenize_pairs
from seq2seq.data.feature_cache import FeatureCache
from seq2seq.data.labels import LABEL_OFFSET, build_labels, encode_labelled, example_class, labelled_examples
from seq2seq.data.lm_text import encode_stream
from seq2seq.data.metadata import ModelMetadata
from seq2seq.data.pairs import Pair, split_dev
from seq2seq.data.text import windows
from seq2seq.data.tokenizers import Tokenizer, build_tokenizer
from seq2seq.data.truncation import cut_text
from seq2seq.data.vocab import Vocab
from seq2seq.errors import DataError

logger = logging.getLogger(__name__)


@dataclass
class Prepared:
    """What training needs from the data: the model's metadata and the encoded examples."""

    metadata: ModelMetadata
    examples: Sequence[Example]  # a list, or the memory-mapped examples of prepared shards (`corpus`)
    dev_examples: list[Example]


Sides = tuple[tuple[Tokenizer, Vocab] | None, tuple[Tokenizer, Vocab] | None]
"""Per side (source, target) of a translation model, a tokenizer and vocabulary given to it, or None."""


def prepare_pairs(config: Config, train_pairs: Sequence[Pair], dev_pairs: Sequence[Pair],
                  saved: ModelMetadata | None = None, given: Sides = (None, None)) -> Prepared:
    """Tokenizers, vocabularies and examples for a seq2seq run; the training tokens, made once for the vocabularies
    and the examples, are freed on return. given: per side (source, target), a tokenizer and vocabulary to use
    instead of building them (a pretrained language model's)."""
    check_split(len(train_pairs), len(dev_pairs))
    if saved is not None:
        tokenizers = (saved.tokenizers[0], saved.tokenizers[1])
    else:
        tokenizers = (given[0][0] if given[0] else build_tokenizer(config.data.src, [p.src for p in train_pairs]),
                      given[1][0] if given[1] else build_tokenizer(config.data.tgt, [p.tgt for p in train_pairs]))
    train_tokens = tokenize_pairs(train_pairs, tokenizers)
    if saved is not None:
        vocabs = (saved.vocabs[0], saved.vocabs[1])
    elif given[0] or given[1]:  # model.init: the sides not given are built (never one shared vocabulary)
        counts = token_counts(train_tokens)
        vocabs = (given[0][1] if given[0] else side_vocabulary(counts[0], config.data.src, "data.src"),
                  given[1][1] if given[1] else side_vocabulary(counts[1], config.data.tgt, "data.tgt"))
        logger.info("vocabulary: %d source / %d target tokens", len(vocabs[0]), len(vocabs[1]))
    else:
        vocabs = vocabularies(config, token_counts(train_tokens))
    examples = _encode_training_pairs(config, train_tokens, vocabs)
    metadata = ModelMetadata(config, tokenizers, vocabs, length_statistics(examples))
    return Prepared(metadata, examples, encode_dev_pairs(config, dev_pairs, tokenizers, vocabs))


def encode_dev_pairs(config: Config, dev_pairs: Sequence[Pair], tokenizers: tuple[Tokenizer, Tokenizer],
                     vocabs: tuple[Vocab, Vocab]) -> list[Example]:
    """Ids of every dev pair (none is dropped for its length), sources cut as in training."""
    return encode_pairs(dev_pairs, tokenizers, vocabs, copy=config.model.copy,
                        truncate_src=source_truncation(config))[0]


def token_counts(token_pairs: Sequence[TokenPair]) -> tuple[Counter[str], Counter[str]]:
    """How often each token occurs on the source side and on the target side."""
    return (Counter(chain.from_iterable(pair[0] for pair in token_pairs)),
            Counter(chain.from_iterable(pair[1] for pair in token_pairs)))


def vocabularies(config: Config, counts: tuple[Counter[str], Counter[str]]) -> tuple[Vocab, Vocab]:
    """The source and target vocabularies (data.src / data.tgt settings) of the training tokens' counts; with
    model.copy or model.share_embeddings one vocabulary of both sides' tokens."""
    src, tgt = config.data.src, config.data.tgt
    if shares_vocabulary(config.model):  # a copied source token is a target token; one embedding matrix
        shared = Vocab.from_counts(counts[0] + counts[1], tgt.min_freq, tgt.max_size)
        check_vocabulary(shared, "data.tgt", tgt.min_freq)
        logger.info("vocabulary: %d tokens shared by source and target", len(shared))
        return shared, shared
    vocabs = (side_vocabulary(counts[0], src, "data.src"), side_vocabulary(counts[1], tgt, "data.tgt"))
    logger.info("vocabulary: %d source / %d target tokens", len(vocabs[0]), len(vocabs[1]))
    return vocabs


def side_vocabulary(counts: Counter[str], settings: TokenizerConfig, name: str) -> Vocab:
    """The vocabulary of one side's token counts by its settings (name: data.src or data.tgt), checked."""
    vocab = Vocab.from_counts(counts, settings.min_freq, settings.max_size)
    check_vocabulary(vocab, name, settings.min_freq)
    return vocab


def _encode_training_pairs(config: Config, train_tokens: Sequence[TokenPair], vocabs: tuple[Vocab, Vocab]
                           ) -> list[Example]:
    examples, dropped = encode_training_tokens(config, train_tokens, vocabs)
    check_length_filtering(train_tokens, dropped, length_limits(config), config.data.truncate_src)
    return examples


def encode_training_tokens(config: Config, train_tokens: Sequence[TokenPair], vocabs: tuple[Vocab, Vocab]
                           ) -> tuple[list[Example], int]:
    """Ids of the training pairs that the length limits keep (`length_limits`), and how many they drop."""
    return encode_tokens(train_tokens, vocabs, length_limits(config), config.model.copy, source_truncation(config))


def length_limits(config: Config) -> tuple[int, int]:
    """Most source and target tokens of a training pair (0 = no limit): data.max_src_length, data.max_tgt_length."""
    return config.data.max_src_length, config.data.max_tgt_length


def length_statistics(examples: Sequence[Example]) -> dict[str, float]:
    """Mean, 99th percentile and maximum of the training targets' lengths in tokens (without <s> and </s>)."""
    return target_statistics([len(example.tgt) - 2 for example in examples])


def target_statistics(target_lengths: Iterable[int]) -> dict[str, float]:
    """`length_statistics` of the targets' lengths in tokens (without <s> and </s>)."""
    lengths = sorted(target_lengths)
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
                     saved: ModelMetadata | None = None, text_side: tuple[Tokenizer, Vocab] | None = None
                     ) -> Prepared:
    """Tokenizer (data.src settings), text and label vocabularies, and examples for a classifier; text_side: a
    tokenizer and text vocabulary to use instead of building them (a pretrained language model's).

    Texts are cut to data.max_src_length tokens (`cut_text`); dev texts whose label never occurs in the
    training data are left out of the dev examples (no class can score them), with a warning.
    """
    if not train_pairs:
        raise DataError("no training texts")
    if saved:
        text_side = saved.tokenizers[0], saved.vocabs[0]
    tokenizer = text_side[0] if text_side else build_tokenizer(config.data.src, [p.src for p in train_pairs])
    token_lists = [cut_text(tokenizer.tokenize(pair.src), config.data) for pair in train_pairs]
    texts = text_side[1] if text_side else Vocab.build(token_lists, config.data.src.min_freq,
                                                       config.data.src.max_size)
    check_vocabulary(texts, "data.src", config.data.src.min_freq)
    check_split(len(train_pairs), len(dev_pairs), "texts")
    labels = saved.vocabs[1] if saved else build_labels([pair.tgt for pair in train_pairs])
    examples = labelled_examples(token_lists, [pair.tgt for pair in train_pairs], (texts, labels))
    dev_examples = encode_labelled(dev_pairs, tokenizer, (texts, labels), config.data)
    known = [example for example in dev_examples if example_class(example) >= 0]
    if len(known) < len(dev_examples):
        logger.warning("%d of %d dev texts have labels never seen in training; left out of the dev scores",
                       len(dev_examples) - len(known), len(dev_examples))
    logger.info("classification: %d training texts, %d labels, vocabulary of %d tokens", len(examples),
                len(labels) - LABEL_OFFSET, len(texts))
    return Prepared(ModelMetadata(config, (tokenizer,), (texts, labels)), examples, known)


def prepare_speech(config: Config, train_pairs: Sequence[Pair], dev_pairs: Sequence[Pair],
                   saved: ModelMetadata | None = None, cache: FeatureCache | None = None) -> Prepared:
    """Transcript tokenizer and vocabulary (data.tgt settings) and examples of normalised log-mel frames
    (data.audio, read from the cache where it holds them) for a speech model; a Pair's src is the path of its WAV
    file.

    Utterances whose transcripts are longer than data.max_tgt_length tokens (0 = no limit) are left out of
    training, with a warning. Each training utterance gets data.audio.augment_copies perturbed copies beside it
    (`augmentation.draw`, seeded by train.seed); dev utterances are never perturbed.
    """
    if not train_pairs:
        raise DataError("no training utterances")
    check_split(len(train_pairs), len(dev_pairs), "utterances")
    tgt = config.data.tgt
    tokenizer = saved.tokenizers[0] if saved else build_tokenizer(tgt, [pair.tgt for pair in train_pairs])
    token_lists = [tokenizer.tokenize(pair.tgt) for pair in train_pairs]
    vocab = saved.vocabs[0] if saved else Vocab.build(token_lists, tgt.min_freq, tgt.max_size)
    check_vocabulary(vocab, "data.tgt", tgt.min_freq)
    limit = config.data.max_tgt_length or max(map(len, token_lists))
    kept = [(index, pair, tokens) for index, (pair, tokens) in enumerate(zip(train_pairs, token_lists, strict=True))
            if len(tokens) <= limit]
    if len(kept) < len(train_pairs):
        logger.warning("left out %d of %d training utterances whose transcripts are longer than %d tokens",
                       len(train_pairs) - len(kept), len(train_pairs), limit)
    audio = config.data.audio
    copies = [(pair, draw(audio, config.train.seed, index, copy), tokens)
              for copy in range(audio.augment_copies) for index, pair, tokens in kept]
    utterances: list[tuple[Pair, Perturbation | None, list[str]]] = [(pair, None, tokens) for _, pair, tokens in kept]
    utterances += copies
    utterances += [(pair, None, tokenizer.tokenize(pair.tgt)) for pair in dev_pairs]
    cache = cache or FeatureCache(None, audio)
    with tqdm(utterances, desc="features", unit="utterance", dynamic_ncols=True, delay=2, disable=None) as progress:
        loaded = [Example(cache.load(pair, perturbation), vocab.encode(tokens, add_bos=True, add_eos=True))
                  for pair, perturbation, tokens in progress]
    cache.save()
    examples, dev_examples = loaded[:len(loaded) - len(dev_pairs)], loaded[len(loaded) - len(dev_pairs):]
    if copies:
        logger.info("speech: %d perturbed copies of the training utterances added (data.audio.augment_copies=%d)",
                    len(copies), audio.augment_copies)
    logger.info("speech: %d training utterances (%.0f s of audio), vocabulary of %d tokens", len(examples),
                sum(len(example.src) for example in examples) * audio.hop_length / SAMPLE_RATE, len(vocab))
    return Prepared(ModelMetadata(config, (tokenizer,), (vocab,), length_statistics(examples)), examples, dev_examples)
