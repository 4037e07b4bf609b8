"""A real `dvc repro` of the ingest stages in a temporary git repo, on a tiny slice of the
shared data: outputs appear, a second repro is a no-op, and a changed ingest.window reruns
only ingest_screenplays."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from flows import PROJECT_ROOT

pytestmark = pytest.mark.slow

MOVIES = ("Election", "Clueless", "Star Wars Episode I: The Phantom Menace", "The Shadow")
STAGES = ("ingest_tropes", "ingest_descriptions", "ingest_screenplays", "embed_descriptions")
OUTPUTS = ("data/characters.parquet", "data/tropes.parquet", "data/snippets_screenplays.parquet",
           "data/embeddings/descriptions.parquet", "metrics/ingest.json")


def tsv_rows_for(path: Path, movies) -> str:
    header, *rows = path.read_text(encoding="utf-8").splitlines()
    column = header.split("\t").index("movie")
    return "\n".join([header] + [row for row in rows if row.split("\t")[column] in movies]) + "\n"


def build_slice(shared: Path, root: Path) -> None:
    """A few clusters lines, their tropes' descriptions, and their three scripts."""
    lines = [line for line in (shared / "cmu_tvtropes" / "tvtropes.clusters.txt").read_text().splitlines()
             if any(f'"movie": "{movie}"' in line for movie in MOVIES)]
    (root / "cmu_tvtropes").mkdir(parents=True)
    (root / "cmu_tvtropes" / "tvtropes.clusters.txt").write_text("\n".join(lines) + "\n")
    tropes = {line.split("\t")[0] for line in lines}
    (root / "tvtropes_descriptions").mkdir()
    descriptions = (shared / "tvtropes_descriptions" / "trope_descriptions.jsonl").read_text().splitlines()
    (root / "tvtropes_descriptions" / "trope_descriptions.jsonl").write_text(
        "\n".join(line for line in descriptions if json.loads(line)["trope"] in tropes) + "\n")
    source, target = shared / "imsdb_scripts", root / "imsdb_scripts"
    (target / "scripts").mkdir(parents=True)
    script_map = tsv_rows_for(source / "movie_script_map.tsv", MOVIES)
    (target / "movie_script_map.tsv").write_text(script_map)
    for row in script_map.splitlines()[1:]:
        shutil.copy(source / row.split("\t")[1], target / "scripts")
    (target / "cmu_character_matches.tsv").write_text(tsv_rows_for(source / "cmu_character_matches.tsv", MOVIES))


def dvc(repo: Path, env: dict, *args: str) -> str:
    dvc_bin = str(Path(sys.executable).parent / "dvc")
    result = subprocess.run([dvc_bin, *args], cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def test_dvc_repro_runs_caches_and_follows_params(shared_data, tmp_path):
    build_slice(shared_data, tmp_path / "shared" / "data")
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(PROJECT_ROOT / "dvc.yaml", repo)
    for package in ("flows", "models"):  # code deps of the stages; `python -m flows.x` imports these
        shutil.copytree(PROJECT_ROOT / package, repo / package, ignore=shutil.ignore_patterns("__pycache__"))
    params = (PROJECT_ROOT / "params.yaml").read_text()
    assert re.search(r"(?m)^  root: ", params) and re.search(r"(?m)^  window: \d+", params)
    (repo / "params.yaml").write_text(re.sub(r"(?m)^  root: \S+", "  root: ../shared/data", params))
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PERSONAS_PARAMS": str(repo / "params.yaml"),
    }
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    dvc(repo, env, "init", "-q")

    first = dvc(repo, env, "repro", "embed_descriptions", "ingest_screenplays")
    assert ran(first) == set(STAGES)
    assert all((repo / output).exists() for output in OUTPUTS)
    metrics = json.loads((repo / "metrics" / "ingest.json").read_text())
    assert metrics["characters"]["matched"] > 0 and metrics["scripts"]["parsed"] == 3
    assert '"matched"' in dvc(repo, env, "metrics", "show", "--json")

    second = dvc(repo, env, "repro", "embed_descriptions", "ingest_screenplays")
    assert ran(second) == set() and "up to date" in second

    before = (repo / "data" / "characters.parquet").read_bytes()
    params = (repo / "params.yaml").read_text()
    (repo / "params.yaml").write_text(re.sub(r"(?m)^  window: \d+", "  window: 3", params))
    third = dvc(repo, env, "repro", "embed_descriptions", "ingest_screenplays")
    assert ran(third) == {"ingest_screenplays"}
    assert (repo / "data" / "characters.parquet").read_bytes() == before
    for snippet in pq.read_table(repo / "data" / "snippets_screenplays.parquet").to_pylist():
        assert len(snippet["D"]) + len(snippet["E"]) + len(snippet["O"]) <= 3
