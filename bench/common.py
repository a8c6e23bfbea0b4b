"""Helpers shared by the benchmark scripts: machine description, peak memory, and BENCHMARKS.md sections."""

from __future__ import annotations

import datetime
import os
import platform
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def machine() -> str:
    """CPU model, whether it computes in bf16 natively (what `train.precision=auto` picks), core count, Python and
    torch versions."""
    from seq2seq.utils.device import NATIVE_BF16_FLAGS, cpu_flags

    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        model = found.group(1).strip() if found else model
    native = [flag for flag in NATIVE_BF16_FLAGS if flag in cpu_flags(cpuinfo)]
    bf16 = f"with native bf16 ({', '.join(native)})" if native else "without native bf16"
    return (f"{model} {bf16}, {os.cpu_count()} cores, Python {platform.python_version()}, torch "
            f"{torch.__version__}, {platform.system()}")


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parent = int(stat[stat.rfind(")") + 2:].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            for line in (Path("/proc") / str(current) / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
        stack.extend(children.get(current, []))
    return total


def run_metered(command: list[str], log_path: Path, env: dict[str, str] | None = None) -> tuple[float, int, float]:
    """Run a command, sampling its process tree's memory; returns (start time, peak RSS bytes, wall seconds)."""
    start = time.time()
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        peak = [0]

        def sample() -> None:
            while process.poll() is None:
                peak[0] = max(peak[0], tree_rss_bytes(process.pid))
                time.sleep(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = process.wait()
        sampler.join()
    if code != 0:
        sys.exit(f"{command[0]} failed with exit code {code}; see {log_path}")
    return start, peak[0], time.time() - start


def write_section(title: str, body: str) -> None:
    """Replace (or append) the `## title` section of BENCHMARKS.md."""
    stamp = datetime.date.today().isoformat()
    section = f"## {title}\n\nMeasured {stamp} on {machine()}.\n\n{body.strip()}\n"
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(section + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    BENCHMARKS.write_text(text)
