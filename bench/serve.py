"""Serving benchmark: `seq2seq serve` under 1, 8 and 64 concurrent clients over loopback, batching on and off.

usage: python bench/serve.py [--model DIR] [--data DATA] [--duration 5] [--levels 1,8,64] [--memory-requests 2000]
                             [--no-write]

Each client sends one-sentence translate requests for --duration seconds per level; the table gives sentences/s
and p50 / p99 latency with cross-request batching on (--max-batch 64) and off (--max-batch 1), beside the offline
throughput of greedy decoding at batch 64 (translate_detailed in this process). While the 8-client level runs, a
client sends a mix of over 30 kinds of bad request: none may get a 5xx, and the server must survive. The server's
memory is read after the first 1,000 requests and after --memory-requests. Without --model, a small toy model
(reversing symbol sequences) is trained first (a few seconds); without --data, sentences are drawn from the
model's source vocabulary. Writes the "Serving" section of BENCHMARKS.md unless --no-write.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import tree_rss_bytes, write_section

from seq2seq import api
from seq2seq.config import Config, apply_overrides
from seq2seq.data import Pair
from seq2seq.datasets import load_pairs
from seq2seq.decoding import DecodingOptions

BAD_REQUESTS: list[tuple[str, bytes]] = [
    ("/v1/translate", b'{"texts": ["a"]'), ("/v1/translate", b'{"texts": ["\xff\xfe"]}'),
    ("/v1/translate", b'{"texts": ["\\ud800"]}'), ("/v1/translate", b"[1, 2]"), ("/v1/translate", b'"a"'),
    ("/v1/translate", b""), ("/v1/translate", b'{"texts": [NaN]}'), ("/v1/translate", b'{"texts": "a"}'),
    ("/v1/translate", b'{"texts": [1]}'), ("/v1/translate", b"{}"), ("/v1/translate", b'{"texts": []}'),
    ("/v1/translate", b'{"texts": [" "]}'), ("/v1/translate", b'{"texts": ["' + b"a" * 5000 + b'"]}'),
    ("/v1/translate", json.dumps({"texts": ["a"] * 500}).encode()),
    ("/v1/translate", b'{"texts": ["a"], "colour": 1}'), ("/v1/translate", b'{"texts": ["a"], "beam_size": 3}'),
    ("/v1/translate", b'{"texts": ["a"], "temperature": 0.5}'),
    ("/v1/translate", b'{"texts": ["a"], "strategy": "best"}'),
    ("/v1/translate", b'{"texts": ["a"], "strategy": "beam", "beam_size": 999}'),
    ("/v1/translate", b'{"texts": ["a"], "strategy": "beam", "beam_size": "5"}'),
    ("/v1/translate", b'{"texts": ["a"], "strategy": "beam", "beam_size": 2, "n_best": 3}'),
    ("/v1/translate", b'{"texts": ["a"], "max_length": 1000000}'),
    ("/v1/translate", b'{"texts": ["a"], "max_length": -1}'),
    ("/v1/translate", b'{"texts": ["a"], "ban_unk": 1}'),
    ("/v1/translate", b'{"texts": ["a"], "strategy": "sample", "top_p": 2.0}'),
    ("/v1/translate", b'{"texts": ["a"], "strategy": "sample", "num_samples": 0}'),
    ("/v1/translate", b'{"texts": ["a"], "model": "nope"}'), ("/v1/translate", b'{"texts": ["a"], "model": 5}'),
    ("/v1/translate", b'{"texts": ["a"], "min_length": 5, "max_length": 3}'),
    ("/v1/translate", b"x" * (2 << 20)), ("/v1/generate", b'{"prompt": "a"}'), ("/v1/chat", b'{"message": ""}'),
    ("/v1/chat", b'{"message": "a", "history": [1]}'), ("/v1/nothing", b"{}"),
]


@dataclass
class Level:
    """What one load level measured."""

    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    seconds: float = 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(model: str, max_batch: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-m", "seq2seq.cli", "serve", "--model", model, "--port", str(port),
               "--max-batch", str(max_batch), "--max-in-flight", "1024", "--threads", "1"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    sys.exit(f"the server did not start: {shlex.join(command)}")


class Connection:
    """A keep-alive HTTP/1.1 connection speaking just enough HTTP for JSON requests: far lighter than an HTTP
    library's client, so that on a small machine the clients measure the server rather than themselves."""

    def __init__(self, url: str) -> None:
        self.host, self.port = url.removeprefix("http://").split(":")
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, path: str, body: bytes) -> int:
        """Send a POST and read the answer; returns its status."""
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, int(self.port))
        reader, writer = self.streams
        writer.write(f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in head[1:] if ": " in line)
        await reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection") == "close":
            writer.close()
            self.streams = None
        return int(head[0].split()[1])

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


