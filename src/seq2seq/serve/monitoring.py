"""Server metrics (request counts, latencies, batch sizes and decoding time, queue depth) in the Prometheus text
format, and the ASGI middleware that counts the requests."""

from __future__ import annotations

import bisect
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
DECODE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@dataclass
class Histogram:
    """Cumulative-bucket histogram of observed values."""

    buckets: Sequence[float]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def observe(self, value: float) -> None:
        if not self.counts:
            self.counts = [0] * len(self.buckets)
        index = bisect.bisect_left(self.buckets, value)
        if index < len(self.buckets):
            self.counts[index] += 1
        self.total += value
        self.count += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        counts = self.counts or [0] * len(self.buckets)
        cumulative, lines, prefix = 0, [], f"{labels}," if labels else ""
        for bound, count in zip(self.buckets, counts, strict=True):
            cumulative += count
            lines.append(f'{name}_bucket{{{prefix}le="{bound:g}"}} {cumulative}')
        lines.append(f'{name}_bucket{{{prefix}le="+Inf"}} {self.count}')
        suffix = f"{{{labels}}}" if labels else ""
        return [*lines, f"{name}_sum{suffix} {self.total:.6f}", f"{name}_count{suffix} {self.count}"]


@dataclass
class Metrics:
    """What the server counts; gauges are read when /metrics is asked for."""

    requests: Counter[tuple[str, int]] = field(default_factory=Counter)
    latency: dict[str, Histogram] = field(default_factory=dict)
    batch_sizes: Histogram = field(default_factory=lambda: Histogram(BATCH_BUCKETS))
    decode_seconds: Histogram = field(default_factory=lambda: Histogram(DECODE_BUCKETS))
    in_flight: int = 0
    rejected: int = 0

    def record(self, route: str, status: int, seconds: float) -> None:
        self.requests[(route, status)] += 1
        self.latency.setdefault(route, Histogram(LATENCY_BUCKETS)).observe(seconds)

    def batch(self, size: int, seconds: float) -> None:
        """A batched decode of `size` inputs took `seconds` in the decoding thread."""
        self.batch_sizes.observe(size)
        self.decode_seconds.observe(seconds)

    def render(self, queue_depth: Callable[[], int]) -> str:
        lines = ["# HELP seq2seq_requests_total HTTP requests answered, by route and status.",
                 "# TYPE seq2seq_requests_total counter"]
        lines += [f'seq2seq_requests_total{{route="{route}",status="{status}"}} {count}'
                  for (route, status), count in sorted(self.requests.items())]
        lines += ["# HELP seq2seq_request_seconds Time to answer a request.",
                  "# TYPE seq2seq_request_seconds histogram"]
        for route, histogram in sorted(self.latency.items()):
            lines += histogram.lines("seq2seq_request_seconds", f'route="{route}"')
        lines += ["# HELP seq2seq_batch_size Inputs per batched decode.", "# TYPE seq2seq_batch_size histogram",
                  *self.batch_sizes.lines("seq2seq_batch_size"),
                  "# HELP seq2seq_decode_seconds Time of one batched decode in the decoding thread.",
                  "# TYPE seq2seq_decode_seconds histogram", *self.decode_seconds.lines("seq2seq_decode_seconds"),
                  "# HELP seq2seq_queue_depth Inputs waiting for a batch.", "# TYPE seq2seq_queue_depth gauge",
                  f"seq2seq_queue_depth {queue_depth()}",
                  "# HELP seq2seq_in_flight Requests being answered.", "# TYPE seq2seq_in_flight gauge",
                  f"seq2seq_in_flight {self.in_flight}",
                  "# HELP seq2seq_rejected_total Requests refused with 429 (too many in flight).",
                  "# TYPE seq2seq_rejected_total counter", f"seq2seq_rejected_total {self.rejected}"]
        return "\n".join(lines) + "\n"


class Guard:
    """ASGI middleware counting every HTTP request (route, status, seconds to its last byte) in the metrics, and
    answering POSTs beyond `max_in_flight` with `overloaded` at once.

    Plain ASGI rather than Starlette's BaseHTTPMiddleware, whose task group and memory streams per request cost
    more than the rest of a small request's handling.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Collection[str], max_in_flight: int,
                 overloaded: ASGIApp) -> None:
        self.app, self.metrics, self.routes = app, metrics, routes
        self.max_in_flight, self.overloaded = max_in_flight, overloaded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, answer = time.perf_counter(), {"status": 500}  # an exception out of the app becomes a 500

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
            await send(message)

        try:
            await self._answer(scope, receive, sending)
        finally:
            route = scope["path"] if scope["path"] in self.routes else "other"
            self.metrics.record(route, answer["status"], time.perf_counter() - started)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "POST" and self.metrics.in_flight >= self.max_in_flight:
            self.metrics.rejected += 1
            await self.overloaded(scope, receive, send)
            return
        self.metrics.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.metrics.in_flight -= 1
