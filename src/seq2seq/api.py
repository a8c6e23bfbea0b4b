"""The Python API: `train(...)` builds and fits a model; `load(path)` returns a Translator."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from seq2seq import checkpoint, metrics
from seq2seq.config import Config, config_from_dict, save_config, validate
from seq2seq.data import Example, Pair, collate, encode_pairs, split_dev
from seq2seq.decoding import greedy
from seq2seq.errors import CheckpointError, ConfigError, DataError
from seq2seq.model import Seq2Seq
from seq2seq.tokenizers import Tokenizer, build_tokenizer, tokenizer_from_dict
from seq2seq.train import Trainer, resolve_device, sequence_loss
from seq2seq.vocab import Vocab

logger = logging.getLogger(__name__)


@dataclass
class Translator:
    """A trained Seq2Seq with its tokenizers and vocabularies: text in, text out."""

    model: Seq2Seq
    config: Config
    tokenizers: tuple[Tokenizer, Tokenizer]
    vocabs: tuple[Vocab, Vocab]
    device: torch.device

    def translate(self, texts: Sequence[str], max_length: int = 0, batch_size: int = 64) -> list[str]:
        """Greedy outputs for each text, in order; unknown tokens in the input map to <unk>."""
        if isinstance(texts, str):
            raise TypeError("translate() takes a list of strings; wrap a single text in a list")
        max_length = max_length or self.config.data.max_tgt_length + 1
        ids = [self.vocabs[0].encode(self.tokenizers[0].tokenize(text)) or [0] for text in texts]
        outputs: list[str] = [""] * len(ids)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # similar lengths share a batch
        self.model.eval()
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            batch = collate([Example(ids[i], [0]) for i in chunk]).to(self.device)
            decoded = greedy(self.model, batch.src, batch.src_lengths, max_length)
            for row, index in enumerate(chunk):
                tokens = self.vocabs[1].decode(decoded.tokens[row].tolist())
                outputs[index] = self.tokenizers[1].detokenize(tokens)
        return outputs

    def evaluate(self, pairs: Sequence[Pair], batch_size: int = 64) -> dict[str, Any]:
        """Scores on pairs; lines sharing a source are one item with several references."""
        sources, references = metrics.group_references([p.src for p in pairs], [p.tgt for p in pairs])
        hypotheses = self.translate(sources, batch_size=batch_size)
        scores: dict[str, Any] = metrics.score_corpus(hypotheses, references)
        scores["perplexity"] = self.perplexity(pairs, batch_size)
        scores["bleu_signature"] = metrics.bleu(hypotheses, references).signature
        scores["chrf_signature"] = metrics.chrf(hypotheses, references).signature
        return scores

    @torch.no_grad()
    def perplexity(self, pairs: Sequence[Pair], batch_size: int = 64) -> float:
        """exp of the mean per-token cross-entropy of the references."""
        examples, _ = encode_pairs(pairs, self.tokenizers, self.vocabs)
        self.model.eval()
        total, tokens = 0.0, 0
        for start in range(0, len(examples), batch_size):
            loss, count = sequence_loss(self.model, collate(examples[start:start + batch_size]).to(self.device))
            total, tokens = total + float(loss), tokens + count
        return metrics.perplexity(total, tokens)


def load(path: str | Path, device: str = "auto") -> Translator:
    """Load a trained model from its run directory (best checkpoint) or a checkpoint file."""
    tensors, metadata = checkpoint.load_checkpoint(checkpoint.resolve_checkpoint(path))
    config = config_from_dict(metadata["config"], str(path))
    tokenizers = (tokenizer_from_dict(metadata["tokenizers"][0]), tokenizer_from_dict(metadata["tokenizers"][1]))
    vocabs = (Vocab.from_dict(metadata["vocabs"][0]), Vocab.from_dict(metadata["vocabs"][1]))
    model = Seq2Seq(config.model, len(vocabs[0]), len(vocabs[1]))
    try:
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    except RuntimeError as error:
        raise CheckpointError(f"{path}: weights do not match the saved config ({str(error).splitlines()[0]})") \
            from error
    target = resolve_device(device)
    return Translator(model.to(target).eval(), config, tokenizers, vocabs, target)


def train(config: Config, train_pairs: Sequence[Pair], dev_pairs: Sequence[Pair] = (),
          out_dir: str | Path = "runs/model", resume: bool = False) -> Translator:
    """Build tokenizers, vocabularies and a model from the training pairs, fit it, and return the best model."""
    started = time.monotonic()
    validate(config)
    _set_threads(config.train.threads)
    out = Path(out_dir)
    saved: tuple[dict[str, Any], dict[str, Any]] | None = None
    if resume:
        saved = checkpoint.load_checkpoint(out / "last.safetensors")
        config = config_from_dict(saved[1]["config"], str(out / "last.safetensors"))
    if not dev_pairs and config.data.dev_size:
        train_pairs, dev_pairs = split_dev(list(train_pairs), config.data.dev_size, config.train.seed)
    tokenizers, vocabs = _restore_or_build_vocabs(config, train_pairs, saved[1] if saved else None)
    examples, dev_examples = _encode_splits(config, train_pairs, dev_pairs, tokenizers, vocabs)
    torch.manual_seed(config.train.seed)
    model = Seq2Seq(config.model, len(vocabs[0]), len(vocabs[1]))
    metadata = {"config": config.to_dict(), "tokenizers": [t.to_dict() for t in tokenizers],
                "vocabs": [v.to_dict() for v in vocabs]}
    scorer = _dev_scorer(config, tokenizers, vocabs, dev_pairs) if config.train.metric != "loss" else None
    trainer = Trainer(model, config, examples, dev_examples, out, metadata, scorer)
    if saved:
        trainer.restore(*saved)
    else:
        out.mkdir(parents=True, exist_ok=True)
        save_config(config, out / "config.yaml")
    logger.info("model: %s parameters, device %s, mixed precision %s",
                f"{sum(p.numel() for p in model.parameters()):,}", trainer.device, trainer.amp_dtype)
    deadline = started + config.train.max_time - trainer.state.elapsed if config.train.max_time else None
    trainer.fit(deadline)
    return load(out, config.train.device)


def _restore_or_build_vocabs(config: Config, pairs: Sequence[Pair], metadata: dict[str, Any] | None
                             ) -> tuple[tuple[Tokenizer, Tokenizer], tuple[Vocab, Vocab]]:
    if metadata is not None:
        return ((tokenizer_from_dict(metadata["tokenizers"][0]), tokenizer_from_dict(metadata["tokenizers"][1])),
                (Vocab.from_dict(metadata["vocabs"][0]), Vocab.from_dict(metadata["vocabs"][1])))
    if not pairs:
        raise DataError("no training pairs")
    sides = (config.data.src, config.data.tgt)
    texts = ([p.src for p in pairs], [p.tgt for p in pairs])
    tokenizers = (build_tokenizer(sides[0], texts[0]), build_tokenizer(sides[1], texts[1]))
    vocabs = tuple(Vocab.build((tokenizer.tokenize(t) for t in side_texts), side.min_freq, side.max_size)
                   for tokenizer, side_texts, side in zip(tokenizers, texts, sides, strict=True))
    logger.info("vocabulary: %d source / %d target tokens", len(vocabs[0]), len(vocabs[1]))
    return tokenizers, (vocabs[0], vocabs[1])


def _encode_splits(config: Config, train_pairs: Sequence[Pair], dev_pairs: Sequence[Pair],
                   tokenizers: tuple[Tokenizer, Tokenizer], vocabs: tuple[Vocab, Vocab]
                   ) -> tuple[list[Example], list[Example]]:
    limits = (config.data.max_src_length, config.data.max_tgt_length)
    examples, dropped = encode_pairs(train_pairs, tokenizers, vocabs, limits)
    if dropped:
        logger.warning("filtered %d of %d training pairs longer than %d source / %d target tokens",
                       dropped, len(train_pairs), *limits)
    if not examples:
        raise DataError("no training pairs left after length filtering")
    dev_examples, _ = encode_pairs(dev_pairs, tokenizers, vocabs)
    return examples, dev_examples


def _dev_scorer(config: Config, tokenizers: tuple[Tokenizer, Tokenizer], vocabs: tuple[Vocab, Vocab],
                dev_pairs: Sequence[Pair]):  # type: ignore[no-untyped-def]
    if not dev_pairs:
        raise ConfigError(f"train.metric={config.train.metric} needs dev data (--dev or data.dev_size)")

    def score(model: nn.Module) -> dict[str, float]:
        device = next(model.parameters()).device
        translator = Translator(model, config, tokenizers, vocabs, device)  # type: ignore[arg-type]
        sources, references = metrics.group_references([p.src for p in dev_pairs], [p.tgt for p in dev_pairs])
        return metrics.score_corpus(translator.translate(sources), references)

    return score


def _set_threads(threads: int) -> None:
    if threads:
        torch.set_num_threads(threads)

