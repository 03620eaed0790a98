"""Measuring the scale benchmark: a memory-capped child process, peak memory of Dask workers, growth exponents.

- :func:`run_capped` runs one phase in a child process and kills it (by its
  pid) as soon as its resident memory passes a cap, so a single process that
  would not fit never pushes the shared machine into swapping or the kernel's
  OOM killer; its CPU time comes from ``wait4``'s resource usage, its peak RSS from
  the high-water mark of its own address space (``VmHWM``), sampled with the cap
  check (``ru_maxrss`` would also count the forking parent's memory at fork time).
- :class:`PeakSampler` samples the resident memory of a set of processes (the
  LocalCluster's workers, found anew at every sample, so a worker the nanny
  restarts is counted too) every ``interval`` seconds and keeps the peak per
  process; the CPU time of each is read from ``psutil`` at the end.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import psutil

GIB = 1024**3


@dataclass
class ChildResult:
    """What a capped child did: wall and CPU seconds, peak RSS (bytes), whether the cap killed it, its JSON report."""

    seconds: float
    cpu_seconds: float
    peak_rss: int
    killed_at_cap: bool
    returncode: int
    report: dict = field(default_factory=dict)


def run_capped(argv: list[str], *, cap_bytes: int, report_path: Path, interval: float = 0.1, env: dict | None = None) -> ChildResult:
    """Run ``argv`` (which writes a JSON report to ``report_path``); kill it if its RSS passes ``cap_bytes``.

    The child's own resident memory is sampled every ``interval`` seconds (it
    allocates in the hundreds of MB per second at most, so the overshoot past
    the cap is bounded by what it can allocate in one interval).
    """
    report_path.unlink(missing_ok=True)
    start = time.perf_counter()
    child = subprocess.Popen(argv, env=env)
    killed = threading.Event()
    done = threading.Event()
    peak = [0]

    def watch() -> None:
        proc = psutil.Process(child.pid)
        while not done.is_set():
            try:
                rss = proc.memory_info().rss
                peak[0] = max(peak[0], rss, _high_water_mark(child.pid))
                if rss > cap_bytes:
                    killed.set()
                    child.kill()
                    return
            except (psutil.Error, OSError):
                return
            time.sleep(interval)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    _, status, usage = os.wait4(child.pid, 0)
    done.set()
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return ChildResult(seconds, usage.ru_utime + usage.ru_stime, peak[0], killed.is_set(), child.returncode, report)


def _high_water_mark(pid: int) -> int:
    """Peak resident bytes of ``pid``'s current address space (``VmHWM``; reset by ``exec``), 0 where unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class PeakSampler:
    """Peak RSS per process of ``pids()`` sampled every ``interval`` s in a background thread, with CPU time per process."""

    def __init__(self, pids: Callable[[], list[int]], *, interval: float = 0.25) -> None:
        self._pids, self._interval = pids, interval
        self.peak: dict[int, int] = {}
        self._cpu_start: dict[int, float] = {}
        self._cpu_last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "PeakSampler":
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def _sample(self) -> None:
        for pid in self._pids():
            try:
                proc = psutil.Process(pid)
                rss = proc.memory_info().rss
                times = proc.cpu_times()
            except psutil.Error:
                continue
            cpu = times.user + times.system
            self.peak[pid] = max(self.peak.get(pid, 0), rss)
            self._cpu_start.setdefault(pid, cpu)
            self._cpu_last[pid] = cpu

    @property
    def cpu_seconds(self) -> float:
        """CPU seconds the sampled processes spent between the first and the last sample of each."""
        return sum(self._cpu_last[p] - self._cpu_start[p] for p in self._cpu_last)

    @property
    def max_peak(self) -> int:
        return max(self.peak.values(), default=0)


def descendants(pid: int | None = None) -> list[psutil.Process]:
    try:
        return psutil.Process(pid or os.getpid()).children(recursive=True)
    except psutil.Error:
        return []


def growth_exponent(n1: float, v1: float, n2: float, v2: float) -> float | None:
    """``b`` in ``v ~ n^b`` between two sizes (1 = linear); ``None`` when undefined."""
    if min(n1, n2, v1, v2) <= 0 or n1 == n2:
        return None
    return math.log(v2 / v1) / math.log(n2 / n1)


def predict(sizes: list[float], values: list[float], n: float) -> float | None:
    """Power-law prediction of the value at size ``n`` from the two largest measured sizes (linear from one)."""
    points = sorted((s, v) for s, v in zip(sizes, values, strict=True) if v and v > 0)
    if not points:
        return None
    if len(points) == 1:
        s, v = points[0]
        return v * n / s
    (s1, v1), (s2, v2) = points[-2], points[-1]
    b = growth_exponent(s1, v1, s2, v2)
    return v2 * (n / s2) ** b if b is not None else None


def child_argv(*args: str) -> list[str]:
    """This interpreter running ``bench.bench_scale`` with ``args`` (the child inherits ``nice``)."""
    return [sys.executable, "-m", "bench.bench_scale", *args]
