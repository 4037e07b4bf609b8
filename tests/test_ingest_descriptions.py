import json
import logging

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flows.lib.errors import PipelineInputError
from flows.lib.trope_descriptions import ingest_descriptions, title_words
from flows.lib.schemas import TROPE_PAGES, write_table


@pytest.fixture()
def sources(shared_data):
    return (
        shared_data / "cmu_tvtropes" / "tvtropes.clusters.txt",
        shared_data / "tvtropes_descriptions" / "trope_descriptions.jsonl",
    )


def bundled_records(path):
    return {record["trope"]: record for record in map(json.loads, path.read_text().splitlines())}


def test_all_cmu_tropes_get_a_description(sources, tmp_path, caplog):
    clusters, descriptions = sources
    with caplog.at_level(logging.WARNING, logger="flows.lib.trope_descriptions"):
        counts = ingest_descriptions(clusters, descriptions, tmp_path / "no_crawl.parquet", tmp_path / "tropes.parquet")
    table = pq.read_table(tmp_path / "tropes.parquet").to_pandas()
    cmu_tropes = {line.split("\t")[0] for line in clusters.read_text().splitlines() if line}
    assert list(table.trope) == sorted(cmu_tropes)
    assert (table.description.str.len() > 0).all()
    bundled = bundled_records(descriptions)
    no_text = sorted(trope for trope, record in bundled.items() if not record["description"])
    titled = table[table.description_kind == "title"]
    assert list(titled.trope) == no_text and counts["title"] == len(no_text)
    # each one is logged, and its text is its page title in words
    assert sorted(r.getMessage().split()[1] for r in caplog.records) == no_text
    storyteller = table.set_index("trope").loc["storyteller"]
    assert storyteller.description == title_words(bundled["storyteller"]["title"]) == "The Storyteller"
    for row in table.itertuples():
        if row.description_kind != "title":
            assert row.description == bundled[row.trope]["description"]
            assert row.description_kind == bundled[row.trope]["description_kind"]
    assert counts["crawled"] == 0


def test_crawled_pages_are_preferred(sources, tmp_path):
    clusters, descriptions = sources
    crawled = pa.table(
        {
            "trope": ["dumb_muscle", "storyteller", "ditz"],
            "title": ["DumbMuscle", "TheStoryteller", "TheDitz"],
            "url": ["https://tvtropes.org/pmwiki/pmwiki.php/Main/DumbMuscle",
                    "https://tvtropes.org/pmwiki/pmwiki.php/Main/TheStoryteller",
                    "https://tvtropes.org/pmwiki/pmwiki.php/Main/TheDitz"],
            "description": ["Crawled: strength and intellect are inversely proportional.", None, ""],
            "laconic": ["Brawn, no brains.", "Tells tales to the audience.", None],
        }
    )
    crawl_path = write_table(crawled, tmp_path / "trope_pages.parquet", TROPE_PAGES)
    counts = ingest_descriptions(clusters, descriptions, crawl_path, tmp_path / "tropes.parquet")
    table = pq.read_table(tmp_path / "tropes.parquet").to_pandas().set_index("trope")
    assert table.loc["dumb_muscle"].description.startswith("Crawled:")
    assert table.loc["dumb_muscle"].source == "crawl:https://tvtropes.org/pmwiki/pmwiki.php/Main/DumbMuscle"
    assert (table.loc["storyteller"].description, table.loc["storyteller"].description_kind) == (
        "Tells tales to the audience.", "laconic")
    bundled = bundled_records(descriptions)
    assert table.loc["ditz"].description == bundled["ditz"]["description"]  # empty crawl text: bundled wins
    assert counts["crawled"] == 2


def test_trope_missing_from_the_descriptions_file_falls_back_to_title(tmp_path, caplog):
    clusters = tmp_path / "clusters.txt"
    clusters.write_text(
        'dumb_muscle\t{"char": "Lenny", "movie": "M", "id": "/m/1", "actor": "A"}\n'
        'the_chief\t{"char": "Boss", "movie": "M", "id": "/m/2", "actor": "B"}\n'
    )
    descriptions = tmp_path / "descriptions.jsonl"
    descriptions.write_text(json.dumps({"trope": "dumb_muscle", "title": "DumbMuscle", "description": "Big.",
                                        "description_kind": "full", "source": "s"}) + "\n")
    with caplog.at_level(logging.WARNING, logger="flows.lib.trope_descriptions"):
        ingest_descriptions(clusters, descriptions, tmp_path / "none.parquet", tmp_path / "tropes.parquet")
    rows = pq.read_table(tmp_path / "tropes.parquet").to_pylist()
    assert [(r["trope"], r["description"], r["description_kind"]) for r in rows] == [
        ("dumb_muscle", "Big.", "full"), ("the_chief", "The Chief", "title")]
    assert "the_chief" in caplog.text


def test_bad_descriptions_line_names_file_and_line(sources, tmp_path):
    clusters, _ = sources
    descriptions = tmp_path / "descriptions.jsonl"
    descriptions.write_text('{"trope": "ditz", "description": "x"}\n{"title": "NoTrope"}\n')
    with pytest.raises(PipelineInputError, match=r"descriptions\.jsonl:2: field 'trope' missing"):
        ingest_descriptions(clusters, descriptions, None, tmp_path / "tropes.parquet")
    descriptions.write_text("{not json\n")
    with pytest.raises(PipelineInputError, match=r"descriptions\.jsonl:1: not a JSON object"):
        ingest_descriptions(clusters, descriptions, None, tmp_path / "tropes.parquet")


def test_missing_descriptions_file_names_it(sources, tmp_path):
    clusters, _ = sources
    with pytest.raises(PipelineInputError, match=r"gone\.jsonl: file not found"):
        ingest_descriptions(clusters, tmp_path / "gone.jsonl", None, tmp_path / "tropes.parquet")


def test_crawl_with_wrong_schema_names_file_and_column(sources, tmp_path):
    clusters, descriptions = sources
    bad = tmp_path / "trope_pages.parquet"
    pq.write_table(pa.table({"trope": ["ditz"], "text": ["x"]}), bad)
    with pytest.raises(PipelineInputError, match=r"trope_pages\.parquet: missing column 'title'") as error:
        ingest_descriptions(clusters, descriptions, bad, tmp_path / "tropes.parquet")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("title, words", [("FastestGunInTheWest", "Fastest Gun In The West"),
                                          ("retired_outlaw", "Retired Outlaw"), ("DaChief", "Da Chief")])
def test_title_words(title, words):
    assert title_words(title) == words
