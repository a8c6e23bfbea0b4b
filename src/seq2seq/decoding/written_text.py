"""What a language model writes, piece by piece as its steps choose tokens, without torch: shared by `tasks.lm`
(PyTorch) and the ONNX runtime."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from seq2seq.data.tokenizers import Tokenizer
from seq2seq.data.vocab import EOS_ID, PAD_ID, Vocab
from seq2seq.decoding.options import DecodingOptions
from seq2seq.errors import ConfigError


def check_streamable(options: DecodingOptions) -> None:
    """Streaming writes one text: more samples is a ConfigError."""
    if options.per_input != 1:
        raise ConfigError(f"streaming writes one text, not num_samples={options.num_samples}")


def written_pieces(steps: Iterator[Any], prompt_tokens: list[str], tokenizer: Tokenizer, vocab: Vocab
                   ) -> Iterator[str]:
    """What a text grows by after the prompt as each step chooses its next token (row 0 of what steps yields),
    until `</s>` or `<pad>`; the pieces, joined, are the detokenized text less the detokenized prompt."""
    written, produced = tokenizer.detokenize(prompt_tokens), []
    for tokens in steps:
        if int(tokens[0]) in (EOS_ID, PAD_ID):
            return
        produced.append(int(tokens[0]))
        text = tokenizer.detokenize(prompt_tokens + vocab.decode(produced))
        if text.startswith(written) and len(text) > len(written):
            yield text[len(written):]
            written = text
