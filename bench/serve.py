"""Serving benchmark: `seq2seq serve` under 1, 8 and 64 concurrent clients over loopback, batching on and off.

usage: python bench/serve.py [--model DIR] [--data DATA] [--label TEXT] [--duration 5] [--levels 1,8,64]
                             [--memory-requests 2000] [--no-write]

Each client sends one-sentence translate requests for --duration seconds per level, over a keep-alive connection;
the load generator is wrk (apt-get install wrk: one thread, a Lua script cycling through the request bodies) when
installed, else asyncio clients in this process. Only HTTP 200 answers count as throughput. The table gives
sentences/s and p50 / p99 latency with cross-request batching on (--max-batch 64) and off (--max-batch 1); where
the time went (inputs per batch, the share of the level the decoding thread was busy, both from the server's
/metrics); the CPU of the server and of the load generator; and the ratio to the offline throughput of greedy
decoding at batch 64 (translate_detailed in this process, one thread, over the same sentences), measured before,
between and after the two servers. While the 8-client level runs, a client sends a mix of over 30 kinds of bad
request: none may get a 5xx, and the server must survive. The server's memory is read after the first 1,000
requests and after --memory-requests. Without --model, a small toy model (reversing symbol sequences) is trained
first (a few seconds); without --data, sentences are drawn from the model's source vocabulary. Writes the
"Serving" section of BENCHMARKS.md unless --no-write.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shlex
import shutil
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
from seq2seq.data.datasets import load_pairs
from seq2seq.data.pairs import Pair
from seq2seq.decoding.options import DecodingOptions

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
MEMORY_CLIENTS = 64
SENTENCES = 1024  # requests cycle through this many sentences; the offline reference decodes the same ones


WRK_SCRIPT = """
local bodies, index = {}, 0
function init(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
end
function request()
  index = index % #bodies + 1
  return wrk.format("POST", "/v1/translate", {["Content-Type"] = "application/json"}, bodies[index])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %d, "us": %d, "status": %d, "lost": %d, "p50": %d, "p99": %d}\\n',
    summary.requests, summary.duration, e.status, e.timeout + e.connect + e.read + e.write,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class Level:
    """What one load level measured: answers, latency, and where the CPU time went."""

    ok: int = 0  # HTTP 200 answers
    failures: int = 0  # other answers, dropped connections and timeouts
    seconds: float = 0.0
    p50: float = float("nan")  # ms
    p99: float = float("nan")
    client_cpu: float = 0.0  # seconds of CPU of the load generator (and the bad-request client)
    server_cpu: float = 0.0
    server: dict[str, float] = field(default_factory=dict)  # batches, batched inputs, decoding seconds

    @property
    def throughput(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def share(self, cpu: float) -> float:
        """CPU seconds per second of the level: cores kept busy."""
        return cpu / self.seconds if self.seconds else 0.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


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


async def client(url: str, bodies: list[bytes], until: float, level: Level, latencies: list[float],
                 rng: random.Random) -> None:
    connection = Connection(url)
    try:
        while time.monotonic() < until:
            started = time.perf_counter()
            try:
                status = await connection.post("/v1/translate", rng.choice(bodies))
            except (OSError, asyncio.IncompleteReadError, ValueError):
                status = 0
                connection.close()
            if status == 200:
                level.ok += 1
                latencies.append(time.perf_counter() - started)
            else:
                level.failures += 1
    finally:
        connection.close()


async def bad_client(url: str, until: float, tally: dict[str, int]) -> None:
    """Send the bad requests in turn until `until`; count 5xx answers and dropped connections."""
    index = 0
    async with httpx.AsyncClient(timeout=60) as http:
        while time.monotonic() < until or index < len(BAD_REQUESTS):
            route, body = BAD_REQUESTS[index % len(BAD_REQUESTS)]
            index += 1
            try:
                response = await http.post(f"{url}{route}", content=body,
                                           headers={"content-type": "application/json"})
                tally["5xx" if response.status_code >= 500 else "4xx" if response.status_code >= 400 else "other"] += 1
            except httpx.HTTPError:
                tally["errors"] += 1
            await asyncio.sleep(0.05)  # about 20 a second: a mix beside the load, not a flood


async def python_load(url: str, bodies: list[bytes], clients: int, duration: float,
                      tally: dict[str, int] | None) -> Level:
    """The level with asyncio clients in this process (when wrk is not installed)."""
    level, latencies, until = Level(), [], time.monotonic() + duration
    started = time.monotonic()
    tasks = [client(url, bodies, until, level, latencies, random.Random(i)) for i in range(clients)]
    await asyncio.gather(*tasks, *([bad_client(url, until, tally)] if tally is not None else []))
    level.seconds = time.monotonic() - started
    level.p50, level.p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    return level


async def wrk_load(url: str, bodies: Path, clients: int, duration: float, tally: dict[str, int] | None) -> Level:
    """The level with wrk (one thread, `clients` keep-alive connections, cycling through the bodies)."""
    script = bodies.with_suffix(".lua")
    script.write_text(WRK_SCRIPT)
    seconds = max(1, round(duration))
    command = ["wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "--timeout", "60s", "-s", str(script), url, "--",
               str(bodies)]
    process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
    bad = [bad_client(url, time.monotonic() + seconds, tally)] if tally is not None else []
    (out, _), *_ = await asyncio.gather(process.communicate(), *bad)
    if process.returncode != 0:
        sys.exit(f"wrk failed: {shlex.join(command)}")
    found = json.loads(out.decode().strip().splitlines()[-1])
    return Level(ok=found["requests"] - found["status"], failures=found["status"] + found["lost"],
                 seconds=found["us"] / 1e6, p50=found["p50"] / 1000, p99=found["p99"] / 1000)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a running process."""
    fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU time of this process and of its children that ended (wrk)."""
    return sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))


