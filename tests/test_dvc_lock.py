"""Two `dvc repro` at once in one repo: the second stops with DVC's lock error, and neither
the lock nor the outputs are left damaged for the next `dvc repro` / `dvc status`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

BIN = Path(sys.executable).parent
# While a stage's command runs, DVC holds per-path read/write locks (.dvc/tmp/rwlock) rather
# than the repo-wide lock; a second repro trips on them with this error, naming the holder.
LOCK_ERROR = "ERROR: failed to reproduce 'total': '{out}' is busy, it is being blocked by:\n  (PID {pid}): {dvc} repro"
# The stage announces that it runs, then holds the repo lock until the test lets it go.
HOLDING_STAGE = """\
import pathlib, time
pathlib.Path("started").touch()
deadline = time.time() + 60
while not pathlib.Path("release").exists() and time.time() < deadline:
    time.sleep(0.05)
numbers = pathlib.Path("numbers.txt").read_text().split()
pathlib.Path("total.txt").write_text(str(sum(map(int, numbers))))
"""
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}


def run_dvc(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([BIN / "dvc", *args], cwd=repo, env=ENV, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_second_repro_is_refused_by_the_lock_and_nothing_is_corrupted(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run([BIN / "dvc", "init", "--no-scm", "-q"], cwd=repo, check=True)
    (repo / "numbers.txt").write_text("1 2 3 4\n")
    (repo / "total.py").write_text(HOLDING_STAGE)
    stage = {"cmd": "python total.py", "deps": ["numbers.txt", "total.py"], "outs": ["total.txt"]}
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"total": stage}}))

    first = subprocess.Popen([BIN / "dvc", "repro"], cwd=repo, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (repo / "started").exists():
            assert first.poll() is None and time.monotonic() < deadline, first.stdout.read() if first.poll() is not None else "stage did not start"
            time.sleep(0.1)
        second = run_dvc(repo, "repro")
        (repo / "release").touch()
        first_output, _ = first.communicate(timeout=120)
    finally:
        first.kill()

    assert second.returncode != 0
    assert LOCK_ERROR.format(out=repo / "total.txt", pid=first.pid, dvc=BIN / "dvc") in second.stderr, second.stderr
    assert first.returncode == 0, first_output
    assert (repo / "total.txt").read_text() == "10"
    assert yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["total"]["outs"][0]["path"] == "total.txt"
    assert not any(json.loads((repo / ".dvc/tmp/rwlock").read_text()).values()), "a path lock was left behind"

    status = run_dvc(repo, "status")
    assert status.returncode == 0 and "Data and pipelines are up to date" in status.stdout, status.stdout + status.stderr
    again = run_dvc(repo, "repro")
    assert again.returncode == 0 and "didn't change, skipping" in again.stdout, again.stdout + again.stderr
    (repo / "numbers.txt").write_text("5 5\n")
    changed = run_dvc(repo, "repro")
    assert changed.returncode == 0 and "Running stage 'total'" in changed.stdout, changed.stdout + changed.stderr
    assert (repo / "total.txt").read_text() == "10"
