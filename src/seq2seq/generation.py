"""The text-generation API: train a LanguageModel on text, load it, generate text with temperature, score text."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from seq2seq import checkpoint, metrics
from seq2seq.config import Config, config_from_dict, validate
from seq2seq.data import pad, split_dev
from seq2seq.decoding import DecodingOptions, ban_tokens, build_processors, greedy, sample
from seq2seq.errors import CheckpointError, ConfigError, DataError
from seq2seq.language_model import LanguageModel
from seq2seq.loss import projected_cross_entropy
from seq2seq.text import count_characters, encode_stream, read_entries, windows
from seq2seq.tokenizers import Tokenizer, build_tokenizer, tokenizer_from_dict
from seq2seq.train import Trainer, resolve_device, resume_point, run_training
from seq2seq.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Vocab

logger = logging.getLogger(__name__)


@dataclass
class TextGenerator:
    """A trained LanguageModel with its tokenizer and vocabulary: prompts in, text out."""

    model: LanguageModel
    config: Config
    tokenizer: Tokenizer
    vocab: Vocab
    device: torch.device

    def read(self, source: str | Path) -> list[str]:
        """Entries of a text file or folder, split the way the training text was (`data.entries`)."""
        return read_entries(source, self.config.data.entries, self.config.data.entry_delimiter)

    def generate(self, prompt: str = "", num: int = 1, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, max_length: int = 200, seed: int | None = None,
                 stop_at_end: bool = False) -> list[str]:
        """num texts, each the prompt followed by what the model writes after it.

        Args:
            prompt: the start of the text; tokens never seen in training are read as <unk> (and kept as written
                in the returned texts).
            num: how many texts.
            temperature: each token is drawn from softmax(log p / temperature); 0 means greedy (the most likely).
            top_k, top_p: draw only from the k most likely tokens / the nucleus of probability p.
            max_length: tokens to write after the prompt.
            seed: seed of the random draws (same seed, same texts); None draws from torch's global generator.
            stop_at_end: end a text early where the model writes </s> (the end of an entry); otherwise </s> is
                never chosen and every text gets max_length tokens.
        """
        prompt_tokens = self.tokenizer.tokenize(prompt)
        ids = self.vocab.encode(prompt_tokens)
        if UNK_ID in ids:
            logger.warning("the prompt has %d tokens never seen in training; the model reads them as <unk>",
                           ids.count(UNK_ID))
        src = torch.tensor([[BOS_ID, *ids]], device=self.device)  # (1, P)
        options = _options(temperature, top_k, top_p, max_length, num, seed)
        outputs = self._decode(src, options, stop_at_end)  # (num, T)
        return [self.tokenizer.detokenize(prompt_tokens + self.vocab.decode(row)) for row in outputs.tolist()]

    def _decode(self, src: Tensor, options: DecodingOptions, stop_at_end: bool) -> Tensor:
        processors = build_processors(options)
        if not stop_at_end:
            processors.append(partial(ban_tokens, token_ids=(EOS_ID,)))
        lengths = torch.tensor([src.size(1)], device=self.device)
        self.model.eval()
        if options.strategy == "greedy":
            return greedy(self.model, src, lengths, options.max_length, processors).tokens
        seeded = None if options.seed is None else torch.Generator(self.device).manual_seed(options.seed)
        return sample(self.model, src, lengths, options.max_length, processors, options.per_input, seeded).tokens

    def evaluate(self, entries: Sequence[str]) -> dict[str, float]:
        """Held-out cross-entropy (nats per token), perplexity and bits per character of entries.

        The text is read as in training, `<s> entry </s>` after each other, cut into at most data.batch_size
        contiguous parts that are read window by window with the state carried over, so each token is predicted
        from all the text before it in its part. Predicting `<s>` (it always follows `</s>`) is not counted;
        `</s>` is, as the newline or delimiter that ends an entry, so that for character tokens bpc equals
        cross_entropy / ln 2.
        """
        if not entries:
            raise DataError("no text to evaluate")
        token_lists = [self.tokenizer.tokenize(entry) for entry in entries]
        stream = encode_stream(token_lists, self.vocab)
        self.model.eval()
        nll, tokens = stream_nll(self.model, stream, self.config.data.batch_size, self.config.data.window)
        characters = count_characters(entries)
        return {"cross_entropy": nll / tokens, "perplexity": metrics.perplexity(nll, tokens),
                "bpc": nll / math.log(2) / characters, "tokens": tokens, "characters": characters}


def _options(temperature: float, top_k: int | None, top_p: float | None, max_length: int, num: int,
             seed: int | None) -> DecodingOptions:
    """Greedy at temperature 0, else sampling; DecodingOptions rejects knobs that do not apply and bad values."""
    if max_length < 1:
        raise ConfigError(f"max_length must be at least 1, not {max_length}")
    if temperature == 0:  # greedy: one text, so num, seed, top_k and top_p do not apply
        return DecodingOptions("greedy", max_length=max_length, top_k=top_k, top_p=top_p, seed=seed,
                               num_samples=None if num == 1 else num)
    return DecodingOptions("sample", max_length=max_length, temperature=temperature, top_k=top_k, top_p=top_p,
                           num_samples=num, seed=seed)


def stream_nll(model: LanguageModel, stream: Sequence[int], parts: int, window: int) -> tuple[float, int]:
    """Summed negative log-likelihood (nats) of the stream's tokens after the first, and how many were counted.

    The stream is cut into at most `parts` contiguous rows (B, L), read `window` tokens at a time with the state
    carried over; targets `<s>` are not counted.
    """
    parts = max(1, min(parts, (len(stream) - 1) // window))
    size = math.ceil((len(stream) - 1) / parts)
    ids = pad([stream[start:start + size + 1] for start in range(0, len(stream) - 1, size)])  # (B, L + 1)
    ids = ids.to(next(model.parameters()).device)
    inputs, targets = ids[:, :-1], ids[:, 1:].masked_fill(ids[:, 1:] == BOS_ID, PAD_ID)  # (B, L)
    total, count, hidden, generator = 0.0, 0, None, model.generator
    with torch.no_grad():
        for start in range(0, inputs.size(1), window):
            features, hidden = model.read(inputs[:, start:start + window], hidden)  # (B, W, H)
            chunk = targets[:, start:start + window]
            mask = chunk != PAD_ID
            total += float(projected_cross_entropy(features[mask], generator.weight, generator.bias, chunk[mask]))
            count += int(mask.sum())
    return total, count


def load_generator(path: str | Path, device: str = "auto") -> TextGenerator:
    """Load a trained language model from its run directory (best checkpoint) or a checkpoint file."""
    tensors, metadata = checkpoint.load_checkpoint(checkpoint.resolve_checkpoint(path))
    return generator_from_checkpoint(tensors, metadata, path, device)


def generator_from_checkpoint(tensors: dict[str, Tensor], metadata: dict[str, Any], path: str | Path,
                              device: str = "auto") -> TextGenerator:
    """Rebuild a TextGenerator from a loaded checkpoint (its metadata must say task lm)."""
    if metadata.get("task") != "lm":
        raise CheckpointError(f"{path}: not a language model (a translation model: use seq2seq translate)")
    config = config_from_dict(metadata["config"], str(path))
    vocab = Vocab.from_dict(metadata["vocab"])
    model = LanguageModel(config.model, len(vocab))
    checkpoint.load_model_weights(model, tensors, path)
    target = resolve_device(device)
    return TextGenerator(model.to(target).eval(), config, tokenizer_from_dict(metadata["tokenizer"]), vocab, target)


def train_language_model(config: Config, train_entries: Sequence[str], dev_entries: Sequence[str] = (),
                         out_dir: str | Path = "runs/lm", resume: bool = False) -> TextGenerator:
    """Build a tokenizer, vocabulary and LanguageModel from the training text, fit it, and return the best model.

    The training text is one stream of `<s> entry </s>` cut into windows of data.window tokens; without dev
    entries, data.dev_size of those windows (chosen by train.seed) are held out. The tokenizer and vocabulary
    (data.tgt settings) are built from all the training text, held-out windows included. With resume, the run
    in out_dir continues (config may differ from its config only in train.*).
    """
    started = time.monotonic()
    config = replace(config, task="lm")
    validate(config)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    out = Path(out_dir)
    saved = resume_point(out, config) if resume else None
    if not train_entries:
        raise DataError("no training text")
    tokenizer = tokenizer_from_dict(saved[1]["tokenizer"]) if saved else build_tokenizer(config.data.tgt,
                                                                                          train_entries)
    token_lists = [tokenizer.tokenize(entry) for entry in train_entries]
    vocab = Vocab.from_dict(saved[1]["vocab"]) if saved else Vocab.build(token_lists, config.data.tgt.min_freq,
                                                                          config.data.tgt.max_size)
    examples = windows(encode_stream(token_lists, vocab), config.data.window)
    dev_examples = windows(encode_stream([tokenizer.tokenize(e) for e in dev_entries], vocab), config.data.window)
    if not dev_entries and config.data.dev_size:
        examples, dev_examples = split_dev(examples, config.data.dev_size, config.train.seed)
    logger.info("text: %d entries, %d training windows of %d tokens, vocabulary of %d", len(train_entries),
                len(examples), config.data.window, len(vocab))
    torch.manual_seed(config.train.seed)
    model = LanguageModel(config.model, len(vocab))
    metadata = {"task": "lm", "config": config.to_dict(), "tokenizer": tokenizer.to_dict(), "vocab": vocab.to_dict()}
    run_training(Trainer(model, config, examples, dev_examples, out, metadata), saved, started)
    return load_generator(out, config.train.device)
