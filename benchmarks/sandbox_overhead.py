"""Per-call overhead of the sandbox (rest_mcts.sandbox): wall seconds of `run_python` on a trivial program, one
call at a time and through `run_many`, under every isolation this machine can run. The program does almost nothing,
so the figures are the price of the sandbox plus one interpreter start. The bare interpreter start, unsandboxed, is
printed beside them for reference.

Usage: python benchmarks/sandbox_overhead.py [--runs 30] [--batch 32] [--workers 4]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rest_mcts.sandbox import SandboxLimits, SandboxUnavailable, resolve_isolation, run_many, run_python  # noqa: E402

PROGRAM = "print(6 * 7)\n"


def median_and_range(seconds: list[float]) -> str:
    return f"{statistics.median(seconds):.4f} (min {min(seconds):.4f}, max {max(seconds):.4f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="Timed calls per figure (default %(default)s).")
    parser.add_argument("--batch", type=int, default=32, help="Programs per run_many call (default %(default)s).")
    parser.add_argument("--workers", type=int, default=4, help="run_many's workers (default %(default)s).")
    args = parser.parse_args()
    limits = SandboxLimits(timeout_seconds=10)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")
    print(f"median seconds per call over {args.runs} runs (after one warm-up call)")
    interpreter = sys.executable
    for isolation in ("bwrap", "fallback"):
        try:
            plan = resolve_isolation(isolation)
        except SandboxUnavailable as problem:
            print(f"{isolation:>9}: cannot run here ({problem})")
            continue
        interpreter = plan.python
        run_python(PROGRAM, limits, isolation=isolation)
        single = []
        for _ in range(args.runs):
            started = time.perf_counter()
            result = run_python(PROGRAM, limits, isolation=isolation)
            single.append(time.perf_counter() - started)
            assert result.status == "ok", result
        batched = []
        for _ in range(max(1, args.runs // 10)):
            started = time.perf_counter()
            results = run_many([PROGRAM] * args.batch, limits, workers=args.workers, isolation=isolation)
            batched.append((time.perf_counter() - started) / args.batch)
            assert all(result.status == "ok" for result in results)
        print(f"{isolation:>9} ({plan.launcher}, {plan.python}): one at a time {median_and_range(single)}; "
              f"run_many x{args.batch}, {args.workers} workers {median_and_range(batched)}")
    bare = []
    for _ in range(args.runs):
        started = time.perf_counter()
        subprocess.run([interpreter, "-c", PROGRAM], check=True, capture_output=True)
        bare.append(time.perf_counter() - started)
    print(f"bare {interpreter} start, no sandbox: {median_and_range(bare)}")


if __name__ == "__main__":
    main()
