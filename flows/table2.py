"""Stage `table2` (sweeps/dvc.yaml, out of the default DAG: `dvc repro sweeps/dvc.yaml`): the paper's
Table 2, i.e. every AMN variant (`sweep.variants`) x `sweep.seeds`, each run a Prefect task on a
Dask cluster: a local one (`sweep.n_workers` processes) unless `sweep.dask_address` names a
running scheduler, whose workers must see this project folder at the same path.

Each run trains like the `train` stage (flows/lib/amn_training.py, params `amn` and `train`) into
<paths.table2_dir>/<variant>/seed<k>/ (resumable checkpoints; a finished run comes back from the
Prefect cache, the one stage that keeps one). Writes paths.table2_metrics: per variant, mean and
standard deviation over seeds of test accuracy, weighted P/R/F1, macro-F1. Params: `sweep`,
`amn`, `train`, `embed.model`."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from prefect import flow
from prefect.context import FlowRunContext
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect_dask import DaskTaskRunner

from flows.lib.amn_training import SOURCE_FILES, run_training_job, training_job
from flows.lib.config import PARAMS_FILE, load_params, out_path, param, write_json
from flows.lib.errors import PipelineInputError
from flows.lib.orchestration import fingerprint, refreshed_if_missing, stage_task

METRICS = ("accuracy", "precision", "recall", "f1", "f1_macro")


def job_fingerprint(job: dict[str, Any]) -> dict[str, str]:
    """Content hashes of a job's input files and of the model code, so that the cache key follows both."""
    inputs = (job["snippets_path"], job["characters_path"], job["tropes_path"], job["descriptions_cache"])
    return fingerprint(*inputs, *SOURCE_FILES)


@stage_task
def table2_run(job: dict[str, Any], inputs_hash: dict[str, str], out_dir: str) -> dict[str, Any]:
    return run_training_job(**job, out_dir=out_dir, progress=False)


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """variant -> {metric: {mean, std}} over its seeds (sample std; 0 for a single seed)."""
    table: dict[str, Any] = {}
    for variant in dict.fromkeys(run["variant"] for run in runs):
        mine = [run for run in runs if run["variant"] == variant]
        row: dict[str, Any] = {"seeds": [run["seed"] for run in mine]}
        for metric in METRICS:
            values = np.array([run["test"][metric] for run in mine])
            row[metric] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0}
        table[variant] = row
    return table


def sweep_plan(params: dict[str, Any]) -> tuple[list[str], list[int]]:
    presets = list(param(params, "amn.variants", dict))
    variants = param(params, "sweep.variants", (str, list))
    if variants == "all":
        variants = presets
    elif isinstance(variants, str):
        raise PipelineInputError(f"{PARAMS_FILE}: param 'sweep.variants' is {variants!r}; use 'all' or a list of names")
    seeds = param(params, "sweep.seeds", list)
    if not seeds or not all(isinstance(seed, int) for seed in seeds):
        raise PipelineInputError(f"{PARAMS_FILE}: param 'sweep.seeds' must be a list of integers, got {seeds!r}")
    return variants, seeds


def dask_runner(params: dict[str, Any]) -> DaskTaskRunner:
    address = param(params, "sweep.dask_address", (str, type(None)))
    if address:
        return DaskTaskRunner(address=address)
    workers = param(params, "sweep.n_workers", int)
    return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True})


@flow(name="table2_sweep")
def table2_sweep(jobs: list[dict[str, Any]], out_root: str) -> list[dict[str, Any]]:
    futures = []
    for job in jobs:
        out_dir = Path(out_root) / job["variant"] / f"seed{job['settings']['seed']}"
        # A cached result only stands while the run's model file does.
        run = refreshed_if_missing(table2_run, [out_dir / "model.pt"])
        futures.append(run.submit(job, job_fingerprint(job), str(out_dir)))
    return [future.result() for future in futures]


@flow(name="table2_flow")
def table2_flow() -> dict[str, Any]:
    params = load_params()
    variants, seeds = sweep_plan(params)
    threads = param(params, "sweep.threads_per_worker", int)
    jobs = []
    for variant in variants:
        for seed in seeds:
            job = training_job(params, variant, seed)
            job.update({key: str(Path(job[key]).resolve()) for key in job if key.endswith(("_path", "_cache"))})
            job["settings"] = {**job["settings"], "threads": threads}
            jobs.append(job)
    # Dask workers must report to this run's API; an ephemeral server's URL is not in the settings
    # they inherit, and without it each worker would start a server of its own.
    with temporary_settings({PREFECT_API_URL: str(FlowRunContext.get().client.api_url)}):
        runs = table2_sweep.with_options(task_runner=dask_runner(params))(jobs, str(out_path(params, "table2_dir").resolve()))
    table = summarise(runs)
    write_json(table, out_path(params, "table2_metrics"))
    return table


if __name__ == "__main__":
    # Run the flow of the importable module, not of __main__: Dask workers get tasks defined in
    # __main__ pickled by value, without the source file that the cache key hashes.
    from flows.table2 import table2_flow as importable_flow

    importable_flow()
