"""Attention heatmaps (one PNG per sentence, source tokens across, output tokens down) and a classifier's confusion
matrix (needs matplotlib)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from torch import Tensor

from seq2seq.errors import Seq2SeqError


def figure_class() -> Any:
    """matplotlib's Figure (no pyplot: no global state, no display), or a one-line error naming the extra."""
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise Seq2SeqError("plotting attention needs matplotlib: pip install 'seq2seq[plot]'") from error
    return Figure


def save_attention(attention: Tensor | NDArray[Any], src_tokens: Sequence[str], tokens: Sequence[str],
                   path: str | Path) -> None:
    """Write a heatmap of attention weights (T, S) (a Tensor, or an export's numpy array): column j is
    src_tokens[j], row i is tokens[i]."""
    rows, columns = attention.shape
    figure = figure_class()(figsize=(2 + 0.35 * columns, 1.5 + 0.35 * rows))
    axes = figure.subplots()
    values = attention.float().numpy() if isinstance(attention, Tensor) else np.asarray(attention, dtype=np.float32)
    axes.imshow(values, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    axes.set_xticks(range(columns), labels=[_plain(token) for token in src_tokens], rotation=90)
    axes.set_yticks(range(rows), labels=[_plain(token) for token in tokens])
    axes.set_xlabel("source")
    axes.set_ylabel("output")
    figure.tight_layout()
    figure.savefig(path, format="png")


def save_confusion(matrix: Sequence[Sequence[int]], labels: Sequence[str], path: str | Path) -> None:
    """Write a confusion matrix (rows: true labels, columns: predicted), each row shaded by its share of the row's
    texts (so that rare labels show as clearly as frequent ones), with the counts written in the cells."""
    size = len(labels)
    figure = figure_class()(figsize=(3 + 0.3 * size, 2.5 + 0.3 * size))
    axes = figure.subplots()
    shares = [[count / max(1, sum(row)) for count in row] for row in matrix]
    axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    for row, counts in enumerate(matrix):
        for column, count in enumerate(counts):
            if count:
                axes.text(column, row, str(count), ha="center", va="center", fontsize=6,
                          color="white" if shares[row][column] > 0.5 else "black")
    axes.set_xticks(range(size), labels=[_plain(label) for label in labels], rotation=90, fontsize=7)
    axes.set_yticks(range(size), labels=[_plain(label) for label in labels], fontsize=7)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    figure.tight_layout()
    figure.savefig(path, format="png")


def _plain(token: str) -> str:
    """Keep matplotlib from reading $...$ in a token as math."""
    return token.replace("$", r"\$")