def server_counts(url: str) -> dict[str, float]:
    """The server's batch count, batched inputs, decoding seconds and requests in flight, from /metrics."""
    names = {"seq2seq_batch_size_count": "batches", "seq2seq_batch_size_sum": "inputs",
             "seq2seq_decode_seconds_sum": "decoding", "seq2seq_in_flight": "in_flight"}
    found = dict.fromkeys(names.values(), 0.0)
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        name, _, value = line.partition(" ")
        if name in names:
            found[names[name]] = float(value)
    return found


def settle(url: str) -> None:
    """Wait (at most a minute) until the requests a load generator left behind are answered."""
    deadline = time.monotonic() + 60
    while server_counts(url)["in_flight"] > 1 and time.monotonic() < deadline:
        time.sleep(0.2)


def measure(process: subprocess.Popen[bytes], url: str, bodies: Path, clients: int, duration: float,
            tally: dict[str, int] | None) -> Level:
    """One load level, with the CPU time of both sides and the server's batching over it."""
    server_before, own_before, counts_before = cpu_seconds(process.pid), own_cpu_seconds(), server_counts(url)
    if shutil.which("wrk"):
        level = asyncio.run(wrk_load(url, bodies, clients, duration, tally))
    else:
        lines = bodies.read_bytes().splitlines()
        level = asyncio.run(python_load(url, lines, clients, duration, tally))
    level.server_cpu, level.client_cpu = cpu_seconds(process.pid) - server_before, own_cpu_seconds() - own_before
    counts = server_counts(url)
    level.server = {name: counts[name] - counts_before[name] for name in ("batches", "inputs", "decoding")}
    settle(url)
    return level


def memory_growth(process: subprocess.Popen[bytes], url: str, bodies: list[bytes], total: int) -> tuple[int, int]:
    """Server RSS after the first 1,000 requests and after `total` (sent by MEMORY_CLIENTS clients)."""

    async def send(count: int) -> None:
        queue = iter(range(count))

        async def worker() -> None:
            connection = Connection(url)
            for i in queue:
                await connection.post("/v1/translate", bodies[i % len(bodies)])
            connection.close()

        await asyncio.gather(*(worker() for _ in range(MEMORY_CLIENTS)))

    asyncio.run(send(1000))
    first = tree_rss_bytes(process.pid)
    asyncio.run(send(max(0, total - 1000)))
    return first, tree_rss_bytes(process.pid)


