"""Screenplay parsing throughput over all bundled IMSDb scripts (each with its parse_mode).

    .venv/bin/python benchmarks/bench_screenplay.py [--repeats 3] [--append]

Prints MB/s per second of wall time and per second of CPU time (best of the repeats: the
machine is shared, so CPU time is the steadier figure) and, with --append, adds a line to
benchmarks/RESULTS.md."""
from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
import sys
import time

from flows import PROJECT_ROOT
from flows.lib.screenplay import cue_counts, parse_screenplay

SCRIPTS = PROJECT_ROOT.parent / "shared" / "data" / "imsdb_scripts"
RESULTS = PROJECT_ROOT / "benchmarks" / "RESULTS.md"
HEADER = "# Benchmark results\n\nMeasured by the scripts in benchmarks/; each line says when, where and how.\n\n"


def load_scripts() -> list[tuple[str, str]]:
    with open(SCRIPTS / "movie_script_map.tsv", encoding="utf-8") as handle:
        modes = {row["script_file"]: row["parse_mode"] for row in csv.DictReader(handle, delimiter="\t")}
    return [((SCRIPTS / file).read_text(encoding="utf-8", errors="replace"), mode) for file, mode in sorted(modes.items())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--append", action="store_true", help="append the figure to benchmarks/RESULTS.md")
    args = parser.parse_args()
    scripts = load_scripts()
    megabytes = sum(len(text.encode("utf-8")) for text, _ in scripts) / 1e6
    walls, cpus = [], []
    for _ in range(args.repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        blocks = sum(sum(cue_counts(parse_screenplay(text, mode)).values()) for text, mode in scripts)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    line = (
        f"screenplay parsing: {megabytes / min(cpus):.2f} MB per CPU second, {megabytes / min(walls):.2f} MB/s wall "
        f"({len(scripts)} scripts, {megabytes:.1f} MB, {blocks} dialogue blocks; best of {args.repeats}: "
        f"{min(cpus):.1f} s CPU, {min(walls):.1f} s wall; all wall times {', '.join(f'{t:.1f}' for t in walls)} s)"
    )
    print(line)
    if args.append:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        machine = f"{os.cpu_count()}-core {platform.machine()} CPU, {memory:.0f} GiB, Python {platform.python_version()}"
        command = ".venv/bin/python benchmarks/bench_screenplay.py " + " ".join(sys.argv[1:])
        if not RESULTS.exists():
            RESULTS.write_text(HEADER)
        with open(RESULTS, "a", encoding="utf-8") as handle:
            handle.write(f"- {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z} | {machine}, shared with "
                         f"other jobs (load average {os.getloadavg()[0]:.1f}) | `{command.strip()}` | {line}\n")


if __name__ == "__main__":
    main()
