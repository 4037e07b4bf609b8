"""`personas serve` against a real Prefect server on a free loopback port: the deployments
register with their schedule from params.yaml, and a triggered re-crawl run completes and
reruns only the DVC stages whose inputs changed."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from orchestration_harness import BIN, prefect_env, prefect_server, started, wait_until  # noqa: F401 (fixture)

from flows import PROJECT_ROOT
from flows.lib.errors import PipelineInputError
from flows.serve import recrawl_schedule

RECRAWL = "recrawl/weekly-recrawl"
TRAIN = "train_on_demand/train-on-demand"
# Two independent stages: after an edit to words.txt only `shout` is stale.
TINY_DAG = {
    "stages": {
        "shout": {
            "cmd": "python -c \"import pathlib; p = pathlib.Path('words.txt'); pathlib.Path('shout.txt').write_text(p.read_text().upper())\"",
            "deps": ["words.txt"],
            "outs": ["shout.txt"],
        },
        "count": {
            "cmd": "python -c \"import pathlib; pathlib.Path('count.txt').write_text(str(len(pathlib.Path('numbers.txt').read_text().split())))\"",
            "deps": ["numbers.txt"],
            "outs": ["count.txt"],
        },
    }
}


def dvc_repo(path: Path) -> Path:
    path.mkdir()
    subprocess.run([BIN / "dvc", "init", "--no-scm", "-q"], cwd=path, check=True)
    (path / "dvc.yaml").write_text(yaml.safe_dump(TINY_DAG, sort_keys=False))
    (path / "words.txt").write_text("to be or not to be\n")
    (path / "numbers.txt").write_text("1 2 3 4\n")
    shutil.copy(PROJECT_ROOT / "params.yaml", path / "params.yaml")  # the schedule comes from here
    return path


@pytest.mark.slow
def test_served_recrawl_completes_and_reruns_only_changed_stages(tmp_path, prefect_server):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    api, home = prefect_server
    repo = dvc_repo(tmp_path / "repo")
    params = yaml.safe_load((repo / "params.yaml").read_text())["schedule"]
    serve_log = tmp_path / "serve.log"
    with started([str(BIN / "personas"), "serve", "--repo", str(repo)], prefect_env(home, PREFECT_API_URL=api), serve_log, tmp_path) as serve, temporary_settings(
        {PREFECT_API_URL: api}
    ):
        with get_client(sync_client=True) as client:
            recrawl = wait_until(lambda: client.read_deployment_by_name(RECRAWL), 60, "recrawl deployment", serve, serve_log)
            # serve registers the deployments one after the other: wait for the second too
            train = wait_until(lambda: client.read_deployment_by_name(TRAIN), 60, "training deployment", serve, serve_log)
        (schedule,) = recrawl.schedules
        assert (schedule.schedule.cron, schedule.schedule.timezone) == (params["recrawl_cron"], params["timezone"])
        assert recrawl.parameters == {"repo": str(repo)}
        assert not train.schedules and {"variant", "seed"} <= set(train.parameter_openapi_schema["properties"])

        first = run_deployment(RECRAWL, parameters={"spiders": []}, timeout=60, poll_interval=1)
        assert first.state.is_completed(), f"{first.state}\n{serve_log.read_text()[-3000:]}"
        assert (repo / "shout.txt").read_text() == "TO BE OR NOT TO BE\n" and (repo / "count.txt").read_text() == "4"
        count_written = (repo / "count.txt").stat().st_mtime_ns

        (repo / "words.txt").write_text("brevity is the soul of wit\n")
        second = run_deployment(RECRAWL, parameters={"spiders": []}, timeout=60, poll_interval=1)
        assert second.state.is_completed(), f"{second.state}\n{serve_log.read_text()[-3000:]}"
        assert (repo / "shout.txt").read_text() == "BREVITY IS THE SOUL OF WIT\n"
        assert (repo / "count.txt").stat().st_mtime_ns == count_written, "an unchanged stage was rerun"
        assert serve.poll() is None, "the serve process must keep serving"


def test_serve_needs_a_server_address(monkeypatch, capsys):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.cli import main

    with temporary_settings({PREFECT_API_URL: None}):
        assert main(["serve"]) == 2
    assert "PREFECT_API_URL is not set" in capsys.readouterr().err


@pytest.mark.parametrize(
    "schedule, message",
    [
        ({"recrawl_cron": "0 3 * * 1", "timezone": "Mars/Olympus"}, "param 'schedule.timezone' is 'Mars/Olympus', not an IANA time zone"),
        ({"recrawl_cron": "every monday", "timezone": "UTC"}, "param 'schedule.recrawl_cron' is 'every monday', not a cron string"),
        ({"timezone": "UTC"}, "missing param 'schedule.recrawl_cron'"),
    ],
)
def test_a_bad_schedule_is_one_line_naming_the_param(schedule, message):
    with pytest.raises(PipelineInputError) as error:
        recrawl_schedule({"schedule": schedule})
    assert str(error.value) == f"params.yaml: {message}"


def test_the_schedule_comes_from_params():
    schedule = recrawl_schedule({"schedule": {"recrawl_cron": "30 4 * * 0", "timezone": "Europe/Paris"}})
    assert (schedule.cron, schedule.timezone) == ("30 4 * * 0", "Europe/Paris")
