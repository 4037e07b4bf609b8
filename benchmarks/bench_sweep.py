"""Speed-up of the Table 2 sweep (flows/table2.py) from 1 to 2 local Dask workers.

Runs the real `table2_flow` on the project's data (data/ as built by `dvc repro`) for a small
sweep, `--variants` x `--seeds` trained for `--epochs` epochs, once per worker count, each in a
fresh temporary project folder (own params.yaml, artifacts and Prefect result storage, so nothing
comes from a cache). A warm-up flow starts Prefect's temporary server first, so that its start-up is
in no timed run. The wall time covers the whole flow: Dask cluster start, the runs, the summary.
Appends one line to benchmarks/RESULTS.md.

    python benchmarks/bench_sweep.py [--variants attn3] [--seeds 0,1,2,3] [--epochs 3] [--workers 1,2]
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "RESULTS.md"


def sweep_project(folder: Path, variants: list[str], seeds: list[int], epochs: int, workers: int) -> None:
    """A project folder whose params.yaml asks for this sweep, reading the built data/ of ROOT."""
    from flows.lib.config import data_path, load_params

    params = load_params(ROOT / "params.yaml")
    params["data"]["root"] = str(data_path(params).resolve())
    params["train"].update(max_epochs=epochs, threads=1)
    params["sweep"].update(variants=variants, seeds=seeds, dask_address=None, n_workers=workers, threads_per_worker=1)
    folder.mkdir(parents=True)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (folder / "data").symlink_to(ROOT / "data")


def timed_sweep(folder: Path) -> float:
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    from flows.table2 import table2_flow

    os.chdir(folder)
    os.environ["PREFECT_LOCAL_STORAGE_PATH"] = str(folder / "results")  # Dask workers inherit it
    with temporary_settings(updates={PREFECT_LOCAL_STORAGE_PATH: folder / "results"}):
        start = time.perf_counter()
        table2_flow()
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="attn3")
    parser.add_argument("--seeds", default="0,1,2,3")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    variants, seeds = args.variants.split(","), [int(s) for s in args.seeds.split(",")]
    worker_counts = [int(w) for w in args.workers.split(",")]

    from prefect import flow

    flow(name="warm_up")(lambda: None)()
    seconds: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for workers in worker_counts:
            folder = Path(scratch) / f"workers{workers}"
            sweep_project(folder, variants, seeds, args.epochs, workers)
            seconds[workers] = timed_sweep(folder)
            print(f"{workers} worker(s): {seconds[workers]:.1f} s", flush=True)
        os.chdir(ROOT)

    base = seconds[worker_counts[0]]
    timings = ", ".join(f"{w} worker(s) {s:.1f} s (speed-up {base / s:.2f}x)" for w, s in seconds.items())
    line = (
        f"- {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC | {platform.machine()} CPU, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f} at the end | `python benchmarks/bench_sweep.py --variants {args.variants} "
        f"--seeds {args.seeds} --epochs {args.epochs} --workers {args.workers}` | Table 2 sweep on a local Dask cluster, "
        f"{len(variants) * len(seeds)} runs of {args.epochs} epochs (torch 1 thread per worker), whole flow wall time: {timings}\n"
    )
    with RESULTS.open("a") as handle:
        handle.write(line)
    print(line, end="")


if __name__ == "__main__":
    main()
