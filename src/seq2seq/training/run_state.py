"""What the last checkpoint holds besides the model, for an exact resume: progress, optimizer and RNG states."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from seq2seq.errors import CheckpointError
from seq2seq.training import checkpoint, distributed
from seq2seq.training.optim import FusedAdam

logger = logging.getLogger(__name__)


@dataclass
class TrainState:
    """Where training stands; saved in the last checkpoint so that --resume continues exactly."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    elapsed: float = 0.0
    tokens: int = 0
    best: float | None = None
    evals_without_improvement: int = 0
    finished: bool = False
    ranks: int = 1  # data-parallel processes: batch_in_epoch counts steps of this many ranks' batches


def gather_rng(ranks: distributed.Ranks) -> dict[str, Tensor]:
    """The random generator states to save (`checkpoint.rng_tensors`): with several ranks every rank's, gathered, so
    all ranks must call this together."""
    own = checkpoint.rng_tensors()
    return distributed.rng_of_ranks(own) if ranks.size > 1 else own


def saved(optimizer: FusedAdam, state: TrainState, rng: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The tensors (optimizer.*, then rng.*) and the `training` JSON entry (state, optimizer) of a last checkpoint."""
    tensors, optimizer_json = checkpoint.optimizer_tensors(optimizer.state_dict())
    return {**tensors, **rng}, {"state": asdict(state), "optimizer": optimizer_json}


def restore(optimizer: FusedAdam, tensors: dict[str, Tensor], training: dict[str, Any], ranks: distributed.Ranks,
            path: Path) -> TrainState:
    """Load into optimizer and this rank's random generators what `saved` wrote (path only names the checkpoint in
    errors); returns the saved state, counted for this run's ranks and not finished."""
    try:
        optimizer.load_state_dict(checkpoint.optimizer_state(tensors, training["optimizer"]))
    except (KeyError, IndexError, ValueError) as error:
        raise CheckpointError(f"{path}: the optimizer state does not fit the model ({error})") from None
    state = TrainState(**training["state"])
    if state.ranks != ranks.size:
        logger.warning("resuming a run of %d ranks with %d: the effective batch changes, and the rest of epoch %d is "
                       "drawn anew for it", state.ranks, ranks.size, state.epoch)
    state.finished, state.ranks = False, ranks.size
    checkpoint.restore_rng(distributed.rng_of_rank(tensors, ranks.rank))
    return state