def offline(translator: api.Translator, sentences: list[str], seconds: float, size: int = 64) -> tuple[float, float]:
    """Sentences/s of greedy decoding at batch `size` in this process, on one thread like the server (its work
    without HTTP), and CPU ms per sentence: whole passes over the sentences in batches of `size`, for at least
    `seconds`. Every batch counts: one sentence whose translation runs long slows its whole batch, in the server
    as here."""
    torch.set_num_threads(1)
    batches = [sentences[start:start + size] for start in range(0, len(sentences) - size + 1, size)] or [sentences]
    translator.translate_detailed(batches[0], DecodingOptions(), size)
    done, started, cpu = 0, time.perf_counter(), time.process_time()
    while not done or time.perf_counter() - started < seconds:
        for batch in batches:
            translator.translate_detailed(batch, DecodingOptions(), size)
            done += len(batch)
    return done / (time.perf_counter() - started), (time.process_time() - cpu) * 1000 / done


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
        return [pair.src for pair in load_pairs(data)][:SENTENCES]
    translator = api.load_translator(model)
    vocab = [token for token in translator.vocabs[0].itos if not token.startswith("<")]
    rng = random.Random(0)
    return [translator.tokenizers[0].detokenize(rng.choices(vocab, k=rng.randint(3, 12))) for _ in range(SENTENCES)]


def describe(translator: api.Translator) -> str:
    """The model's size and shape, for the table's caption."""
    model = translator.config.model
    parameters = sum(p.numel() for p in translator.model.parameters())
    return (f"{parameters / 1e6:.1f}M parameters: {model.arch} {model.rnn}, embedding {model.embedding_size}, "
            f"hidden {model.hidden_size}, vocabularies {len(translator.vocabs[0]):,} / {len(translator.vocabs[1]):,}")


def run_server(model: str, max_batch: int, bodies: Path, args: argparse.Namespace
               ) -> tuple[dict[int, Level], dict[str, int], tuple[int, int] | None]:
    process, url = start_server(model, max_batch)
    tally = {"4xx": 0, "5xx": 0, "other": 0, "errors": 0}
    try:
        measure(process, url, bodies, 8, 2, None)  # warm-up: the first decodes of each batch size cost more
        levels = {}
        for clients in args.levels:
            bad = tally if clients == 8 and max_batch > 1 else None
            level = levels[clients] = measure(process, url, bodies, clients, args.duration, bad)
            print(f"max-batch {max_batch}, {clients} clients: {level.throughput:.1f} sentences/s, p50 "
                  f"{level.p50:.1f} ms, p99 {level.p99:.1f} ms, {level.failures} failed", file=sys.stderr)
        lines = bodies.read_bytes().splitlines()
        memory = memory_growth(process, url, lines, args.memory_requests) if max_batch > 1 else None
        tally["alive"] = int(process.poll() is None and httpx.get(f"{url}/healthz").status_code == 200)
    finally:
        process.terminate()
        process.wait(timeout=30)
    return levels, tally, memory


def row(clients: int, name: str, level: Level, offline_speed: float) -> str:
    batches, inputs, decoding = (level.server.get(key, 0.0) for key in ("batches", "inputs", "decoding"))
    return (f"| {clients} | {name} | {level.throughput:.1f} | {level.p50:.1f} | {level.p99:.1f} | {level.failures} | "
            f"{inputs / batches if batches else 0:.1f} | {level.share(decoding):.0%} | "
            f"{level.share(level.server_cpu):.2f} | {level.server_cpu * 1000 / max(1, level.ok):.1f} | "
            f"{level.share(level.client_cpu):.2f} | {level.throughput / offline_speed:.0%} |")