async def client(url: str, sentences: list[str], until: float, level: Level, rng: random.Random) -> None:
    connection = Connection(url)
    try:
        while time.monotonic() < until:
            started = time.perf_counter()
            try:
                status = await connection.post("/v1/translate",
                                               json.dumps({"texts": [rng.choice(sentences)]}).encode())
            except (OSError, asyncio.IncompleteReadError, ValueError):
                status = 0
                connection.close()
            if status == 200:
                level.latencies.append(time.perf_counter() - started)
            else:
                level.failures += 1
    finally:
        connection.close()


async def bad_client(http: httpx.AsyncClient, url: str, until: float, tally: dict[str, int]) -> None:
    """Send the bad requests in turn until `until`; count 5xx answers and dropped connections."""
    index = 0
    while time.monotonic() < until or index < len(BAD_REQUESTS):
        route, body = BAD_REQUESTS[index % len(BAD_REQUESTS)]
        index += 1
        try:
            response = await http.post(f"{url}{route}", content=body, headers={"content-type": "application/json"})
            tally["5xx" if response.status_code >= 500 else "4xx" if response.status_code >= 400 else "other"] += 1
        except httpx.HTTPError:
            tally["errors"] += 1
        await asyncio.sleep(0.05)  # about 20 a second: a mix beside the load, not a flood


async def load(url: str, sentences: list[str], clients: int, duration: float,
               tally: dict[str, int] | None = None) -> Level:
    level, until = Level(), time.monotonic() + duration
    limits = httpx.Limits(max_connections=clients + 2)
    async with httpx.AsyncClient(limits=limits, timeout=60) as http:
        started = time.monotonic()
        tasks = [client(url, sentences, until, level, random.Random(i)) for i in range(clients)]
        if tally is not None:
            tasks.append(bad_client(http, url, until, tally))
        await asyncio.gather(*tasks)
        level.seconds = time.monotonic() - started
    return level


def memory_growth(process: subprocess.Popen[bytes], url: str, sentences: list[str], total: int) -> tuple[int, int]:
    """Server RSS after the first 1,000 requests and after `total` (sent by 8 clients)."""

    async def send(count: int) -> None:
        queue = iter(range(count))

        async def worker() -> None:
            connection = Connection(url)
            for i in queue:
                await connection.post("/v1/translate", json.dumps({"texts": [sentences[i % len(sentences)]]}).encode())
            connection.close()

        await asyncio.gather(*(worker() for _ in range(8)))

    asyncio.run(send(1000))
    first = tree_rss_bytes(process.pid)
    asyncio.run(send(max(0, total - 1000)))
    return first, tree_rss_bytes(process.pid)


def offline(model: str, sentences: list[str], seconds: float) -> float:
    """Sentences/s of greedy decoding at batch 64 in this process, on one thread like the server (its work
    without HTTP)."""
    torch.set_num_threads(1)
    translator = api.load_translator(model)
    batch = [sentences[i % len(sentences)] for i in range(64)]
    translator.translate_detailed(batch, DecodingOptions(), 64)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        translator.translate_detailed(batch, DecodingOptions(), 64)
        done += 64
    return done / (time.perf_counter() - started)


def toy_model(folder: Path) -> tuple[str, list[str]]:
    """A small reversing model trained for a few seconds, and its test sentences."""
    rng = random.Random(1)
    pairs = []
    for _ in range(3000):
        symbols = [rng.choice("abcdefghij") for _ in range(rng.randint(3, 12))]
        pairs.append(Pair(" ".join(symbols), " ".join(reversed(symbols))))
    config = apply_overrides(Config(), ["data.src.kind=word", "data.tgt.kind=word", "model.hidden_size=128",
                                        "model.embedding_size=64", "train.max_steps=150", "train.precision=fp32"])
    api.train(config, pairs[:2900], pairs[2900:], folder)
    return str(folder), [pair.src for pair in pairs[2900:]]


