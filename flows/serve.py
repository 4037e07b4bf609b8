"""`personas serve`: register the project's deployments with a Prefect server and run them
in this process. A weekly re-crawl refreshes the crawled pages, then `dvc repro` reruns
only the stages whose inputs changed; training runs on demand for a chosen variant. Each step is
the project's own command (`personas crawl`, `dvc repro`, `personas train`) run in the repo as a
subprocess, so serving imports no stage."""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prefect import flow, serve, task
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.schedules import Cron, Schedule
from prefect.settings import PREFECT_API_URL

from flows import PROJECT_ROOT
from flows.lib.config import PARAMS_FILE, load_params, param
from flows.lib.errors import PipelineInputError

RECRAWL_DEPLOYMENT = "weekly-recrawl"
TRAIN_DEPLOYMENT = "train-on-demand"


def run_command(args: list[str], repo: str) -> str:
    """Run one of the project's commands in `repo`; its stdout, or its last error line as the failure."""
    result = subprocess.run(args, cwd=repo, capture_output=True, text=True)
    if result.returncode != 0:
        error_lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise RuntimeError(f"{' '.join(args[2:])} failed in {repo}: {error_lines[-1] if error_lines else result.returncode}")
    return result.stdout


@task(name="dvc repro")
def dvc_repro(repo: str) -> list[str]:
    """Run `dvc repro` in `repo` and return the stages it ran; DVC skips the unchanged ones.
    Never cached: whether a stage is stale is DVC's call, made from dvc.lock each time."""
    return re.findall(r"Running stage '([^']+)'", run_command([sys.executable, "-m", "dvc", "repro"], repo))


@task(name="crawl")
def crawl(repo: str, spiders: list[str] | None) -> str:
    """`personas crawl` in `repo` (None: the spiders of its params crawl.spiders)."""
    chosen = [arg for spider in spiders or [] for arg in ("--spider", spider)]
    return run_command([sys.executable, "-m", "flows.cli", "crawl", *chosen], repo)


@flow(name="recrawl")
def recrawl_flow(spiders: list[str] | None = None, repo: str = str(PROJECT_ROOT)) -> list[str]:
    """Crawl again, then bring the DAG up to date. `spiders`: None crawls with params.yaml
    crawl.spiders; an empty list skips the crawl and only reruns what changed."""
    if spiders != []:
        crawl(repo, spiders)
    return dvc_repro(repo)


@flow(name="train_on_demand")
def train_on_demand(variant: str | None = None, seed: int | None = None, repo: str = str(PROJECT_ROOT)) -> str:
    """`personas train` in `repo` for one variant (default: params amn.variant) and seed."""
    options = [*(["--variant", variant] if variant else []), *(["--seed", str(seed)] if seed is not None else [])]
    return run_command([sys.executable, "-m", "flows.cli", "train", *options], repo)


def recrawl_schedule(params: dict) -> Schedule:
    """The weekly cron of params.yaml `schedule:`, checked here so that a typo fails as one
    line naming the param rather than inside the server."""
    cron, timezone = param(params, "schedule.recrawl_cron", str), param(params, "schedule.timezone", str)
    try:
        ZoneInfo(timezone)
    except (ValueError, ZoneInfoNotFoundError) as error:
        raise PipelineInputError(f"{PARAMS_FILE}: param 'schedule.timezone' is {timezone!r}, not an IANA time zone") from error
    try:
        return Cron(cron, timezone=timezone)
    except ValueError as error:
        raise PipelineInputError(f"{PARAMS_FILE}: param 'schedule.recrawl_cron' is {cron!r}, not a cron string") from error


def recrawl_deployment(params: dict, repo: Path) -> RunnerDeployment:
    return recrawl_flow.to_deployment(
        name=RECRAWL_DEPLOYMENT,
        schedules=[recrawl_schedule(params)],
        parameters={"repo": str(repo)},
        description="Re-crawl the sources, then `dvc repro`: only changed stages rerun.",
        entrypoint_type=EntrypointType.MODULE_PATH,
    )


def train_deployment(repo: Path) -> RunnerDeployment:
    return train_on_demand.to_deployment(
        name=TRAIN_DEPLOYMENT,
        parameters={"repo": str(repo)},
        description="Train one model variant on demand (parameters: variant, seed).",
        entrypoint_type=EntrypointType.MODULE_PATH,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--repo", type=Path, default=PROJECT_ROOT, help="project folder the flows run in (default: %(default)s)"
    )
    parser.add_argument(
        "--limit", type=int, default=1,
        help="flow runs at once (default: %(default)s, so a re-crawl's dvc repro and a training run never overlap)",
    )


def run(args: argparse.Namespace) -> int:
    if not PREFECT_API_URL.value():  # from the environment or the active Prefect profile
        raise PipelineInputError(
            "PREFECT_API_URL is not set: start `prefect server start --host 127.0.0.1 --port 4200` and "
            "`export PREFECT_API_URL=http://127.0.0.1:4200/api` (see docs/orchestration.md)"
        )
    repo = args.repo.resolve()
    params = load_params(repo / "params.yaml")
    os.chdir(repo)  # flow runs are subprocesses of this one and inherit its folder
    serve(recrawl_deployment(params, repo), train_deployment(repo), limit=args.limit)
    return 0
