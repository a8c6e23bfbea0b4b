"""Data-parallel training on torch.distributed: the ranks torchrun starts, what they agree on, and the local launch."""

from __future__ import annotations

import datetime
import hashlib
import logging
import os
import typing
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from seq2seq.data.pairs import Batch
from seq2seq.errors import Seq2SeqError
from seq2seq.training.objective import LossFunction

logger = logging.getLogger(__name__)

# How long a rank waits at a collective for the others: long enough for rank 0's dev evaluation. A rank that dies is
# noticed sooner: torchrun stops the others at once, and gloo reports a closed connection.
TIMEOUT = datetime.timedelta(minutes=30)


@dataclass(frozen=True)
class Ranks:
    """This process among the training processes: its rank (rank 0 writes), how many there are, its GPU."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def current() -> Ranks:
    """The ranks as torchrun describes them in the environment (RANK, WORLD_SIZE, LOCAL_RANK); one process: Ranks()."""
    return Ranks(int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")),
                 int(os.environ.get("LOCAL_RANK", "0")))


def launched() -> bool:
    """Whether torchrun (or a launcher like it) started this process as one of several ranks."""
    return current().size > 1


def start(device: torch.device) -> Ranks:
    """Join the process group of the ranks (gloo on CPU, NCCL on CUDA, each rank on GPU LOCAL_RANK); only rank 0
    logs below warnings. Nothing to do for one process."""
    ranks = current()
    if ranks.size == 1 or dist.is_initialized():
        return ranks
    if device.type == "cuda":
        torch.cuda.set_device(ranks.local_rank)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
    if not ranks.main:
        logging.getLogger("seq2seq").setLevel(logging.WARNING)
    logger.info("data-parallel training: %d ranks, backend %s", ranks.size, dist.get_backend())
    return ranks


def stop() -> None:
    """Wait for every rank (rank 0 may still be writing), then leave the process group."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _tensor(values: Sequence[float]) -> Tensor:
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    return torch.tensor(values, dtype=torch.float64, device=device)


def sum_over_ranks(values: Sequence[float]) -> list[float]:
    """Each value summed over the ranks (every rank gets the same sums)."""
    tensor = _tensor(values)
    dist.all_reduce(tensor)
    return tensor.tolist()


def from_main(values: Sequence[float]) -> list[float]:
    """Rank 0's values, on every rank."""
    tensor = _tensor(values)
    dist.broadcast(tensor, 0)
    return tensor.tolist()


def check_same(text: str, what: str) -> None:
    """Raise Seq2SeqError unless every rank has the same text (e.g. its vocabularies, prepared on each rank)."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    digests: list[str] = [""] * dist.get_world_size()
    dist.all_gather_object(digests, digest)
    differing = [rank for rank, other in enumerate(digests) if other != digests[0]]
    if differing:
        raise Seq2SeqError(f"ranks {differing} prepared other {what} than rank 0; the ranks must read the same data")


def rng_of_ranks(own: dict[str, Tensor]) -> dict[str, Tensor]:
    """Every rank's random generator states (`checkpoint.rng_tensors`), gathered: rank 0's under their own names
    (rng.cpu, ...), rank r's as rng.rank{r}.cpu, ... (see `rng_of_rank`)."""
    states: list[dict[str, Tensor]] = [{} for _ in range(dist.get_world_size())]
    dist.all_gather_object(states, own)
    gathered = dict(states[0])
    for rank, state in enumerate(states[1:], start=1):
        gathered.update({name.replace("rng.", f"rng.rank{rank}.", 1): tensor for name, tensor in state.items()})
    return gathered


def rng_of_rank(tensors: dict[str, Tensor], rank: int) -> dict[str, Tensor]:
    """The random generator states saved for rank (by `rng_of_ranks`); rank 0's when none were (other rank count)."""
    prefix = f"rng.rank{rank}."
    own = {"rng." + name[len(prefix):]: tensor for name, tensor in tensors.items() if name.startswith(prefix)}
    return own or {name: tensor for name, tensor in tensors.items() if name.startswith("rng.") and ".rank" not in name}


