"""What orchestration costs, on the real ingest_tropes stage and the shared data:

1. Prefect's share of the stage's wall time, against calling the stage's library function
   directly: in one process (first flow call, which starts Prefect's temporary server; later
   calls), and as DVC runs a stage, a fresh `python -m flows.ingest_tropes` process, with the
   temporary server or a running one (what `personas repro` gives every stage).
2. `dvc repro` with nothing to do (and `dvc status`) in a temporary repo holding the four
   ingest stages on the full shared data, after one full run.

    .venv/bin/python benchmarks/bench_orchestration.py [--repeats 5]

Appends a table to benchmarks/RESULTS.md. Everything runs in a temporary folder."""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the loopback Prefect server and repo builder of the tests

from orchestration_harness import BIN, dag_repo, prefect_env, running_prefect_server  # noqa: E402

SHARED_DATA = ROOT.parent / "shared" / "data"
INGEST_STAGES = ["ingest_tropes", "ingest_descriptions", "ingest_screenplays", "embed_descriptions"]
CHARACTERS = "data/characters.parquet"
DIRECT_CALL = (
    "from flows.lib.config import data_path, load_params, out_path; from flows.lib.cmu_tropes import ingest_tropes; "
    "from flows.lib.schemas import CLUSTERS; from flows.lib.splits import split_settings; "
    "import prefect; "  # the stage module imports Prefect too: the flow's share is what Prefect does, not its import
    "params = load_params(); "
    "ingest_tropes(data_path(params, *CLUSTERS), out_path(params, 'characters'), split_settings(params))"
)
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
RESULTS_HEADER = "# Benchmark results\n\nAppend-only: each script adds its figures with date, machine and command.\n"


def seconds(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def median_seconds(action, repeats: int, before=lambda: None) -> float:
    samples = []
    for _ in range(repeats):
        before()
        samples.append(seconds(action))
    return statistics.median(samples)


def in_one_process(workdir: Path, repeats: int) -> dict[str, float]:
    """Direct calls and flow calls of ingest_tropes in this process (PREFECT_HOME in tmp)."""
    os.chdir(workdir)
    from flows.ingest_tropes import ingest_tropes_flow
    from flows.lib.cmu_tropes import ingest_tropes
    from flows.lib.config import data_path, load_params, out_path
    from flows.lib.schemas import CLUSTERS
    from flows.lib.splits import split_settings

    params = load_params()
    clusters, output, split = data_path(params, *CLUSTERS), out_path(params, "characters").resolve(), split_settings(params)
    remove_output = lambda: output.unlink(missing_ok=True)  # noqa: E731  (forces a recompute)
    return {
        "direct call": median_seconds(lambda: ingest_tropes(clusters, output, split), repeats, remove_output),
        "first flow call (starts the temporary server)": median_seconds(ingest_tropes_flow, 1, remove_output),
        "later flow calls": median_seconds(ingest_tropes_flow, repeats, remove_output),
    }


def fresh_processes(workdir: Path, env: dict[str, str], api: str, repeats: int) -> dict[str, float]:
    """One process per call, as `dvc repro` runs a stage."""
    remove_output = lambda: (workdir / CHARACTERS).unlink(missing_ok=True)  # noqa: E731

    def run(*command: str, **extra: str):
        return lambda: subprocess.run(command, cwd=workdir, env={**env, **extra}, check=True, capture_output=True)

    python = str(BIN / "python")
    return {
        "direct call": median_seconds(run(python, "-c", DIRECT_CALL), repeats, remove_output),
        "flow, temporary server": median_seconds(run(python, "-m", "flows.ingest_tropes"), repeats, remove_output),
        "flow, running server": median_seconds(run(python, "-m", "flows.ingest_tropes", PREFECT_API_URL=api), repeats, remove_output),
    }


def dvc_noop(repo: Path, env: dict[str, str], repeats: int) -> dict[str, float]:
    def dvc(*args: str):
        return lambda: subprocess.run([BIN / "dvc", *args], cwd=repo, env=env, check=True, capture_output=True)

    return {
        "full `dvc repro` of the 4 ingest stages (running server)": seconds(dvc("repro")),
        "no-op `dvc repro`": median_seconds(dvc("repro"), repeats),
        "`dvc status`": median_seconds(dvc("status"), repeats),
    }


def machine() -> str:
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = os.getloadavg()[0]
    return f"{os.cpu_count()}-core CPU ({platform.processor() or platform.machine()}), {memory_gib:.0f} GiB, load {load:.1f} at start (shared with other jobs)"


def report(command: str, host: str, repeats: int, one: dict, fresh: dict, noop: dict) -> str:
    def share(total: float, direct: float) -> str:
        return f"{(total - direct) / total:.0%}"

    lines = [
        f"\n## Orchestration overhead ({datetime.now().astimezone():%Y-%m-%d %H:%M %Z})\n",
        f"Machine: {host}. Command: `{command}`. Medians of {repeats} runs unless said otherwise; "
        "stage: ingest_tropes on the shared data (501 trope lines).\n",
        "| in one process | seconds | Prefect's share |",
        "|---|---|---|",
    ]
    for name, value in one.items():
        shown = "" if name == "direct call" else share(value, one["direct call"])
        lines.append(f"| {name} | {value:.3f} | {shown} |")
    lines += ["", "| one process per stage run (as `dvc repro` does) | seconds | Prefect's share |", "|---|---|---|"]
    for name, value in fresh.items():
        shown = "" if name == "direct call" else share(value, fresh["direct call"])
        lines.append(f"| {name} | {value:.2f} | {shown} |")
    fixed_cost = fresh["flow, running server"] - fresh["direct call"]
    lines.append(f"\nWith a running server a stage process pays {fixed_cost:.2f} s for being a Prefect flow "
                 f"(temporary server: {fresh['flow, temporary server'] - fresh['direct call']:.2f} s).")
    lines += ["", "| DVC, temporary repo | seconds |", "|---|---|"]
    lines += [f"| {name} | {value:.2f} |" for name, value in noop.items()]
    lines.append(
        "\nShares are (flow - direct) / flow. The direct process imports Prefect too. The full DVC run is one sample."
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    command = " ".join([".venv/bin/python", "benchmarks/bench_orchestration.py", *sys.argv[1:]])
    host = machine()
    with tempfile.TemporaryDirectory(prefix="bench-orchestration-") as tmp:
        tmp = Path(tmp)
        workdir, repo = tmp / "stage", tmp / "repo"
        dag_repo(workdir, ["ingest_tropes"], str(SHARED_DATA))
        dag_repo(repo, INGEST_STAGES, str(SHARED_DATA))
        in_process_home = tmp / "in-process-home"
        in_process_home.mkdir()  # the temporary server's database lives there
        os.environ.update(prefect_env(in_process_home))  # before Prefect's settings load
        one = in_one_process(workdir, args.repeats)
        with running_prefect_server(tmp) as (api, home):
            env = prefect_env(home)
            fresh = fresh_processes(workdir, env, api, args.repeats)
            noop = dvc_noop(repo, {**env, "PREFECT_API_URL": api}, args.repeats)
    text = report(command, host, args.repeats, one, fresh, noop)
    if not RESULTS.exists():
        RESULTS.write_text(RESULTS_HEADER)
    with open(RESULTS, "a") as results:
        results.write(text)
    print(text)


if __name__ == "__main__":
    main()
