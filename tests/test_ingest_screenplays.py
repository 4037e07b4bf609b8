import csv
import json
import re
import shutil
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flows.lib.errors import PipelineInputError
from flows.lib.cmu_tropes import ingest_tropes
from flows.lib.screenplay_snippets import IngestSettings, ingest_screenplays, ingest_settings
from flows.lib.splits import SplitSettings, snippet_splits, unit_splits
from flows.lib.schemas import SCREENPLAY_PAGES, write_table
from flows.lib.name_mask import MASK_TOKEN
from flows.lib.name_probe import name_documents, names_only_accuracy, probe_masker, shared_scene_snippets
from flows.lib.screenplay import cue_counts, parse_screenplay

MOVIES = (
    "Indiana Jones and the Raiders of the Lost Ark",  # Indy (hand alias INDY), Major Toht (hand: none)
    "Election",  # Paul Metzler, under two tropes
    "Star Wars Episode I: The Phantom Menace",  # colon layout
    "Training Day",  # resplit layout
    "Clueless",  # blank layout
    "The Shadow",  # no script
)
PAPER_SPLIT = SplitSettings("snippet", 13, (0.8, 0.1, 0.1))
UNSEEN = SplitSettings("character", 13, (0.8, 0.1, 0.1))
SETTINGS = IngestSettings(window=6, min_lines=5, max_snippets=30, hand_aliases=True, mask_names=True)
RAW = IngestSettings(window=6, min_lines=5, max_snippets=30, hand_aliases=True, mask_names=False)


def clusters_of(shared_data, movies):
    lines = (shared_data / "cmu_tvtropes" / "tvtropes.clusters.txt").read_text().splitlines()
    return [line for line in lines if any(f'"movie": "{movie}"' in line for movie in movies)]


@pytest.fixture(scope="module")
def characters_path(shared_data, tmp_path_factory):
    """characters.parquet of the real clusters lines of a few movies."""
    folder = tmp_path_factory.mktemp("characters")
    picked = clusters_of(shared_data, MOVIES)
    (folder / "clusters.txt").write_text("\n".join(picked) + "\n")
    ingest_tropes(folder / "clusters.txt", folder / "characters.parquet", PAPER_SPLIT)
    return folder / "characters.parquet"


def run(characters_path, scripts_root, tmp_path, settings=SETTINGS, split=PAPER_SPLIT, crawled=None):
    metrics = ingest_screenplays(characters_path, scripts_root, crawled, tmp_path / "snippets.parquet",
                                 tmp_path / "ingest.json", settings, split)
    return metrics, pq.read_table(tmp_path / "snippets.parquet").to_pylist()