class Replica:
    """The training loss of one process's model, and how a step's gradients come together (`DataParallel` for ranks).

    A step: each batch's loss and backward pass inside `accumulating(last)`; before the last backward pass,
    `totals` of the step and `gradient_factor`, by which the gradients are multiplied; then `finish`.
    """

    def __init__(self, model: nn.Module, loss: LossFunction) -> None:
        self.model, self._loss = model, loss
        self.gradient_factor = 1.0

    def loss(self, batch: Batch) -> tuple[Tensor, int]:
        """The batch's summed loss and its number of target tokens."""
        return self._loss(self.model, batch)

    def accumulating(self, last: bool) -> AbstractContextManager[Any]:
        """The context of one batch's forward and backward passes."""
        return nullcontext()

    def totals(self, loss: float, tokens: int) -> tuple[float, int]:
        """The step's summed loss and number of target tokens, over all ranks."""
        return loss, tokens

    def finish(self) -> None:
        """Multiply the gradients by gradient_factor (when not 1)."""
        if self.gradient_factor != 1.0:
            torch._foreach_mul_([p.grad for p in self.model.parameters() if p.grad is not None], self.gradient_factor)


class _Objective(nn.Module):
    """A loss function as a module, so that DistributedDataParallel sees the forward pass it has to prepare."""

    def __init__(self, model: nn.Module, loss: LossFunction) -> None:
        super().__init__()
        self.model, self.loss = model, loss

    def forward(self, batch: Batch) -> tuple[Tensor, int]:
        return self.loss(self.model, batch)


class DataParallel(Replica):
    """The training loss replicated on every rank by DistributedDataParallel.

    Batches before the last of a step keep their gradients local (`no_sync`). In the last backward pass each rank
    multiplies its gradients by its gradient_factor before they are summed over the ranks (a communication hook in
    place of DDP's mean), so that a step divides by the target tokens of all ranks together, as one process would.
    """

    def __init__(self, model: nn.Module, loss: LossFunction, device: torch.device) -> None:
        super().__init__(model, loss)
        device_ids = [device] if device.type == "cuda" else None
        self.replica = DistributedDataParallel(_Objective(model, loss), device_ids=device_ids)
        self.replica.register_comm_hook(self, _scaled_sum)

    def loss(self, batch: Batch) -> tuple[Tensor, int]:
        return self.replica(batch)

    def accumulating(self, last: bool) -> AbstractContextManager[Any]:
        return nullcontext() if last else self.replica.no_sync()

    def totals(self, loss: float, tokens: int) -> tuple[float, int]:
        summed = sum_over_ranks([loss, tokens])
        return summed[0], int(summed[1])

    def finish(self) -> None:
        """Nothing left: the hook has multiplied the gradients."""


def _scaled_sum(state: DataParallel, bucket: dist.GradBucket) -> torch.futures.Future[Tensor]:
    """DDP communication hook: this rank's gradients times its factor, summed over the ranks."""
    buffer = bucket.buffer().mul_(state.gradient_factor)
    return dist.all_reduce(buffer, async_op=True).get_future().then(lambda done: done.value()[0])  # type: ignore[union-attr]


# DDP checks a hook's annotations as objects, not as the strings that `from __future__ import annotations` leaves
_scaled_sum.__annotations__ = typing.get_type_hints(_scaled_sum)


def process_count(value: str, device: torch.device) -> int:
    """--nproc: a number of ranks, or auto: one per GPU on CUDA, one per CPU core on CPU (measured faster for the
    small models of configs/: BENCHMARKS.md, Scale)."""
    if value == "auto":
        if device.type == "cuda":
            return max(1, torch.cuda.device_count())
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if not value.isdigit() or int(value) < 1:
        raise Seq2SeqError(f"--nproc must be a number of processes (at least 1) or auto, not {value!r}")
    return int(value)


def launch(processes: int, argv: Sequence[str]) -> None:
    """Run `seq2seq ARGV` as local ranks through torch.distributed.run (what torchrun runs), rendezvous on 127.0.0.1.

    A rank that fails stops the others; raises Seq2SeqError naming it.
    """
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    options = torchrun.parse_args(["--nnodes=1", f"--nproc-per-node={processes}", "--rdzv-backend=c10d",
                                   "--rdzv-endpoint=127.0.0.1:0", f"--rdzv-id={uuid.uuid4()}", "--module",
                                   "seq2seq.cli"])
    options.training_script_args = list(argv)  # not parsed: torchrun's flags would take ours (--nproc)
    try:
        torchrun.run(options)
    except ChildFailedError as error:
        rank, failure = error.get_first_failure()
        how = (f"was killed by {failure.signal_name()}" if failure.exitcode < 0
               else f"exited with code {failure.exitcode}")
        raise Seq2SeqError(f"rank {rank} (pid {failure.pid}) {how}, and the other ranks were stopped; "
                           "--resume continues from the last checkpoint") from None
