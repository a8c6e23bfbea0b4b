"""The Trainer: the loop of steps, evaluation, early stopping and checkpoints over a model and its loss functions."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from seq2seq.config import Config, save_config, validate
from seq2seq.data.examples import Example
from seq2seq.data.metadata import ModelMetadata
from seq2seq.data.pairs import Batch, batch_order, collate, split_batch
from seq2seq.errors import ConfigError, DataError
from seq2seq.training import board, checkpoint, distributed, run_state, rundir, schedules
from seq2seq.training.divergence import NonFiniteSteps, check_finite
from seq2seq.training.gradients import EmbeddingRowGradients, clip_gradients
from seq2seq.training.layerwise import Layers
from seq2seq.training.objective import LossFunction, Scorer
from seq2seq.training.optim import FusedAdam
from seq2seq.training.run_state import TrainState
from seq2seq.training.throughput import INTERVAL, IntervalRate
from seq2seq.utils.collector import frozen_gc
from seq2seq.utils.device import autocast_dtype, mixed_precision, precision_reason, resolve_device

logger = logging.getLogger(__name__)

HIGHER_IS_BETTER = {"bleu", "chrf", "exact_match", "rouge1", "rouge2", "rougeL", "accuracy", "macro_f1"}


class Trainer:
    """Fits a model on examples, evaluating on dev examples, writing checkpoints and a metrics log to out_dir."""

    def __init__(self, model: nn.Module, losses: tuple[LossFunction, LossFunction], config: Config,
                 train_examples: Sequence[Example], dev_examples: Sequence[Example], out_dir: str | Path,
                 metadata: dict[str, Any], scorer: Scorer | None = None, sampler: board.Sampler | None = None,
                 layers: Sequence[Sequence[Tensor]] | None = None) -> None:
        """losses: the loss of a training step and the loss on dev (e.g. `objectives.sequence_losses`); sampler: texts
        to log (and show in TensorBoard) at each evaluation; layers: the model's parameters as layers, bottom first,
        for discriminative learning rates and gradual unfreezing (train.layer_lr_decay, train.unfreeze_every)."""
        self.config = config
        self.train_loss, self.dev_loss = losses
        self.device = resolve_device(config.train.device)
        self.model = model.to(self.device)
        self.train_examples, self.dev_examples = train_examples, dev_examples
        self.out_dir = Path(out_dir)
        self.metadata = metadata
        self.scorer, self.sampler = scorer, sampler
        self.amp_dtype = autocast_dtype(config.train.precision, self.device)
        self.scaler = torch.amp.GradScaler(enabled=self.amp_dtype == torch.float16)
        self.layers = Layers(layers, config.train.layer_lr_decay, config.train.unfreeze_every) if layers else None
        groups = self.layers.param_groups(config.train.lr) if self.layers else model.parameters()
        self.optimizer = FusedAdam(groups, lr=config.train.lr)
        self.schedule = schedules.schedule_of(config, self.optimizer, getattr(model, "warmup_steps", 0))
        self.ranks = distributed.current()
        if self.ranks.size > 1 and config.train.unfreeze_every:
            raise ConfigError("train.unfreeze_every needs a single process (DDP fixes which parameters train)")
        self.board = board.Board(self.out_dir / board.FOLDER if config.train.tensorboard and self.ranks.main else None)
        self._replica = self._replicate(metadata)
        self._gradients = EmbeddingRowGradients(self.model)
        self.state = TrainState(ranks=self.ranks.size)
        self._order: list[np.ndarray] = []
        self._order_epoch = -1
        self._last_eval_step = -1
        self._non_finite = NonFiniteSteps()

    def _replicate(self, metadata: dict[str, Any]) -> distributed.Replica:
        """The model's training loss: on one process, or replicated on every rank (which must have the same data)."""
        if self.ranks.size == 1:
            return distributed.Replica(self.model, self.train_loss)
        distributed.check_same(json.dumps(metadata, sort_keys=True, default=str), "tokenizers or vocabularies")
        if self.ranks.rank:  # its own dropout masks (rank 0 keeps the stream of a single process)
            torch.manual_seed(self.config.train.seed + 7919 * self.ranks.rank)
        return distributed.DataParallel(self.model, self.train_loss, self.device)

    # ---- the loop -------------------------------------------------------------------------------------------
    def fit(self, deadline: float | None = None) -> TrainState:
        """Train until epochs, steps, time budget or early stopping say stop; returns the final state."""
        train = self.config.train
        clock = _Clock(time.monotonic(), self.state.elapsed, deadline, train.max_time)
        self._open_run_directory()
        rate = IntervalRate()
        rows = self._gradients if self.ranks.size == 1 else contextlib.nullcontext()  # ranks reduce dense gradients
        with self._progress_bar() as progress, rows:
            while not self._stop_now(clock.deadline, clock.elapsed()):
                if self.layers:
                    self.layers.unfreeze(self.state.step)
                self.schedule.before_step(schedules.Progress(self.state.step, self.state.elapsed,
                                                             train.max_steps or None, clock.budget()))
                started = time.monotonic()
                loss, tokens = self.train_step(self._next_batches())
                rate.add(tokens, time.monotonic() - started)
                self.state.tokens += tokens
                self.state.elapsed = clock.elapsed()
                progress.update()
                if self.state.step % 50 == 0 or self.state.step == 1:
                    self._log_train(loss / tokens, rate.take(), progress)
                if self._evaluation_due():
                    self.evaluate_and_save()
                elif self.state.step % train.checkpoint_every == 0:
                    self.save_last()
        self.state.finished = True
        if self._last_eval_step != self.state.step:
            self.evaluate_and_save()
        else:
            self.save_last()
        return self.state

    def _open_run_directory(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.ranks.main:
            checkpoint.remove_temporaries(self.out_dir)

    def _progress_bar(self) -> tqdm:
        return tqdm(desc="train", unit="step", initial=self.state.step, dynamic_ncols=True,
                    disable=None if self.ranks.main else True, total=self.config.train.max_steps or None)

    def _should_stop(self, deadline: float | None) -> bool:
        train, state = self.config.train, self.state
        return ((train.max_steps > 0 and state.step >= train.max_steps)
                or (train.epochs > 0 and state.epoch >= train.epochs)
                or (deadline is not None and time.monotonic() >= deadline)
                or (train.early_stopping > 0 and state.evals_without_improvement >= train.early_stopping))

    def _stop_now(self, deadline: float | None, elapsed: float) -> bool:
        """Whether to stop before the next step. Ranks agree: one rank's reason (its clock may run ahead) stops all,
        and all take the mean of their elapsed times, which the linear schedule reads."""
        stop = self._should_stop(deadline)
        if self.ranks.size > 1:
            votes, elapsed_sum = distributed.sum_over_ranks([float(stop), elapsed])
            stop, self.state.elapsed = votes > 0, elapsed_sum / self.ranks.size
        return stop

    def _next_batches(self) -> list[Batch]:
        """This rank's batches of the next step: its share of the step's examples, cut into train.accumulate batches.

        The order is a pure function of (seed, epoch, ranks x accumulate), so resuming replays it exactly.
        """
        if self._order_epoch != self.state.epoch:
            self._order, self._order_epoch = self._epoch_order(), self.state.epoch
        if self.state.batch_in_epoch >= len(self._order):  # resumed with fewer, larger steps per epoch
            self.state.epoch, self.state.batch_in_epoch = self.state.epoch + 1, 0
            return self._next_batches()
        indices = self._order[self.state.batch_in_epoch]
        self.state.batch_in_epoch += 1
        if self.state.batch_in_epoch == len(self._order):
            self.state.epoch, self.state.batch_in_epoch = self.state.epoch + 1, 0
        share = split_batch(indices, self.ranks.size)[self.ranks.rank]
        return [collate([self.train_examples[i] for i in part.tolist()]).to(self.device)
                for part in split_batch(share, self.config.train.accumulate) if len(part)]

    def _epoch_order(self) -> list[np.ndarray]:
        """The epoch's steps: batches of ranks x accumulate x data.batch_size sentences (or data.batch_tokens), less
        those too small to give every rank an example."""
        data, parts = self.config.data, self.ranks.size * self.config.train.accumulate
        order = batch_order(self.train_examples, data.batch_size * parts, data.bucket,
                            self.config.train.seed + self.state.epoch, data.batch_tokens * parts)
        order = [indices for indices in order if len(indices) >= self.ranks.size]
        if not order:
            raise DataError(f"{len(self.train_examples)} training examples cannot feed {self.ranks.size} ranks")
        return order

    def _evaluation_due(self) -> bool:
        every = self.config.train.eval_every
        return self.state.step % every == 0 if every else self.state.batch_in_epoch == 0

    def train_step(self, batches: Sequence[Batch]) -> tuple[float, int]:
        """One update from this rank's batches: the gradient of the loss summed over every rank's batches of the step,
        divided by their number of target tokens. Returns that summed loss and number."""
        self.model.train()
        self._gradients.zero_grad()
        loss_sum, tokens = self._backward(batches)
        self.scaler.unscale_(self.optimizer)
        norm = clip_gradients(self.model.parameters(), self.config.train.clip_norm)
        if self.scaler.is_enabled() or self._non_finite.update_allowed(norm, self.state.step + 1):  # fp16: the scaler
            self.scaler.step(self.optimizer)  # skips non-finite steps itself (and lowers its scale)
        self.scaler.update()
        self.state.step += 1
        return loss_sum, tokens

    def _backward(self, batches: Sequence[Batch]) -> tuple[float, int]:
        """Backward passes of each batch's summed loss divided by the first batch's tokens; the gradients, multiplied
        by first / (all ranks' tokens), are those of the step's mean loss. Returns the step's summed loss and tokens."""
        replica, first, loss_sum, tokens = self._replica, 0, 0.0, 0
        for index, batch in enumerate(batches):
            last = index == len(batches) - 1
            with replica.accumulating(last):
                with self._autocast():
                    loss, count = replica.loss(batch)
                first = first or count
                loss_sum, tokens = loss_sum + float(loss.detach()), tokens + count
                if last:
                    loss_sum, tokens = replica.totals(loss_sum, tokens)
                    replica.gradient_factor = first / tokens
                self.scaler.scale(loss / first).backward()
        replica.finish()
        return loss_sum, tokens

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        return mixed_precision(self.config.train.precision, self.device)

    # ---- evaluation and checkpoints -------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Dev cross-entropy and perplexity, plus the scorer's metrics (e.g. BLEU) when one is given."""
        self.model.eval()
        total, tokens = 0.0, 0
        limit = self.config.train.eval_max_batches or None
        data = self.config.data
        order = batch_order(self.dev_examples, data.batch_size, True, 0, data.batch_tokens)[:limit]
        for indices in order:
            with self._autocast():
                loss, count = self.dev_loss(self.model, collate([self.dev_examples[i] for i in indices.tolist()])
                                            .to(self.device))
            total, tokens = total + float(loss), tokens + count
        metrics = {"loss": total / tokens, "perplexity": math.exp(min(total / tokens, 50.0))}
        if self.scorer is not None:
            metrics.update(self.scorer(self.model))
        return metrics

    def evaluate_and_save(self) -> None:
        """Evaluate on dev (when there is dev data), update best / schedule / patience, write checkpoints. With
        several ranks, rank 0 does and the others take its learning rate and patience."""
        self._last_eval_step = self.state.step
        if self.ranks.main:
            self._evaluate_and_log()
        if self.ranks.size > 1:
            self._follow_main()
        self.save_last()

    def _evaluate_and_log(self) -> None:
        record: dict[str, Any] = {"event": "eval", "step": self.state.step, "epoch": self.state.epoch,
                                  "elapsed": round(self.state.elapsed, 1)}
        if self.dev_examples:
            with self._autocast():
                metrics = self.evaluate()
            record.update({k: round(v, 4) for k, v in metrics.items()})
            self._track_best(metrics[self.config.train.metric])
        else:
            self.save("best.safetensors", with_training_state=False)
        record["lr"] = self.optimizer.param_groups[-1]["lr"]
        self._write_log(record)
        logger.info("step %d: %s", self.state.step, json.dumps(record))
        self._show_samples()

    @torch.no_grad()
    def _show_samples(self) -> None:
        """Log the sampler's texts, and write them to TensorBoard."""
        if self.sampler is None:
            return
        samples = self.sampler(self.model)
        for sample in samples:
            logger.info("step %d, %s", self.state.step, sample.line())
        self.board.samples(samples, self.state.step)

    def _follow_main(self) -> None:
        """Take rank 0's best value, evaluations without improvement and learning rates."""
        groups = self.optimizer.param_groups
        best = math.nan if self.state.best is None else self.state.best
        patience, best, *rates = distributed.from_main([self.state.evals_without_improvement, best,
                                                        *(group["lr"] for group in groups)])
        self.state.evals_without_improvement, self.state.best = int(patience), None if math.isnan(best) else best
        for group, lr in zip(groups, rates, strict=True):
            group["lr"] = lr

    def _track_best(self, value: float) -> None:
        higher = self.config.train.metric in HIGHER_IS_BETTER
        best = self.state.best
        if best is None or (value > best if higher else value < best):
            self.state.best, self.state.evals_without_improvement = value, 0
            self.save("best.safetensors", with_training_state=False)
        else:
            self.state.evals_without_improvement += 1
        self.schedule.after_evaluation(self.state.evals_without_improvement)

    def save_last(self) -> None:
        """Write the last checkpoint; with train.keep_last, keep a numbered copy of it too."""
        self.save("last.safetensors", with_training_state=True)
        if self.config.train.keep_last and self.ranks.main:
            checkpoint.keep_numbered(self.out_dir / "last.safetensors", self.state.step, self.config.train.keep_last)

    def save(self, name: str, with_training_state: bool) -> None:
        """Write a checkpoint; the last one also carries the optimizer (its learning rate too), RNG and progress.

        Only rank 0 writes; the last checkpoint is written by all ranks together (it keeps each rank's RNG).
        """
        rng = run_state.gather_rng(self.ranks) if with_training_state else {}
        if not self.ranks.main:
            return
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        metadata = dict(self.metadata)
        if with_training_state:
            training_tensors, metadata["training"] = run_state.saved(self.optimizer, self.state, rng)
            tensors.update(training_tensors)
        check_finite(tensors, self.out_dir / name)
        checkpoint.save_checkpoint(self.out_dir / name, tensors, metadata)

    def restore(self, tensors: dict[str, Tensor], metadata: dict[str, Any]) -> None:
        """Continue exactly from a checkpoint written by `save_last`."""
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        self.state = run_state.restore(self.optimizer, tensors, metadata["training"], self.ranks,
                                       self.out_dir / "last.safetensors")
        self._last_eval_step = self.state.step

    def _log_train(self, loss: float, interval_rate: float, progress: tqdm) -> None:
        """interval_rate: target tokens per second of the steps since the last row; the row also carries the running
        mean over the run's elapsed time (evaluations and checkpoints included)."""
        perplexity = math.exp(min(loss, 50.0))
        progress.set_postfix(loss=f"{loss:.3f}", ppl=f"{perplexity:.1f}", tok_s=f"{interval_rate:.0f}",
                             epoch=self.state.epoch)
        mean_rate = self.state.tokens / max(self.state.elapsed, 1e-9)
        self._write_log({"event": "train", "step": self.state.step, "epoch": self.state.epoch,
                         "elapsed": round(self.state.elapsed, 1), "tokens": self.state.tokens, "loss": round(loss, 4),
                         "perplexity": round(perplexity, 2), INTERVAL: round(interval_rate),
                         "mean_tokens_per_second": round(mean_rate), "lr": self.optimizer.param_groups[-1]["lr"]})

    def _write_log(self, record: dict[str, Any]) -> None:
        if not self.ranks.main:
            return
        record["time"] = round(time.time(), 3)
        with open(self.out_dir / "metrics.jsonl", "a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")
        self.board.record(record)


class _Clock:
    """Seconds of training: those of the run before this process (resumed) and those since started (monotonic)."""

    def __init__(self, started: float, elapsed_before: float, deadline: float | None, max_time: float) -> None:
        """deadline: when to stop (monotonic); without one, max_time seconds of training in all (0: no limit)."""
        self.started, self.elapsed_before = started, elapsed_before
        self.deadline = started + max_time - elapsed_before if max_time and deadline is None else deadline

    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.started

    def budget(self) -> float | None:
        """The seconds of training in all that the deadline leaves (None: no deadline)."""
        return self.elapsed_before + self.deadline - self.started if self.deadline is not None else None


class SavedRun(NamedTuple):
    """The last checkpoint of a run being resumed: its tensors, its JSON header and the model's metadata, and the
    config the run continues with."""

    tensors: dict[str, Tensor]
    values: dict[str, Any]
    metadata: ModelMetadata
    config: Config


AsStarted = Callable[[Config, Config], Config]
"""(config, the saved run's config) -> config fitted as the run's start fitted it (to its model.init)."""


def start_run(config: Config, out_dir: str | Path, resume: bool, draws_attention: bool = False,
              as_started: AsStarted | None = None) -> SavedRun | None:
    """Check the config, set the CPU threads and join the other ranks (when torchrun started several); with resume,
    the last checkpoint of out_dir to continue from (`resume_point`). draws_attention: the samples shown in
    TensorBoard will carry attention weights to draw."""
    validate(config)
    board.check_available(config, draws_attention)
    if distributed.current().main:  # a run directory that cannot be written fails here, before any work
        rundir.check_writable(out_dir)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    distributed.start(resolve_device(config.train.device))
    return resume_point(out_dir, config, as_started) if resume else None


def run_training(trainer: Trainer, saved: SavedRun | None, started: float) -> TrainState:
    """Continue from `saved` (a last checkpoint) or start a fresh run directory, then fit until the config says stop.

    train.max_time counts from `started` (time.monotonic() at the start of the command, data preparation included).
    """
    config = trainer.config
    with rundir.writing(trainer.out_dir, lock=trainer.ranks.main):  # one training writes a run directory
        if saved:
            trainer.restore(saved.tensors, saved.values)
        elif trainer.ranks.main:
            save_config(config, trainer.out_dir / "config.yaml")
        logger.info("model: %s parameters, device %s, precision %s",
                    f"{sum(p.numel() for p in trainer.model.parameters()):,}", trainer.device,
                    precision_reason(config.train.precision, trainer.device))
        deadline = started + config.train.max_time - trainer.state.elapsed if config.train.max_time else None
        with frozen_gc(), trainer.board.opened(trainer.state.step):
            state = trainer.fit(deadline)
    distributed.stop()
    return state


def resume_point(out_dir: str | Path, config: Config, as_started: AsStarted | None = None) -> SavedRun:
    """The last checkpoint of the run in out_dir, to be continued with config (fitted by as_started first, where the
    task's start fits a config to its model.init).

    A resumed run may change how long and how it trains (train.*), not what it trains: task, data or model settings
    that differ from the saved run's are a ConfigError.
    """
    path = Path(out_dir) / "last.safetensors"
    tensors, values = checkpoint.load_checkpoint(path)
    metadata = ModelMetadata.from_dict(values, str(path))
    if as_started:
        config = as_started(config, metadata.config)
    for section in ("task", "data", "model"):
        if getattr(config, section) != getattr(metadata.config, section):
            raise ConfigError(f"--resume: the {section} settings differ from the saved run; only train.* may change")
    return SavedRun(tensors, values, metadata, config)
