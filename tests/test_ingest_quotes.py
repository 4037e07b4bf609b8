"""Stage ingest_quotes: crawled quotes -> snippets of CMU characters; and its place in DVC."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from conftest import FIXTURES, PROJECT_ROOT
from crawlers.imdb import parse_quotes_page, quote_rows
from flows.lib.cmu_tropes import ingest_tropes
from flows.lib.quote_snippets import ingest_quotes
from flows.lib.screenplay_snippets import IngestSettings
from flows.lib.splits import SplitSettings
from flows.lib.schemas import CHARACTERS, QUOTES, SNIPPETS, read_table, write_table

SNIPPET_SPLIT = SplitSettings("snippet", 13, (0.8, 0.1, 0.1))
FIXTURE_MOVIES = {"quotes_next_data.html": ("tt0133093", "The Matrix"), "quotes_legacy.html": ("tt0119137", "Flubber")}


def write_quotes(path: Path) -> Path:
    """The rows the imdb_quotes spider writes for the two fixture pages."""
    rows = []
    for name, (imdb_id, movie) in FIXTURE_MOVIES.items():
        url = f"https://www.imdb.com/title/{imdb_id}/quotes/"
        rows += quote_rows(parse_quotes_page((FIXTURES / "imdb" / name).read_text(encoding="utf-8"), url), imdb_id, movie, url)
    return write_table(pa.Table.from_pylist(rows, schema=QUOTES), path, QUOTES)


@pytest.fixture
def inputs(tmp_path, shared_data):
    characters = tmp_path / "data" / "characters.parquet"
    ingest_tropes(shared_data / "cmu_tvtropes" / "tvtropes.clusters.txt", characters, SNIPPET_SPLIT)
    return characters, write_quotes(tmp_path / "crawls" / "quotes.parquet")


def run(tmp_path, inputs, min_lines=3, split=SNIPPET_SPLIT):
    output, metrics = tmp_path / "data" / "snippets_imdb.parquet", tmp_path / "metrics" / "ingest_quotes.json"
    counts = ingest_quotes(*inputs, output, metrics, IngestSettings(6, min_lines, 30, True, True), split)
    return read_table(output, SNIPPETS).to_pylist(), counts


def test_cmu_characters_get_their_quotes_as_snippets(tmp_path, inputs):
    rows, counts = run(tmp_path, inputs)
    by_character = {}
    for row in rows:
        by_character.setdefault(row["char_id"], []).append(row)
    assert sorted(by_character) == ["/m/0jy9q0|absent_minded_professor", "/m/0k5wz1|consummate_professional"]
    smith = {row["scene"]: row for row in by_character["/m/0k5wz1|consummate_professional"]}
    assert sorted(smith) == [0, 2, 3]  # the quotes where Agent Smith speaks, by page position
    assert smith[0]["D"] == ["Punctuality is a courtesy, Mr. Anderson."]
    assert smith[0]["E"] == ["straightening his tie"]
    # names masked (ingest.mask_names): every speaker of the movie's quotes is a name
    assert smith[0]["O"] == [{"speaker": "[NAME]", "text": "Then I must be very rude."}]
    assert smith[3]["E"] == ["interrogation room", "taps the table", "together"]
    assert smith[3]["O"] == [{"speaker": "[NAME] and [NAME]", "text": "No."}]
    assert smith[0]["snippet_id"] == "/m/0k5wz1|consummate_professional|imdb|qt9000001"
    # "Professor Philip Brainard" speaks as "Professor Brainard" (title + last name).
    brainard = by_character["/m/0jy9q0|absent_minded_professor"]
    assert [row["D"] for row in brainard][1] == ["Full of what? Oh. Of people."]
    assert {row["source"] for row in rows} == {"imdb"} and {row["movie"] for row in brainard} == {"Flubber"}
    for snippets in by_character.values():  # 3 snippets each: one per split, as the screenplay path does
        assert sorted(row["split"] for row in snippets) == ["test", "train", "val"]
    assert counts["characters"]["matched"] == 2 and counts["quotes"] == {"movies": 2, "total": 7}


def test_character_unit_inherits_the_character_split(tmp_path, inputs):
    rows, _ = run(tmp_path, inputs, split=SplitSettings("character", 13, (0.8, 0.1, 0.1)))
    characters = {row["char_id"]: row["split"] for row in read_table(inputs[0], CHARACTERS).to_pylist()}
    assert rows and all(row["split"] == characters[row["char_id"]] for row in rows)


def test_too_few_lines_leave_an_empty_table(tmp_path, inputs):
    rows, counts = run(tmp_path, inputs, min_lines=4)
    assert rows == [] and counts["snippets"]["total"] == 0


def project_copy(tmp_path: Path) -> Path:
    """The project's files as git sees them, in a new git repository (data.root made absolute)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    repo = tmp_path / "repo"
    for name in listed:
        if (PROJECT_ROOT / name).is_file() and not name.startswith("tests/"):
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT_ROOT / name, repo / name)
    for command in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"]):
        subprocess.run(command, cwd=repo, check=True)
    return repo


def set_params(repo: Path, shared_data: Path, **data) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"].update(root=str(shared_data), **data)
    params["ingest"]["min_lines"] = 3
    (repo / "params.yaml").write_text(yaml.safe_dump(params))


def ingest_quotes_feeds(dag: str) -> list[str]:
    """Stages that `crawlers/dvc.yaml:ingest_quotes` feeds, read from `dvc dag --md`."""
    names = dict(re.findall(r'(node\d+)\["([^"]+)"\]', dag))
    source = next(node for node, name in names.items() if name == "crawlers/dvc.yaml:ingest_quotes")
    return [names[target] for origin, target in re.findall(r"(node\d+)-->(node\d+)", dag) if origin == source]


@pytest.mark.slow
def test_dvc_runs_ingest_quotes_only_when_data_source_is_imdb(tmp_path, shared_data):
    repo = project_copy(tmp_path)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    def dvc(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["dvc", *args], cwd=repo, env=env, capture_output=True, text=True, check=check)

    set_params(repo, shared_data, source="screenplays")
    # A plain `dvc repro` builds the root dvc.yaml and what it depends on: nothing reads the
    # IMDb snippets, so the stage stays out and its missing crawl breaks nothing.
    assert ingest_quotes_feeds(dvc("dag", "--md").stdout) == []
    set_params(repo, shared_data, source="imdb")
    assert ingest_quotes_feeds(dvc("dag", "--md").stdout)  # now upstream of the snippet readers

    ingest_tropes(shared_data / "cmu_tvtropes" / "tvtropes.clusters.txt", repo / "data" / "characters.parquet", SNIPPET_SPLIT)
    missing = dvc("repro", "--single-item", "crawlers/dvc.yaml:ingest_quotes", check=False)
    assert missing.returncode != 0 and "crawls/quotes.parquet" in missing.stderr
    write_quotes(repo / "crawls" / "quotes.parquet")
    dvc("repro", "--single-item", "crawlers/dvc.yaml:ingest_quotes")
    rows = read_table(repo / "data" / "snippets_imdb.parquet", SNIPPETS).to_pylist()
    assert len(rows) == 6 and {row["source"] for row in rows} == {"imdb"}
    assert (repo / "crawlers" / "dvc.lock").exists() and (repo / "metrics" / "ingest_quotes.json").exists()
