"""The cross-request batcher on its own (no HTTP): how it forms batches from callers that come back, and its metrics."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("starlette")

from seq2seq.serve.batching import Batcher
from seq2seq.serve.monitoring import Metrics


def upper(key: object, inputs: list[str]) -> list[str]:
    """A decode of 10 ms: long enough for callers to come back during it, short enough for a fast test."""
    time.sleep(0.01)
    return [text.upper() for text in inputs]


def closed_loop(callers: int, rounds: int, max_wait: float) -> tuple[list[int], float]:
    """`callers` clients, each sending `rounds` requests one after another (coming back at different times, as
    over HTTP); the batch sizes formed and the seconds it took."""
    sizes: list[int] = []

    async def run() -> None:
        in_flight = [0]
        with ThreadPoolExecutor(1) as executor:
            batcher = Batcher(upper, executor, 64, max_wait, lambda size, seconds: sizes.append(size),
                              lambda: in_flight[0])

            async def caller(index: int) -> None:
                for turn in range(rounds):
                    in_flight[0] += 1
                    assert await batcher.submit("key", [f"c{index}t{turn}"]) == [f"C{index}T{turn}"]
                    in_flight[0] -= 1
                    await asyncio.sleep(0.002 * index)  # answers reach their callers one after another

            await asyncio.gather(*(caller(index) for index in range(callers)))
            await batcher.close()

    started = time.perf_counter()
    asyncio.run(asyncio.wait_for(run(), timeout=30))  # a batcher that never wakes fails instead of hanging
    return sizes, time.perf_counter() - started


def test_callers_of_a_batch_come_back_into_one_batch() -> None:
    """Without waiting for the last batch's callers, the first one back would go alone and the others after it:
    batches of 1 and 7 in turn instead of 8."""
    sizes, _ = closed_loop(callers=8, rounds=5, max_wait=2.0)
    assert sizes == [8] * 5


def test_a_lone_caller_does_not_wait() -> None:
    sizes, seconds = closed_loop(callers=1, rounds=5, max_wait=2.0)
    assert sizes == [1] * 5 and seconds < 2.0  # max_wait would have cost 10 s


def test_batch_sizes_and_decoding_time_are_exported() -> None:
    metrics = Metrics()
    metrics.batch(3, 0.02)
    metrics.batch(5, 0.2)
    text = metrics.render(lambda: 0)
    assert "seq2seq_batch_size_sum 8.000000" in text and "seq2seq_batch_size_count 2" in text
    assert 'seq2seq_decode_seconds_bucket{le="0.025"} 1' in text and "seq2seq_decode_seconds_sum 0.220000" in text
