"""What the orchestration tests and benchmarks share: a real Prefect server for flows run
across processes (served deployments, `dvc repro` stages) on a free loopback port with
PREFECT_HOME in tmp, processes ended by process group in bounded time, and a throwaway git +
DVC repo holding the project's code and some of its stages."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
import yaml

from flows import PROJECT_ROOT
from flows.lib.prefect_server import running_server, stop_group

BIN = Path(sys.executable).parent


def tail(log: Path | None) -> str:
    return log.read_text()[-3000:] if log and log.exists() else ""


def wait_until(condition, timeout: float, what: str, process: subprocess.Popen | None = None, log: Path | None = None):
    """Poll `condition` until it returns something truthy; fail early if `process` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: process exited ({process.returncode}); log:\n{tail(log)}")
        with suppress(Exception):  # not up yet
            result = condition()
            if result:
                return result
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout} s; log:\n{tail(log)}")


@contextmanager
def started(command: list, env: dict[str, str], log: Path, cwd: Path):
    """Start `command` as the leader of a new process group, output to `log`; stop it on exit."""
    with open(log, "w") as output:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process
    finally:
        stop_group(process)


def prefect_env(home: Path, **extra: str) -> dict[str, str]:
    """This environment without PREFECT_* settings, with a private PREFECT_HOME, offline."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        DVC_NO_ANALYTICS="1",
        PREFECT_LOGGING_LEVEL="WARNING",
        PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
        **extra,
    )
    return env


@contextmanager
def running_prefect_server(folder: Path):
    """A real `prefect server start` on a free port, its home and log in `folder`;
    yields (API URL, PREFECT_HOME)."""
    home = folder / "prefect-home"
    with running_server(folder / "server.log", prefect_env(home)) as api:
        yield api, home


@pytest.fixture
def prefect_server(tmp_path):
    with running_prefect_server(tmp_path) as (api, home):
        yield api, home


def dag_repo(path: Path, stages: list[str], data_root: str) -> Path:
    """A git + DVC repo with the project's code, the named stages of its dvc.yaml, and its
    params.yaml with data.root replaced. DVC runs stages with cwd = repo, so `python -m
    flows.<stage>` imports this copy of the code."""
    path.mkdir(exist_ok=True)
    for package in ("flows", "models"):
        shutil.copytree(PROJECT_ROOT / package, path / package, ignore=shutil.ignore_patterns("__pycache__", "dvc.yaml"))
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["data"]["root"] = data_root
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dag = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())["stages"]
    (path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {name: dag[name] for name in stages}}, sort_keys=False))
    subprocess.run(["git", "init", "-q"], cwd=path, check=True)
    subprocess.run([BIN / "dvc", "init", "-q"], cwd=path, check=True)
    return path
