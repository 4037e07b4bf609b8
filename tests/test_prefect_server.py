"""One Prefect server per run: `personas repro` starts it, DVC's stages use it, and it is gone
afterwards, also when the run fails."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flows.lib.prefect_server import healthy, shared_server
from orchestration_harness import BIN, prefect_env

pytestmark = pytest.mark.slow


def test_shared_server_serves_flows_of_child_processes_and_stops(tmp_path, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    flow_script = textwrap.dedent("""
        from prefect import flow
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL

        @flow(name="probe")
        def probe():
            return PREFECT_API_URL.value()

        print(probe())
    """)
    with shared_server(tmp_path / "server.log") as api_url:
        assert os.environ["PREFECT_API_URL"] == api_url and healthy(api_url)
        child = subprocess.run([sys.executable, "-c", flow_script], capture_output=True, text=True, timeout=300)
        assert child.returncode == 0, child.stderr[-2000:]
        assert child.stdout.strip().splitlines()[-1] == api_url  # the child's flow ran against this server
    assert "PREFECT_API_URL" not in os.environ
    assert not healthy(api_url)


def test_shared_server_stops_when_the_run_fails(tmp_path, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    with pytest.raises(RuntimeError, match="stage failed"):
        with shared_server(tmp_path / "server.log") as api_url:
            raise RuntimeError("stage failed")
    assert not healthy(api_url)


def test_shared_server_reuses_a_running_one(monkeypatch, tmp_path):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    with shared_server(tmp_path / "server.log") as api_url:
        assert api_url == "http://127.0.0.1:9/api"
    assert not (tmp_path / "server.log").exists()  # nothing was started


def personas_repro(tmp_path: Path, dvc_yaml: str) -> tuple[Path, subprocess.CompletedProcess]:
    """`personas repro` in a fresh git + DVC repo holding `dvc_yaml`; returns the repo and the run."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "dvc.yaml").write_text(textwrap.dedent(dvc_yaml))
    env = prefect_env(tmp_path / "home")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([BIN / "dvc", "init", "-q"], cwd=repo, check=True, env=env)
    return repo, subprocess.run([BIN / "personas", "repro"], cwd=repo, env=env, capture_output=True, text=True, timeout=600)


def test_personas_repro_gives_every_stage_one_server_and_stops_it(tmp_path):
    """A real `dvc repro` of two stages through `personas repro`: both see the same server."""
    repo, done = personas_repro(tmp_path, f"""
        stages:
          first:
            cmd: {sys.executable} -c "import os; open('first.txt', 'w').write(os.environ['PREFECT_API_URL'])"
            outs: [first.txt]
          second:
            cmd: {sys.executable} -c "import os; open('second.txt', 'w').write(os.environ['PREFECT_API_URL'])"
            deps: [first.txt]
            outs: [second.txt]
    """)
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = (repo / "first.txt").read_text(), (repo / "second.txt").read_text()
    assert first == second and first.startswith("http://127.0.0.1:")
    assert not healthy(first)
    assert (tmp_path / "home" / "server.log").exists()


def test_personas_repro_passes_dvc_failure_on_and_stops_the_server(tmp_path):
    repo, done = personas_repro(tmp_path, f"""
        stages:
          broken:
            cmd: {sys.executable} -c "import os, sys; open('url.txt', 'w').write(os.environ['PREFECT_API_URL']); sys.exit(3)"
    """)
    assert done.returncode != 0
    assert not healthy((repo / "url.txt").read_text())
