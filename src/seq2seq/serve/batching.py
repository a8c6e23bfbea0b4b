"""Cross-request batching: pending inputs with the same key are decoded together, off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

Run = Callable[[Hashable, list[str]], Sequence[Any]]
"""(key, inputs) -> one result per input, in order; runs in a worker thread."""


@dataclass
class Job:
    """One caller's inputs, waiting for their results."""

    inputs: list[str]
    future: asyncio.Future[list[Any]]
    arrived: float = field(default_factory=time.monotonic)


class Batcher:
    """Collects jobs per key (model and identical options) and runs them as one call of `run`, at most
    `max_batch` inputs, once a group is full or its oldest job waited `max_wait` seconds (at once when every
    request in flight is already waiting here: nobody else could join).

    One loop per Batcher runs the batches one after another, so jobs that arrive during a decode make the next
    batch bigger: the busier the server, the bigger its batches. A job larger than max_batch runs alone.
    """

    def __init__(self, run: Run, executor: Executor, max_batch: int, max_wait: float,
                 on_batch: Callable[[int], None] = lambda size: None,
                 in_flight: Callable[[], int] | None = None) -> None:
        self.run, self.executor, self.max_batch, self.max_wait = run, executor, max_batch, max_wait
        self.on_batch = on_batch
        self.in_flight = in_flight  # requests being answered: when all of them are pending, none is worth waiting for
        self.groups: dict[Hashable, list[Job]] = {}
        self.wakeup = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Inputs waiting for a batch."""
        return sum(len(job.inputs) for jobs in self.groups.values() for job in jobs)

    async def submit(self, key: Hashable, inputs: list[str]) -> list[Any]:
        """The results of inputs (one per input), decoded with whatever else is pending under the same key."""
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._loop())
        job = Job(inputs, asyncio.get_running_loop().create_future())
        self.groups.setdefault(key, []).append(job)
        self.wakeup.set()
        return await job.future

    async def close(self) -> None:
        """Stop the loop; jobs still pending are cancelled."""
        if self.task is not None:
            self.task.cancel()
        for jobs in self.groups.values():
            for job in jobs:
                job.future.cancel()
        self.groups.clear()

    async def _loop(self) -> None:
        while True:
            key = self._ready()
            if key is None:
                await self._sleep()
                continue
            jobs = self._take(key)
            if jobs:
                await self._run(key, jobs)

    def _ready(self) -> Hashable | None:
        """A full group, else the group of the oldest job once it waited max_wait; None: nothing is due yet."""
        for key, jobs in self.groups.items():
            if sum(len(job.inputs) for job in jobs) >= self.max_batch:
                return key
        oldest = min(self.groups, key=lambda k: self.groups[k][0].arrived, default=None)
        if oldest is None:
            return None
        waiting = sum(len(jobs) for jobs in self.groups.values())
        if self.in_flight is not None and waiting >= self.in_flight():
            return oldest
        return oldest if time.monotonic() - self.groups[oldest][0].arrived >= self.max_wait else None

    async def _sleep(self) -> None:
        """Until a job arrives or the oldest pending one is due."""
        self.wakeup.clear()
        firsts = [jobs[0].arrived for jobs in self.groups.values()]
        timeout = max(0.0, min(firsts) + self.max_wait - time.monotonic()) if firsts else None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.wakeup.wait(), timeout)

    def _take(self, key: Hashable) -> list[Job]:
        """The group's oldest jobs that fit in max_batch inputs (at least one); callers gone are dropped."""
        jobs = [job for job in self.groups.pop(key) if not job.future.done()]
        taken, size = [], 0
        while jobs and (not taken or size + len(jobs[0].inputs) <= self.max_batch):
            size += len(jobs[0].inputs)
            taken.append(jobs.pop(0))
        if jobs:
            self.groups[key] = jobs
        return taken

    async def _run(self, key: Hashable, jobs: list[Job]) -> None:
        inputs = [text for job in jobs for text in job.inputs]
        self.on_batch(len(inputs))
        try:
            results = await asyncio.get_running_loop().run_in_executor(self.executor, self.run, key, inputs)
        except Exception as error:  # the callers get the error; the loop keeps serving
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(error)
            return
        start = 0
        for job in jobs:
            if not job.future.done():
                job.future.set_result(list(results[start:start + len(job.inputs)]))
            start += len(job.inputs)
