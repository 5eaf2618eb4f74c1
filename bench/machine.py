"""What the benchmarks ran on, and how much memory a process peaked at."""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
from pathlib import Path


def percentile(values: list[float], q: int) -> float:
    """The q-th percentile (1–99), inclusive of the extremes, as every benchmark reports it."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def peak_rss_mb(pid: int) -> float:
    """VmHWM (the peak resident set) of a live process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


def describe() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"machine: {os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, "
            f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}")