@pytest.fixture(scope="module")
def paper_run(characters_path, shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("snippets")
    return (*run(characters_path, shared_data / "imsdb_scripts", out), out)


@pytest.fixture(scope="module")
def raw_run(characters_path, shared_data, tmp_path_factory):
    return run(characters_path, shared_data / "imsdb_scripts", tmp_path_factory.mktemp("raw"), settings=RAW)[1]


def by_character(snippets):
    grouped = {}
    for snippet in snippets:
        grouped.setdefault(snippet["char_id"], []).append(snippet)
    return grouped


def test_matched_characters_and_metrics(paper_run, characters_path):
    metrics, snippets, out = paper_run
    characters = pq.read_table(characters_path).to_pandas().set_index("char_id")
    matched = set(by_character(snippets))
    names = set(characters.loc[list(matched), "character"])
    assert names == {"Indiana Jones", "Paul Metzler", "Anakin Skywalker", "Alonzo", "Cher Horowitz",
                     "Qui-Gon Jinn", "Obi-Wan Kenobi"}
    unmatched = set(characters.index) - matched
    assert set(characters.loc[list(unmatched), "character"]) == {"Major Arnold Toht", "Dr. Reinhardt Lane"}
    assert metrics == json.loads((out / "ingest.json").read_text())
    assert metrics["characters"] == {"rows": len(characters), "with_script": len(characters) - 1,
                                     "matched": len(matched), "unmatched": len(unmatched),
                                     "distinct_matched": characters.loc[list(matched), "freebase_id"].nunique()}
    sizes = sorted(Counter(s["char_id"] for s in snippets).values())
    assert (metrics["snippets_per_character"]["min"], metrics["snippets_per_character"]["max"]) == (sizes[0], sizes[-1])
    assert metrics["snippets"]["total"] == len(snippets) == sum(metrics["snippets"][name] for name in ("train", "val", "test"))
    assert metrics["tropes"]["covered"] == characters.loc[list(matched), "trope"].nunique()
    assert metrics["scripts"] == {"parsed": 5, "crawled": 0}


def test_snippets_are_windows_holding_the_characters_lines(raw_run, shared_data):
    """Unmasked (ingest.mask_names false), the streams are the script's own blocks."""
    snippets = raw_run
    assert len({s["snippet_id"] for s in snippets}) == len(snippets)
    for snippet in snippets:
        assert snippet["D"], snippet["snippet_id"]
        assert len(snippet["D"]) + len(snippet["E"]) + len(snippet["O"]) <= SETTINGS.window
        assert snippet["source"] == "screenplays"
    indy = [s for s in snippets if s["char_id"] == "/m/0k294p|adventurer_archaeologist"]
    raiders = parse_screenplay((shared_data / "imsdb_scripts" / "scripts" /
                                "Indiana-Jones-and-the-Raiders-of-the-Lost-Ark.txt").read_text(errors="replace"), "strict")
    indy_lines = {b.text for scene in raiders for b in scene.blocks if b.kind == "dialogue" and b.speaker == "INDY"}
    for snippet in indy:
        assert set(snippet["D"]) <= indy_lines
        assert all(other["speaker"] != "INDY" for other in snippet["O"])
        scene = raiders[snippet["scene"]]
        assert set(snippet["D"]) <= {b.text for b in scene.blocks}  # all from the one scene
    assert any(o["speaker"] == "MARION" for s in indy for o in s["O"])
    assert any(e.startswith("(") for s in indy for e in s["E"])  # parentheticals are context


def test_cap_split_and_same_person_under_two_tropes(paper_run):
    _, snippets, _ = paper_run
    grouped = by_character(snippets)
    for char_id, rows in grouped.items():
        assert len(rows) <= SETTINGS.max_snippets
        splits = Counter(row["split"] for row in rows)
        if len(rows) >= 3:
            assert set(splits) == {"train", "val", "test"}, char_id
        assert splits["train"] >= 0.7 * len(rows)
    paul_muscle = grouped["/m/02vdf9d|big_man_on_campus"]
    paul_beauty = grouped["/m/02vdf9d|brainless_beauty"]
    assert [(s["D"], s["split"]) for s in paul_muscle] == [(s["D"], s["split"]) for s in paul_beauty]


def test_deterministic_and_window_param_changes_snippets(paper_run, characters_path, shared_data, tmp_path):
    _, snippets, _ = paper_run
    _, again = run(characters_path, shared_data / "imsdb_scripts", tmp_path)
    assert again == snippets
    small = IngestSettings(window=3, min_lines=5, max_snippets=1000, hand_aliases=True, mask_names=True)
    _, narrow = run(characters_path, shared_data / "imsdb_scripts", tmp_path, settings=small)
    assert all(len(s["D"]) + len(s["E"]) + len(s["O"]) <= 3 for s in narrow)
    assert len(narrow) > len(snippets)


def test_character_unit_inherits_the_character_split(characters_path, shared_data, tmp_path):
    _, snippets = run(characters_path, shared_data / "imsdb_scripts", tmp_path, split=UNSEEN)
    split_of = dict(zip(*pq.read_table(characters_path, columns=["char_id", "split"]).to_pydict().values()))
    assert all(s["split"] == split_of[s["char_id"]] for s in snippets)


def test_without_hand_aliases_name_rules_decide(characters_path, shared_data, tmp_path):
    rules = IngestSettings(window=6, min_lines=5, max_snippets=30, hand_aliases=False, mask_names=True)
    _, snippets = run(characters_path, shared_data / "imsdb_scripts", tmp_path, settings=rules)
    matched = {s["char_id"] for s in snippets}
    assert "/m/0k294p|adventurer_archaeologist" not in matched  # no INDIANA or JONES cue in Raiders
    assert "/m/0jwjsy|ditz" in matched  # Cher Horowitz -> CHER by first name


def test_crawled_screenplay_fills_a_movie_without_bundled_script(characters_path, shared_data, tmp_path):
    """Clueless removed from a copy of the script map; its real text comes as a crawled page,
    parsed with a guessed layout. A crawled page for a bundled movie is ignored."""
    source = shared_data / "imsdb_scripts"
    root = tmp_path / "imsdb_scripts"
    root.mkdir()
    (root / "scripts").symlink_to(source / "scripts")
    shutil.copy(source / "cmu_character_matches.tsv", root)
    rows = (source / "movie_script_map.tsv").read_text().splitlines()
    (root / "movie_script_map.tsv").write_text("\n".join(r for r in rows if not r.startswith("Clueless\t")) + "\n")
    pages = pa.table({"movie": ["Clueless", "Election"], "url": ["https://imsdb.com/Clueless", "https://imsdb.com/E"],
                      "text": [(source / "scripts" / "Clueless.txt").read_text(errors="replace"), "garbage"]})
    crawled = write_table(pages, tmp_path / "screenplay_pages.parquet", SCREENPLAY_PAGES)
    metrics, snippets = run(characters_path, root, tmp_path, crawled=crawled)
    matched = {s["char_id"] for s in snippets}
    assert {"/m/0jwjsy|ditz", "/m/0jwjsy|valley_girl", "/m/02vdf9d|big_man_on_campus"} <= matched
    assert metrics["scripts"] == {"parsed": 5, "crawled": 1}


@pytest.mark.parametrize("count", [0, 1, 2, 3, 4, 10, 29, 30, 200])
def test_unit_split_sizes(count):
    labels = unit_splits(count, PAPER_SPLIT, "/m/x|Movie")
    sizes = Counter(labels)
    assert len(labels) == count
    if count >= 3:
        assert sizes["val"] >= 1 and sizes["test"] >= 1 and sizes["train"] >= 1
    assert abs(sizes["val"] - 0.1 * count) <= 1 and abs(sizes["test"] - 0.1 * count) <= 1
    assert labels == unit_splits(count, PAPER_SPLIT, "/m/x|Movie")


def test_characters_with_wrong_schema_name_file_and_column(shared_data, tmp_path):
    bad = tmp_path / "characters.parquet"
    pq.write_table(pa.table({"char_id": ["a|b"], "trope": ["b"], "character": ["A"], "movie": ["M"]}), bad)
    with pytest.raises(PipelineInputError, match=r"characters\.parquet: missing column 'actor'") as error:
        run(bad, shared_data / "imsdb_scripts", tmp_path)
    assert "\n" not in str(error.value)


def test_missing_script_file_is_named(characters_path, shared_data, tmp_path):
    root = tmp_path / "imsdb_scripts"
    (root / "scripts").mkdir(parents=True)
    for name in ("movie_script_map.tsv", "cmu_character_matches.tsv"):
        shutil.copy(shared_data / "imsdb_scripts" / name, root)
    with pytest.raises(PipelineInputError, match=r"scripts/30-Minutes-or-Less\.txt: file not found \(listed in"):
        ingest_screenplays(characters_path, root, tmp_path / "none", tmp_path / "s.parquet", tmp_path / "m.json",
                           SETTINGS, PAPER_SPLIT)
    (root / "movie_script_map.tsv").write_text("movie\tscript_file\n")
    with pytest.raises(PipelineInputError, match=r"movie_script_map\.tsv: missing column 'parse_mode'"):
        run(characters_path, root, tmp_path)


@pytest.mark.parametrize(
    "section, message",
    [({"window": 0, "min_lines": 5, "max_snippets": 30, "hand_aliases": True}, r"param 'ingest\.window' must be >= 1"),
     ({"window": 6, "min_lines": 5.5, "max_snippets": 30, "hand_aliases": True}, r"param 'ingest\.min_lines' must be int"),
     ({"window": 6, "min_lines": 5, "max_snippets": 30, "hand_aliases": "yes"}, r"param 'ingest\.hand_aliases' must be bool"),
     ({"window": 6, "min_lines": 5, "hand_aliases": True}, r"missing param 'ingest\.max_snippets'")],
)
def test_bad_ingest_params_name_the_param(section, message):
    with pytest.raises(PipelineInputError, match=message):
        ingest_settings({"ingest": section})


# --- the protocol of issue 15: names masked, no scene or movie across splits -----------------
WORD = re.compile(r"[A-Za-z]+(?:['\-][A-Za-z]+)*")
RAIDERS_NAMES = {"Indy", "MARION", "Marion", "BELLOQ", "Belloq", "SALLAH", "Sallah", "Indiana", "Jones"}


def streams_text(snippet) -> list[str]:
    return [*snippet["D"], *snippet["E"], *(o["text"] for o in snippet["O"]), *(o["speaker"] for o in snippet["O"])]


def test_masking_replaces_cues_and_cmu_names_and_leaves_other_words(paper_run, raw_run):
    """Own cue (INDY, written "Indy"), other cues (MARION, BELLOQ, SALLAH) and CMU name words
    (Indiana, Jones) become [NAME] in every stream of Raiders, O's speakers too; every lower-case
    word stays, in order."""
    masked = {s["snippet_id"]: s for s in paper_run[1]}
    assert set(masked) == {s["snippet_id"] for s in raw_run}
    raiders = [s for s in raw_run if s["movie"] == MOVIES[0]]
    raw_words = {word for s in raiders for text in streams_text(s) for word in WORD.findall(text)}
    assert RAIDERS_NAMES <= raw_words  # the names are there to mask
    masked_words = {word for s in raiders for text in streams_text(masked[s["snippet_id"]]) for word in WORD.findall(text)}
    assert not RAIDERS_NAMES & masked_words
    for snippet in raw_run:
        for before, after in zip(streams_text(snippet), streams_text(masked[snippet["snippet_id"]]), strict=True):
            assert [w for w in WORD.findall(before) if w.islower()] == [w for w in WORD.findall(after) if w.islower()]
    assert sum(MASK_TOKEN in text for s in paper_run[1] for text in s["D"] + s["E"]) > 0.2 * len(paper_run[1])


def test_no_scene_of_a_character_straddles_splits(paper_run):
    _, snippets, _ = paper_run
    splits_of = {}
    for snippet in snippets:
        splits_of.setdefault((snippet["char_id"], snippet["scene"]), set()).add(snippet["split"])
    assert all(len(splits) == 1 for splits in splits_of.values())
    assert sum(Counter(s["char_id"] + str(s["scene"]) for s in snippets).values()) > len(splits_of)  # scenes of 2+ snippets
    assert shared_scene_snippets(snippets) == 0


@pytest.mark.parametrize("scenes", [[0, 0, 1, 1, 1, 2, 5, 5, 7, 9], list(range(30)), [4] * 6])
def test_snippet_split_keeps_scenes_whole(scenes):
    labels = snippet_splits(scenes, PAPER_SPLIT, "/m/x|Movie")
    assert len({(scene, label) for scene, label in zip(scenes, labels)}) == len(set(scenes))
    assert labels == snippet_splits(scenes, PAPER_SPLIT, "/m/x|Movie")
    if len(set(scenes)) >= 3:
        assert set(labels) == {"train", "val", "test"}


def test_character_unit_puts_each_movie_in_one_split(characters_path, shared_data, tmp_path):
    _, snippets = run(characters_path, shared_data / "imsdb_scripts", tmp_path, split=UNSEEN)
    split_of = {}
    for snippet in snippets:
        split_of.setdefault(snippet["movie"], set()).add(snippet["split"])
    assert len(split_of) == 5 and all(len(splits) == 1 for splits in split_of.values())


@pytest.fixture(scope="module")
def names_runs(shared_data, tmp_path_factory):
    """Raw and masked snippets of the first 40 movies of the script map (about 90 characters)."""
    folder = tmp_path_factory.mktemp("names")
    rows = (shared_data / "imsdb_scripts" / "movie_script_map.tsv").read_text().splitlines()[1:]
    movies = [row.split("\t")[0] for row in rows if row.split("\t")[1]][:40]
    (folder / "clusters.txt").write_text("\n".join(clusters_of(shared_data, movies)) + "\n")
    ingest_tropes(folder / "clusters.txt", folder / "characters.parquet", PAPER_SPLIT)
    trope_of = dict(zip(*pq.read_table(folder / "characters.parquet", columns=["char_id", "trope"]).to_pydict().values()))
    runs = {name: run(folder / "characters.parquet", shared_data / "imsdb_scripts", folder, settings=settings)[1]
            for name, settings in (("raw", RAW), ("masked", SETTINGS))}
    return runs, trope_of, movies


def test_names_only_reference_falls_to_chance_after_masking(names_runs, shared_data):
    """TF-IDF + LR over nothing but the name tokens of D, E and O (every CMU name, every one-word
    cue of 5+ lines in these scripts) recognises the characters, so their tropes, on the
    scene-grouped snippet split; after masking it scores what the majority trope scores."""
    runs, trope_of, movies = names_runs
    script_map = {row["movie"]: row for row in csv.DictReader(
        (shared_data / "imsdb_scripts" / "movie_script_map.tsv").open(), delimiter="\t")}
    counts = [cue_counts(parse_screenplay((shared_data / "imsdb_scripts" / script_map[movie]["script_file"])
                                          .read_text(errors="replace"), script_map[movie]["parse_mode"] or "auto"))
              for movie in movies]
    cmu = [line.split('"char": "')[1].split('"')[0] for line in clusters_of(shared_data, movies)]
    probe = probe_masker(cmu, counts, SETTINGS.min_lines)
    scores = {}
    for name, snippets in runs.items():
        scores[name] = names_only_accuracy(name_documents(snippets, probe), [trope_of[s["char_id"]] for s in snippets],
                                           [s["split"] for s in snippets])
    assert scores["raw"]["n_test"] >= 100
    assert scores["raw"]["accuracy"] > scores["raw"]["majority"] + 0.3
    assert scores["masked"]["accuracy"] <= scores["masked"]["majority"] + 0.03
