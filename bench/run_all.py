"""Run every benchmark script ``bench/bench_*.py`` in sequence (``make bench``: ``python -m bench.run_all``).

Each benchmark runs in its own process (so its peak RSS is its own) with the
arguments given here after ``--`` (e.g. ``python -m bench.run_all -- --scale 0.1``).
Exit code: 0 when every benchmark exited 0, else 1.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def discover() -> list[str]:
    """Module names of the benchmark scripts, in name order."""
    return [f"bench.{p.stem}" for p in sorted(HERE.glob("bench_*.py"))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run every bench/bench_*.py in sequence.")
    parser.add_argument("--only", action="append", default=[], help="Run only benchmarks whose name contains this (repeatable).")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="Arguments passed to every benchmark (after --).")
    options = parser.parse_args(argv)
    extra = options.args[1:] if options.args[:1] == ["--"] else options.args
    modules = [m for m in discover() if not options.only or any(o in m for o in options.only)]
    if not modules:
        print("no benchmarks found", file=sys.stderr)
        return 1
    failed = []
    for module in modules:
        print(f"=== {module} {' '.join(extra)}".rstrip(), flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", module, *extra], cwd=HERE.parent)
        print(f"=== {module}: exit {code} after {time.perf_counter() - start:.0f} s\n", flush=True)
        if code != 0:
            failed.append(module)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
