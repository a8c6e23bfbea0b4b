"""Cross-request batching: pending inputs with the same key are decoded together, off the event loop."""

from __future__ import annotations

import asyncio
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
    `max_batch` inputs, once a group is full, or once as many jobs wait as the last batch had and every request in
    flight is waiting here (nobody else could join), else once the oldest job waited `max_wait` seconds (counted
    from the end of the last batch when it arrived during it).

    One loop per Batcher runs the batches one after another, so jobs that arrive during a decode make the next
    batch bigger: the busier the server, the bigger its batches. Waiting for as many jobs as the last batch had
    lets its callers, whose next requests follow their answers, join the next batch: under a steady load the
    batches stay full instead of splitting into one that arrived during a decode and one that came back after it.
    A job larger than max_batch runs alone.
    """

    def __init__(self, run: Run, executor: Executor, max_batch: int, max_wait: float,
                 on_batch: Callable[[int, float], None] = lambda size, seconds: None,
                 in_flight: Callable[[], int] | None = None) -> None:
        self.run, self.executor, self.max_batch, self.max_wait = run, executor, max_batch, max_wait
        self.on_batch = on_batch  # (inputs, seconds of the decode) after each batch
        self.in_flight = in_flight  # requests being answered: when all of them are pending, none is worth waiting for
        self.groups: dict[Hashable, list[Job]] = {}
        self.wakeup = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.expected = 1  # jobs in the last batch
        self.free_since = float("-inf")  # when the last batch ended

    @property
    def pending(self) -> int:
        """Inputs waiting for a batch."""
        return sum(len(job.inputs) for jobs in self.groups.values() for job in jobs)

    def submit(self, key: Hashable, inputs: list[str]) -> asyncio.Future[list[Any]]:
        """The future results of inputs (one per input), decoded with whatever else is pending under the same key;
        cancelling it withdraws the inputs. A future rather than a coroutine: a timeout around it (wait_for) needs
        no task of its own."""
        loop = asyncio.get_running_loop()
        if self.task is None or self.task.done():
            self.task = loop.create_task(self._loop())
        job = Job(inputs, loop.create_future())
        self.groups.setdefault(key, []).append(job)
        self.wakeup.set()
        return job.future

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
        """A full group, else the group of the oldest job once nobody else is expected or it is due; None: nothing
        is due yet."""
        for key, jobs in self.groups.items():
            if sum(len(job.inputs) for job in jobs) >= self.max_batch:
                return key
        oldest = min(self.groups, key=lambda k: self.groups[k][0].arrived, default=None)
        if oldest is None:
            return None
        waiting = sum(len(jobs) for jobs in self.groups.values())
        if waiting >= self.expected and (self.in_flight is None or waiting >= self.in_flight()):
            return oldest
        return oldest if time.monotonic() >= self._due() else None

    def _due(self) -> float:
        """When the oldest pending job has waited long enough: max_wait after it arrived or the last batch ended."""
        return max(min(jobs[0].arrived for jobs in self.groups.values()), self.free_since) + self.max_wait

    async def _sleep(self) -> None:
        """Until a job arrives or the oldest pending one is due (a timer rather than wait_for, which would make a
        task at every arrival)."""
        self.wakeup.clear()
        loop = asyncio.get_running_loop()
        alarm = loop.call_later(self._due() - time.monotonic(), self.wakeup.set) if self.groups else None
        try:
            await self.wakeup.wait()
        finally:
            if alarm is not None:
                alarm.cancel()

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
        self.expected = len(jobs)
        try:
            results, seconds = await asyncio.get_running_loop().run_in_executor(self.executor, self._timed, key,
                                                                                 inputs)
        except Exception as error:  # the callers get the error; the loop keeps serving
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(error)
            return
        finally:
            self.free_since = time.monotonic()
        self.on_batch(len(inputs), seconds)
        start = 0
        for job in jobs:
            if not job.future.done():
                job.future.set_result(list(results[start:start + len(job.inputs)]))
            start += len(job.inputs)

    def _timed(self, key: Hashable, inputs: list[str]) -> tuple[Sequence[Any], float]:
        """`run` in the worker thread, and the seconds it took."""
        started = time.perf_counter()
        return self.run(key, inputs), time.perf_counter() - started
