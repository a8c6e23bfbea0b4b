"""A language model's scores on text: cross-entropy, perplexity and bits per character of a summed NLL."""

from __future__ import annotations

import math
from collections.abc import Sequence

from seq2seq.data.lm_text import count_characters


def text_scores(nll: float, tokens: int, entries: Sequence[str]) -> dict[str, float]:
    """Cross-entropy (nats per token), perplexity and bits per character of a summed NLL over the entries."""
    from seq2seq.evaluation import metrics  # sacrebleu and friends: start-up that generating without scoring skips
    characters = count_characters(entries)
    return {"cross_entropy": nll / tokens, "perplexity": metrics.perplexity(nll, tokens),
            "bpc": nll / math.log(2) / characters, "tokens": tokens, "characters": characters}
