"""Restart after a crash: SIGKILL a whole `dvc repro` process group in the middle of a stage,
rerun it, and check that finished stages are not recomputed and that the final outputs are
byte-identical to an unbroken run's. The DAG is the project's four ingest stages on a
three-screenplay slice of the shared data, in a temporary git repo."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from orchestration_harness import BIN, dag_repo, prefect_env, prefect_server, started, wait_until  # noqa: F401

STAGES = ("ingest_tropes", "ingest_descriptions", "ingest_screenplays", "embed_descriptions")
KILLED_STAGE = "embed_descriptions"  # the longest task: loads MiniLM, then encodes
KILLED_TASK = "update_cache"  # its library call, run as a Prefect task (flows/embed_descriptions.py)
MOVIES = {"The Princess Bride", "Snatch", "Up"}  # 11 trope lines, 3 scripts of ~200 kB
OUTPUTS = (
    "data/characters.parquet",
    "data/tropes.parquet",
    "data/snippets_screenplays.parquet",
    "metrics/ingest.json",
    "data/embeddings/descriptions.parquet",
)


def rows_for_movies(source: Path, movie_column: str) -> str:
    header, *rows = source.read_text().splitlines(keepends=True)
    column = header.rstrip("\n").split("\t").index(movie_column)
    return header + "".join(row for row in rows if row.rstrip("\n").split("\t")[column] in MOVIES)


def tiny_data(shared: Path, root: Path) -> None:
    """The shared data's layout, holding only what concerns MOVIES."""
    clusters = [
        line
        for line in (shared / "cmu_tvtropes/tvtropes.clusters.txt").read_text().splitlines(keepends=True)
        if json.loads(line.split("\t", 1)[1])["movie"] in MOVIES
    ]
    tropes = {line.split("\t", 1)[0] for line in clusters}
    descriptions = [
        line
        for line in (shared / "tvtropes_descriptions/trope_descriptions.jsonl").read_text().splitlines(keepends=True)
        if json.loads(line)["trope"] in tropes
    ]
    for relative, text in [
        ("cmu_tvtropes/tvtropes.clusters.txt", "".join(clusters)),
        ("tvtropes_descriptions/trope_descriptions.jsonl", "".join(descriptions)),
        ("imsdb_scripts/movie_script_map.tsv", rows_for_movies(shared / "imsdb_scripts/movie_script_map.tsv", "movie")),
        ("imsdb_scripts/cmu_character_matches.tsv", rows_for_movies(shared / "imsdb_scripts/cmu_character_matches.tsv", "movie")),
    ]:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    script_map = (root / "imsdb_scripts/movie_script_map.tsv").read_text().splitlines()[1:]
    (root / "imsdb_scripts/scripts").mkdir()
    for row in script_map:
        script = row.split("\t")[1]
        shutil.copy(shared / "imsdb_scripts" / script, root / "imsdb_scripts" / script)
    assert len(clusters) == 11 and len(script_map) == 3


def ingest_repo(path: Path, shared: Path) -> Path:
    path.mkdir()
    tiny_data(shared, path / "tiny-data")
    return dag_repo(path, list(STAGES), "tiny-data")


def dvc(repo: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([BIN / "dvc", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"dvc {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def ran(dvc_output: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", dvc_output)


def group_is_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.slow
def test_killed_repro_resumes_without_recomputing_finished_stages(tmp_path, shared_data, prefect_server):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    api, home = prefect_server
    env = prefect_env(home, PREFECT_API_URL=api)  # one server for every stage: no start-up per stage
    unbroken = ingest_repo(tmp_path / "unbroken", shared_data)
    broken = tmp_path / "broken"
    shutil.copytree(unbroken, broken)  # same code and data, even if the project changes meanwhile

    assert ran(dvc(unbroken, env, "repro").stdout) == list(STAGES)

    log = tmp_path / "broken-repro.log"
    with started([BIN / "dvc", "repro"], env, log, broken) as repro, temporary_settings({PREFECT_API_URL: api}):
        with get_client(sync_client=True) as client:
            wait_until(
                lambda: any(
                    run.name.startswith(KILLED_TASK) and run.state_name == "Running"
                    for run in client.read_task_runs()
                ),
                120,
                f"{KILLED_STAGE} task running",
                repro,
                log,
            )
        os.killpg(repro.pid, signal.SIGKILL)
        repro.wait(timeout=10)
        wait_until(lambda: group_is_gone(repro.pid), 10, "killed process group gone")
    assert ran(log.read_text()) == list(STAGES)
    assert not (broken / "data/embeddings/descriptions.parquet").exists(), "the kill came after the stage's write"
    finished = {out: (broken / out).stat().st_mtime_ns for out in OUTPUTS[:4]}

    rerun = dvc(broken, env, "repro").stdout
    assert ran(rerun) == [KILLED_STAGE]
    for stage in STAGES[:3]:
        assert f"Stage '{stage}' didn't change, skipping" in rerun
    assert {out: (broken / out).stat().st_mtime_ns for out in OUTPUTS[:4]} == finished
    for out in OUTPUTS:
        assert (broken / out).read_bytes() == (unbroken / out).read_bytes(), out
    assert "Data and pipelines are up to date" in dvc(broken, env, "status").stdout
