"""Chat: a Chatbot that replies to messages with a trained model, keeping the conversation as context.

The model's source text is built from the message and the conversation so far exactly as the training pairs were
(`seq2seq.data.conversations.with_context`).
"""

from __future__ import annotations

import logging
from collections import deque

from seq2seq.data.conversations import with_context
from seq2seq.decoding.options import DecodingOptions
from seq2seq.errors import ConfigError, DataError
from seq2seq.tasks.translation import Translator

logger = logging.getLogger(__name__)


class Chatbot:
    """Replies to messages with a trained model, giving it the last `history` turns as context (`with_context`)."""

    def __init__(self, translator: Translator, history: int = 0, options: DecodingOptions | None = None) -> None:
        if history < 0:
            raise ConfigError(f"history must be >= 0 turns, not {history}")
        self.translator = translator
        self.history = history
        self.options = options or DecodingOptions()
        self.turns: deque[str] = deque(maxlen=history)

    def reply(self, message: str) -> str:
        """The model's reply (its first output for n-best or several samples); both join the history."""
        message = " ".join(message.split())
        if not message:
            raise DataError("an empty message has no reply")
        source = self._truncated(with_context(message, list(self.turns), self.history))
        reply = self.translator.translate_detailed([source], self.options)[0][0].text
        self.turns.extend((message, reply))
        return reply

    def reset(self) -> None:
        """Forget the history: the next message starts a new conversation."""
        self.turns.clear()

    def _truncated(self, source: str) -> str:
        """Keep the last data.max_src_length tokens (training saw no longer source): the latest words matter most."""
        limit = self.translator.config.data.max_src_length
        tokenizer = self.translator.tokenizers[0]
        tokens = tokenizer.tokenize(source)
        if not limit or len(tokens) <= limit:
            return source
        logger.warning("input of %d tokens cut to its last %d (data.max_src_length)", len(tokens), limit)
        return tokenizer.detokenize(tokens[-limit:])
