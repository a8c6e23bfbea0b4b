"""TensorBoard (train.tensorboard): a run's scalars, the texts a model writes at each evaluation and its attention
as images, in <run dir>/tensorboard/; also the `Sample`s that the trainer draws and logs at each evaluation."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from seq2seq.config import Config
from seq2seq.errors import ConfigError
from seq2seq.utils import plot

FOLDER = "tensorboard"
NOT_SCALARS = {"event", "step", "epoch", "elapsed", "time"}
"""Fields of a metrics.jsonl record that are no scalar to plot (the step is the x axis)."""
GROUPS = {"train": "train", "eval": "dev"}


@dataclass
class Sample:
    """A text the model wrote at an evaluation: a dev output with its source and reference, or a language model's
    sample; attention (T, S) has a row per token of tokens and a column per token of src_tokens."""

    title: str
    text: str
    source: str | None = None
    reference: str | None = None
    attention: Tensor | None = None
    src_tokens: Sequence[str] = ()
    tokens: Sequence[str] = ()

    def fields(self) -> list[tuple[str, str]]:
        named = [("source", self.source), ("reference", self.reference), ("output", self.text)]
        return [(name, value) for name, value in named if value is not None]

    def line(self) -> str:
        """One line for the log: each field quoted as JSON (a text's newlines stay on the line)."""
        return f"{self.title}: " + "  ".join(f"{name} {json.dumps(value, ensure_ascii=False)}"
                                             for name, value in self.fields())

    def markdown(self) -> str:
        """TensorBoard's text: the fields as a code block (shown verbatim, not read as markdown)."""
        lines = [f"{name}: {value}" for name, value in self.fields()]
        return "\n".join("    " + line for text in lines for line in text.splitlines() or [""])


Sampler = Callable[[nn.Module], list[Sample]]
"""The model (in eval mode) -> the samples to show at an evaluation; never draws from torch's global generator."""


def check_available(config: Config, draws_attention: bool = False) -> None:
    """With train.tensorboard, fail before any work when the tensorboard package (or, when the samples will show
    their attention, matplotlib) is missing."""
    if not config.train.tensorboard:
        return
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise ConfigError("train.tensorboard needs the tensorboard package: pip install 'seq2seq[tensorboard]'") \
            from None
    if draws_attention:
        plot.figure_class()


class Board:
    """The event files of one run, written while `opened`; a board without a folder (TensorBoard off, or a rank
    other than 0) writes nothing."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._writer: Any = None

    @contextmanager
    def opened(self, step: int) -> Iterator[None]:
        """Write for the block; a run resumed from a checkpoint of step drops the events an earlier run wrote after."""
        if self.folder is None:
            yield
            return
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(str(self.folder), purge_step=step + 1 if step else None, flush_secs=10)
        try:
            yield
        finally:
            self._writer.close()
            self._writer = None

    def record(self, record: dict[str, Any]) -> None:
        """The numbers of a metrics.jsonl record as scalars: train/loss, dev/bleu, ..."""
        if self._writer is None:
            return
        group = GROUPS.get(record["event"], record["event"])
        for name, value in record.items():
            if name not in NOT_SCALARS and isinstance(value, int | float) and not isinstance(value, bool):
                self._writer.add_scalar(f"{group}/{name}", value, record["step"])

    def samples(self, samples: Sequence[Sample], step: int) -> None:
        """Each sample as text (samples/TITLE), and its attention as an image (attention/TITLE)."""
        if self._writer is None:
            return
        for sample in samples:
            tag = sample.title.replace(" ", "_")
            self._writer.add_text(f"samples/{tag}", sample.markdown(), step)
            if sample.attention is not None:
                self._writer.add_image(f"attention/{tag}", _heatmap(sample), step, dataformats="HWC")
        self._writer.flush()


def _heatmap(sample: Sample) -> Any:
    """plot.py's attention figure as an (H, W, 4) array."""
    from matplotlib.image import imread

    assert sample.attention is not None
    png = io.BytesIO()
    plot.save_attention(sample.attention, sample.src_tokens, sample.tokens, png)  # type: ignore[arg-type]
    png.seek(0)
    return imread(png, format="png")