def sentences_for(model: str, data: str | None) -> list[str]:
    if data:
        return [pair.src for pair in load_pairs(data)][:2000]
    translator = api.load_translator(model)
    vocab = [token for token in translator.vocabs[0].itos if not token.startswith("<")]
    rng = random.Random(0)
    return [translator.tokenizers[0].detokenize(rng.choices(vocab, k=rng.randint(3, 12))) for _ in range(500)]


def run_server(model: str, max_batch: int, sentences: list[str], args: argparse.Namespace
               ) -> tuple[dict[int, Level], dict[str, int], tuple[int, int] | None]:
    process, url = start_server(model, max_batch)
    tally = {"4xx": 0, "5xx": 0, "other": 0, "errors": 0}
    try:
        levels = {}
        for clients in args.levels:
            bad = tally if clients == 8 and max_batch > 1 else None
            levels[clients] = asyncio.run(load(url, sentences, clients, args.duration, bad))
            print(f"max-batch {max_batch}, {clients} clients: {levels[clients].throughput:.1f} sentences/s, "
                  f"p50 {levels[clients].percentile(0.5):.1f} ms, p99 {levels[clients].percentile(0.99):.1f} ms",
                  file=sys.stderr)
        memory = memory_growth(process, url, sentences, args.memory_requests) if max_batch > 1 else None
        tally["alive"] = int(process.poll() is None and httpx.get(f"{url}/healthz").status_code == 200)
    finally:
        process.terminate()
        process.wait(timeout=30)
    return levels, tally, memory


def table(on: dict[int, Level], off: dict[int, Level], offline_speed: float) -> str:
    lines = ["| clients | batching | sentences/s | p50 ms | p99 ms | failed | vs offline greedy batch 64 |",
             "|---|---|---|---|---|---|---|"]
    for clients in on:
        for name, levels in (("on", on), ("off (--max-batch 1)", off)):
            level = levels[clients]
            lines.append(f"| {clients} | {name} | {level.throughput:.1f} | {level.percentile(0.5):.1f} | "
                         f"{level.percentile(0.99):.1f} | {level.failures} | "
                         f"{level.throughput / offline_speed:.0%} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="a translation model's run directory (default: train a small toy model)")
    parser.add_argument("--data", help="pairs whose sources are the requests (default: from the vocabulary)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load level (default 5)")
    parser.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 64])
    parser.add_argument("--memory-requests", type=int, default=2000, help="requests before the 2nd memory reading")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        model, sentences = (args.model, sentences_for(args.model, args.data)) if args.model else \
            toy_model(Path(scratch) / "toy")
        on, tally, memory = run_server(model, 64, sentences, args)
        off, _, _ = run_server(model, 1, sentences, args)
        offline_speed = offline(model, sentences, min(args.duration, 10))
    assert memory is not None
    body = (f"`{shlex.join(['python', 'bench/serve.py', *(a for a in sys.argv[1:] if a != args.model)])}`"
            f" ({'toy reversing model, 128 hidden units' if not args.model else 'MODEL_DIR'}; client and server "
            f"share the machine's cores; {args.duration:g} s per level).\n\n{table(on, off, offline_speed)}\n\n"
            f"Offline greedy decoding at batch 64: {offline_speed:.1f} sentences/s. "
            f"Server memory after 1,000 requests: {memory[0] / 2**20:.0f} MiB; after {args.memory_requests:,}: "
            f"{memory[1] / 2**20:.0f} MiB ({(memory[1] - memory[0]) / memory[0]:+.1%}). Bad requests during the "
            f"8-client level ({len(BAD_REQUESTS)} kinds): {tally['4xx']} answered 4xx, {tally['5xx']} 5xx, "
            f"{tally['errors']} dropped; server alive afterwards: {'yes' if tally['alive'] else 'NO'}.")
    print(body)
    if not args.no_write:
        write_section("Serving", body)


if __name__ == "__main__":
    main()
