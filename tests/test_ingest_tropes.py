import json
import pyarrow.parquet as pq
import pytest
import yaml

from flows.lib.config import load_params
from flows.lib.errors import PipelineInputError
from flows.lib.cmu_tropes import ingest_tropes
from flows.lib.splits import SplitSettings, split_settings

PAPER_SPLIT = SplitSettings("snippet", 13, (0.8, 0.1, 0.1))


@pytest.fixture(scope="module")
def characters(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("tropes") / "characters.parquet"
    counts = ingest_tropes(shared_data / "cmu_tvtropes" / "tvtropes.clusters.txt", out, PAPER_SPLIT)
    return counts, pq.read_table(out).to_pandas()


def test_every_clusters_line_is_one_row(characters, shared_data):
    counts, table = characters
    lines = [line for line in (shared_data / "cmu_tvtropes" / "tvtropes.clusters.txt").read_text().splitlines() if line]
    assert len(table) == len(lines) == counts["rows"]
    assert table.char_id.is_unique
    assert (table.char_id == table.freebase_id + "|" + table.trope).all()
    trope, payload = lines[0].split("\t")
    first = json.loads(payload)
    assert table.iloc[0][["trope", "character", "movie", "actor", "freebase_id"]].tolist() == [
        trope, first["char"], first["movie"], first["actor"], first["id"]]
    assert table.trope.nunique() == counts["tropes"] and table.freebase_id.nunique() == counts["characters"]


def test_character_split_has_no_leakage_and_follows_ratios(characters):
    counts, table = characters
    assert set(table.split) == {"train", "val", "test"}
    assert (table.groupby("freebase_id").split.nunique() == 1).all()  # one person, one split
    people = table.drop_duplicates("freebase_id").split.value_counts()
    for name, ratio in zip(("train", "val", "test"), PAPER_SPLIT.ratios):
        assert abs(people[name] - ratio * len(table.freebase_id.unique())) <= 1
        assert people[name] == counts[name]


def test_split_is_stratified_by_trope(characters):
    """Whole movies go to one split, so stratifying by trope is coarser than per person: every
    large trope keeps most of its people in train, and nearly every one reaches val or test."""
    _, table = characters
    shares = [(group.split == "train").mean() for _, group in table.groupby("trope") if group.freebase_id.nunique() >= 10]
    assert len(shares) >= 10 and all(share >= 0.5 for share in shares)
    assert sum(share < 1 for share in shares) >= 0.8 * len(shares)


def test_no_movie_and_no_sequel_in_two_splits(characters):
    _, table = characters
    assert (table.groupby("movie").split.nunique() == 1).all()
    # a character name in several movies (Indiana Jones, Han Solo) keeps them in one split
    assert (table.groupby("character").split.nunique() == 1).all()
    indy = table[table.character == "Indiana Jones"]
    assert indy.movie.nunique() == 3 and indy.split.nunique() == 1


def test_split_is_deterministic_and_follows_the_seed(shared_data, tmp_path, characters):
    _, table = characters
    clusters = shared_data / "cmu_tvtropes" / "tvtropes.clusters.txt"
    ingest_tropes(clusters, tmp_path / "same.parquet", PAPER_SPLIT)
    assert pq.read_table(tmp_path / "same.parquet").column("split").to_pylist() == table.split.tolist()
    ingest_tropes(clusters, tmp_path / "other.parquet", SplitSettings("snippet", 14, PAPER_SPLIT.ratios))
    assert pq.read_table(tmp_path / "other.parquet").column("split").to_pylist() != table.split.tolist()


def test_missing_clusters_file_names_it(tmp_path):
    with pytest.raises(PipelineInputError, match=r"nope\.txt: file not found"):
        ingest_tropes(tmp_path / "nope.txt", tmp_path / "c.parquet", PAPER_SPLIT)


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("dumb_muscle {no tab}", r"clusters\.txt:2: expected 'trope<TAB>\{json object\}'"),
        ('dumb_muscle\t{"char": "Bob", "movie": "M"}', r"clusters\.txt:2: field 'id' missing or empty"),
        ('dumb_muscle\t["not", "an", "object"]', r"clusters\.txt:2: expected"),
        ('ditz\t{"char": "Cher", "movie": "Clueless", "id": "/m/x", "actor": "A"}', r"clusters\.txt:2: character '/m/x' repeats"),
    ],
)
def test_malformed_clusters_line_names_file_and_line(tmp_path, bad_line, message):
    clusters = tmp_path / "clusters.txt"
    clusters.write_text('ditz\t{"char": "Cher", "movie": "Clueless", "id": "/m/x", "actor": "A"}\n' + bad_line + "\n")
    with pytest.raises(PipelineInputError, match=message) as error:
        ingest_tropes(clusters, tmp_path / "c.parquet", PAPER_SPLIT)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "c.parquet").exists()


def with_split(**changes):
    params = load_params()
    params = yaml.safe_load(yaml.safe_dump(params))  # a deep copy
    params["split"].update(changes)
    return params


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"train": 0.7}, r"params 'split\.train', 'split\.val', 'split\.test' must sum to 1, got 0\.9"),
        ({"unit": "movie"}, r"param 'split\.unit' is 'movie'; valid: snippet, character"),
        ({"val": -0.1, "train": 1.0}, r"param 'split\.val' must be in \[0, 1\]"),
        ({"seed": "13"}, r"param 'split\.seed' must be int"),
        ({"train": 0.0, "val": 0.5, "test": 0.5}, r"param 'split\.train' must be > 0"),
    ],
)
def test_bad_split_params_name_the_param(changes, message):
    with pytest.raises(PipelineInputError, match=message) as error:
        split_settings(with_split(**changes))
    assert "\n" not in str(error.value)


def test_project_params_are_valid():
    settings = split_settings(load_params())
    assert settings.unit in ("snippet", "character") and sum(settings.ratios) == pytest.approx(1)