def table(on: dict[int, Level], off: dict[int, Level], offline_speed: float) -> str:
    lines = ["| clients | batching | sentences/s | p50 ms | p99 ms | failed | inputs per batch | decoding busy | "
             "server cores | server CPU ms per sentence | load-generator cores | vs offline greedy batch 64 |",
             "|---" * 12 + "|"]
    for clients in on:
        lines.append(row(clients, "on", on[clients], offline_speed))
        lines.append(row(clients, "off (--max-batch 1)", off[clients], offline_speed))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="a translation model's run directory (default: train a small toy model)")
    parser.add_argument("--data", help="pairs whose sources are the requests (default: from the vocabulary)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load level (default 5)")
    parser.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 64])
    parser.add_argument("--memory-requests", type=int, default=2000, help="requests before the 2nd memory reading")
    parser.add_argument("--label", default="MODEL_DIR", help="what the model is, for the table's caption")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        model, sentences = (args.model, sentences_for(args.model, args.data)) if args.model else \
            toy_model(Path(scratch) / "toy")
        bodies = Path(scratch) / "bodies.jsonl"
        bodies.write_text("".join(json.dumps({"texts": [text]}) + "\n" for text in sentences))
        translator = api.load_translator(model)
        speeds = [offline(translator, sentences, min(args.duration, 10))]
        on, tally, memory = run_server(model, 64, bodies, args)
        speeds.append(offline(translator, sentences, min(args.duration, 10)))
        off, _, _ = run_server(model, 1, bodies, args)
        speeds.append(offline(translator, sentences, min(args.duration, 10)))
        alone = offline(translator, sentences[::8], min(args.duration, 10), 1)
    assert memory is not None
    body = report(args, describe(translator), (on, off), [*speeds, alone], (load_before, os.getloadavg()[0]), tally,
                  memory)
    print(body)
    if not args.no_write:
        write_section("Serving", body)


def report(args: argparse.Namespace, model: str, levels: tuple[dict[int, Level], dict[int, Level]],
           offline_speeds: list[tuple[float, float]], load: tuple[float, float], tally: dict[str, int],
           memory: tuple[int, int]) -> str:
    """The section of BENCHMARKS.md: how it was run, the table, offline speeds (at batch 64 before, between and
    after the servers, then at batch 1), memory and bad requests."""
    *speeds, alone = offline_speeds
    shown = {args.model: "MODEL_DIR", args.data: "DATA", args.label: "LABEL"}
    command = shlex.join(["python", "bench/serve.py", *(shown.get(a, a) for a in sys.argv[1:])])
    generator = "wrk, 1 thread" if shutil.which("wrk") else "asyncio clients in the benchmark's process"
    on, off = levels
    ratios = ", ".join(f"{on[c].throughput / off[c].throughput:.1f}x at {c}" for c in on if off[c].throughput)
    offline_speed = sum(speed for speed, _ in speeds) / len(speeds)
    return (f"`{command}` ({'toy reversing model' if not args.model else args.label}, {model}; load generator: "
            f"{generator}; it shares the machine's cores with the server, and other work ran on the machine: load "
            f"average {load[0]:.1f} before, {load[1]:.1f} after; {args.duration:g} s per level).\n\n"
            f"{table(on, off, offline_speed)}\n\n"
            f"Offline greedy decoding at batch 64 (one thread, no HTTP, the same sentences): {offline_speed:.1f} "
            f"sentences/s, the mean of {' / '.join(f'{speed:.1f}' for speed, _ in speeds)} before, between and "
            f"after the two servers; {' / '.join(f'{cpu:.1f}' for _, cpu in speeds)} CPU ms per sentence. At batch 1 "
            f"(every 8th sentence): {alone[0]:.1f} sentences/s, {alone[1]:.1f} CPU ms per sentence, so batching can "
            f"gain at most about {alone[1] / (sum(cpu for _, cpu in speeds) / len(speeds)):.1f}x in CPU per "
            f"sentence with this model on this machine. Batching on against off: "
            f"{ratios}. Server memory after 1,000 requests: {memory[0] / 2**20:.0f} MiB; after "
            f"{args.memory_requests:,}: {memory[1] / 2**20:.0f} MiB ({(memory[1] - memory[0]) / memory[0]:+.1%}). "
            f"Bad requests during the 8-client level ({len(BAD_REQUESTS)} kinds): {tally['4xx']} answered 4xx, "
            f"{tally['5xx']} 5xx, {tally['errors']} dropped; server alive afterwards: "
            f"{'yes' if tally['alive'] else 'NO'}.")


if __name__ == "__main__":
    main()
