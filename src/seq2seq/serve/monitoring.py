"""Server metrics (request counts, latencies, batch sizes, queue depth) in the Prometheus text format."""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
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
    in_flight: int = 0
    rejected: int = 0

    def record(self, route: str, status: int, seconds: float) -> None:
        self.requests[(route, status)] += 1
        self.latency.setdefault(route, Histogram(LATENCY_BUCKETS)).observe(seconds)

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
                  "# HELP seq2seq_queue_depth Inputs waiting for a batch.", "# TYPE seq2seq_queue_depth gauge",
                  f"seq2seq_queue_depth {queue_depth()}",
                  "# HELP seq2seq_in_flight Requests being answered.", "# TYPE seq2seq_in_flight gauge",
                  f"seq2seq_in_flight {self.in_flight}",
                  "# HELP seq2seq_rejected_total Requests refused with 429 (too many in flight).",
                  "# TYPE seq2seq_rejected_total counter", f"seq2seq_rejected_total {self.rejected}"]
        return "\n".join(lines) + "\n"
