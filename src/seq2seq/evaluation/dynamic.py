"""Dynamic evaluation (Krause et al. 2018): a language model scores a text segment by segment and, after scoring each
segment, takes a gradient step on it, so that it adapts to the text it reads. The model given is left unchanged."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Protocol

import torch
from torch import Tensor, nn
from tqdm import tqdm

from seq2seq.data.lm_text import stream_rows, stream_targets
from seq2seq.data.vocab import PAD_ID
from seq2seq.errors import ConfigError
from seq2seq.evaluation.adaptation import Adaptation


class ReadingModel(Protocol):
    """What dynamic evaluation needs of a language model (LanguageModel has it)."""

    carries_state: bool  # read continues from the state it returned: what adapting segment after segment needs

    def read(self, tokens: Tensor, hidden: tuple[Tensor, ...] | None = None) -> tuple[Tensor, tuple[Tensor, ...]]:
        ...

    def output_loss(self, features: Tensor, targets: Tensor) -> Tensor:
        ...


class _Update:
    """The update of `Adaptation` on a model's parameters, with the trained weights to decay toward."""

    BETA, EPSILON = 0.99, 1e-8  # the running mean square of rule rms

    def __init__(self, model: nn.Module, adaptation: Adaptation) -> None:
        self.adaptation = adaptation
        self.params = [param for param in model.parameters() if param.requires_grad]
        self.trained = [param.detach().clone() for param in self.params]
        self.squares = [torch.zeros_like(param) for param in self.params]
        self.count = 0

    @torch.no_grad()
    def step(self) -> None:
        self.count += 1
        for param, trained, square in zip(self.params, self.trained, self.squares, strict=True):
            if param.grad is None:
                continue
            step = param.grad
            if self.adaptation.rule == "rms":
                square.mul_(self.BETA).addcmul_(step, step, value=1 - self.BETA)
                step = step / (square / (1 - self.BETA**self.count)).sqrt_().add_(self.EPSILON)
            param.sub_(step, alpha=self.adaptation.lr)
            param.add_(trained - param, alpha=self.adaptation.decay)
            param.grad = None


def adapt(model: nn.Module, stream: Sequence[int], adaptation: Adaptation) -> tuple[nn.Module, float, int]:
    """A copy of model that read the stream of token ids in order (one row), updated after each segment.

    Returns the adapted copy, the summed negative log-likelihood (nats) of the stream's tokens after the first, each
    scored before the update that learns from it, and how many were counted (targets `<s>` are not).
    """
    if not getattr(model, "carries_state", False):
        raise ConfigError(f"model.arch={model.config.arch}: this language model reads each window on its own, and "
                          "dynamic evaluation reads the text segment after segment (use an RNN language model)")
    adapted = copy.deepcopy(model).eval()  # no dropout: the updates follow the scores
    update = _Update(adapted, adaptation)
    device = next(adapted.parameters()).device
    rows = stream_rows(stream, 1, adaptation.segment)  # (1, L + 1)
    inputs, targets = (torch.from_numpy(ids).to(device) for ids in (rows[:, :-1], stream_targets(rows)))  # (1, L)
    total, count, hidden = 0.0, 0, None
    reader: ReadingModel = adapted  # type: ignore[assignment]
    progress = tqdm(total=inputs.size(1), desc="adapting", unit="token", unit_scale=True, dynamic_ncols=True,
                    disable=None)  # a bar on a terminal only
    for start in range(0, inputs.size(1), adaptation.segment):
        progress.update(min(adaptation.segment, inputs.size(1) - start))
        features, hidden = reader.read(inputs[:, start:start + adaptation.segment], hidden)  # (1, W, H)
        chunk = targets[:, start:start + adaptation.segment]
        mask = chunk != PAD_ID
        scored = int(mask.sum())
        hidden = tuple(part.detach() for part in hidden)  # the next segment starts from here, without its graph
        if scored == 0:
            continue
        loss = reader.output_loss(features[mask], chunk[mask])
        total, count = total + loss.item(), count + scored
        (loss / scored).backward()
        update.step()
    progress.close()
    return adapted, total, count
