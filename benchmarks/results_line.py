"""The RESULTS.md line of a CPU benchmark run (bench_gen, bench_pess): when, on what, the exact
command, then the figures and the process's peak memory."""
from __future__ import annotations

import platform
import resource
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def publish(command: str, threads: int, figures: str, append: bool) -> None:
    """Print the line, and append it to RESULTS.md when asked. `command` is what follows
    `.venv/bin/python`, e.g. "benchmarks/bench_gen.py --steps 10"."""
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    line = (
        f"- {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC | {platform.machine()} CPU, {threads} threads, "
        f"2-core machine shared with other jobs | `.venv/bin/python {command}` | {figures}; peak RSS {peak_gib:.1f} GiB"
    )
    print(line)
    if append:
        with open(RESULTS, "a") as handle:
            handle.write(line + "\n")
