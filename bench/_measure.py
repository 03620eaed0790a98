"""Shared helpers of the benchmarks: peak resident memory from /proc and a phase timer."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Iterator

GIB = 1024**3


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_rss_bytes() -> int:
    """Peak resident set size of this process (VmHWM) since start or the last :func:`reset_peak_rss`."""
    return _status_kib("VmHWM") * 1024


def rss_bytes() -> int:
    return _status_kib("VmRSS") * 1024


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux ``clear_refs`` 5); False when not permitted."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def gib(n: int) -> str:
    return f"{n / GIB:.2f} GiB"


@contextmanager
def phase(results: dict, name: str) -> Iterator[None]:
    """Time a phase and record its wall time and the peak RSS reached during it (``results[name]``)."""
    reset_peak_rss()
    start, cpu = time.perf_counter(), time.process_time()
    yield
    results[name] = {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu, "peak_rss": peak_rss_bytes()}


def load_average() -> str:
    """The 1-minute load average (other processes on the machine inflate wall times)."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "n/a"


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"
