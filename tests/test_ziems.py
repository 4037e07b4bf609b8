"""The reader of the bundled IMDb quotes (flows/lib/ziems.py), the unseen-character split and the
one scoring rule (flows/lib/trope_scoring.py), on a small fixture and on the real files."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from flows.lib.errors import PipelineInputError
from flows.lib.trope_scoring import macro_f1, ranked_from_scores, score_ranked
from flows.lib.unseen_task import UnseenSettings, load_unseen_task, snippet_table
from flows.lib.ziems import (
    option_codes, read_answers, read_test_rows, read_ziems_characters, snippet_windows, trope_id, ziems_split,
)

FIXTURE = Path(__file__).parent / "fixtures" / "ziems"
FOLDER = FIXTURE / "ziems_tropes"
CLUSTERS = FIXTURE / "cmu_tvtropes" / "tvtropes.clusters.txt"


def test_trope_names_map_to_cmu_ids():
    assert trope_id("Drill Sargeant Nasty") == "drill_sargeant_nasty"
    assert trope_id(" The  Chief ") == "the_chief"


def test_reader_keeps_every_trope_and_finds_movies():
    characters = read_ziems_characters(FOLDER, CLUSTERS, empty_rows=(6,))
    by_name = {c.name: c for c in characters}
    assert len(characters) == 9 and "Ling Ling Fat" not in by_name
    assert by_name["Captain Rex Morgan"].tropes == ("the_chief", "dumb_muscle")
    assert by_name["Dr. Emmett Brown"].movies == ("Back to the Future",)
    assert by_name["Dr. Emmett Brown"].other_names == ("Marty McFly",)
    assert by_name["Bull"].lines[1] == "Bull smash!"


def test_split_holds_whole_movies_and_flags_the_shared_ones():
    characters = read_ziems_characters(FOLDER, CLUSTERS, empty_rows=(6,))
    test_rows = read_test_rows(FOLDER, 10)
    counts = ziems_split(characters, test_rows, val_share=0.4, seed=0)
    role = {c.name: c.role for c in characters}
    assert [c.row for c in characters if c.role == "test"] == sorted(test_rows)
    assert role["Marty McFly"] == "shared_movie"  # shares Back to the Future with a test character
    assert counts == {"train": 3, "val": 2, "test": 3, "shared_movie": 1}
    movies = {r: {m for c in characters if c.role == r for m in c.movies} for r in ("train", "val", "test")}
    assert not movies["train"] & movies["val"] and not movies["train"] & movies["test"] and not movies["val"] & movies["test"]


def test_snippets_are_consecutive_windows():
    assert snippet_windows(list("abcdefg"), 3) == [["a", "b", "c"], ["d", "e", "f"], ["g"]]


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURE, tmp_path / "data")
    return tmp_path / "data"


def test_a_row_with_no_quotes_names_file_and_row(tmp_path):
    with pytest.raises(PipelineInputError, match=r"tropes\.csv: row 6 \('Ling Ling Fat'\): no quotes"):
        read_ziems_characters(FOLDER, CLUSTERS)
    with pytest.raises(PipelineInputError, match=r"row 5 .*listed as having no quotes"):
        read_ziems_characters(FOLDER, CLUSTERS, empty_rows=(5, 6))


def test_an_unknown_trope_name_names_file_and_row(tmp_path):
    root = _copy(tmp_path)
    csv_path = root / "ziems_tropes" / "tropes.csv"
    csv_path.write_text(csv_path.read_text().replace("Long Fat", "X").replace("Dumb Muscle", "Dumb Musle", 1))
    with pytest.raises(PipelineInputError, match=r"tropes\.csv: row 2 \('Marty McFly'\): trope 'dumb_musle' is not a CMU trope"):
        read_ziems_characters(root / "ziems_tropes", root / "cmu_tvtropes" / "tvtropes.clusters.txt", (6,))


def test_a_test_index_that_is_not_a_row_is_an_error(tmp_path):
    root = _copy(tmp_path)
    test_json = root / "ziems_tropes" / "test.json"
    payload = json.loads(test_json.read_text())
    payload["labels"]["10"] = "A"
    test_json.write_text(json.dumps(payload))
    with pytest.raises(PipelineInputError, match=r"test\.json: test key '10' is not a row of tropes\.csv \(0\.\.9\)"):
        read_test_rows(root / "ziems_tropes", 10)
    answers = root / "ziems_tropes" / "answers" / "answer-tiny.tsv"
    answers.write_text(answers.read_text() + "3\tA\tA\n")
    with pytest.raises(PipelineInputError, match=r"answer-tiny\.tsv:4: index 3 is not a test character"):
        read_answers(answers, [1, 3, 5], ["A", "B", "C"])


def test_answers_keep_codes_in_order_and_drop_free_text():
    codes = option_codes(FOLDER)
    assert codes == {"A": "absent_minded_professor", "B": "dumb_muscle", "C": "the_chief"}
    assert read_answers(FOLDER / "answers" / "answer-tiny.tsv", [1, 3, 5], list(codes)) == [["A"], ["C", "B"], []]


def test_task_masks_names_and_orders_test_as_test_json():
    task = load_unseen_task(FIXTURE, UnseenSettings(window=2, val_share=0.4, seed=0, empty_rows=(6,)))
    test = [c.name for c in task.characters if c.role == "test"]
    assert test == ["Dr. Emmett Brown", "Bull", "Chief Harold Brody"]
    brown = task.snippets[[c.name for c in task.characters].index("Dr. Emmett Brown")]
    assert brown[1] == "1.21 gigawatts!\nDoc [NAME] here, listen."
    assert "Marty" not in " ".join(brown)
    assert task.trope_texts[2] == "The Chief"  # no description: the title words alone
    assert task.gold("test") == [[0], [1], [2]]


def test_snippet_table_for_the_word_level_amn():
    task = load_unseen_task(FIXTURE, UnseenSettings(window=2, val_share=0.4, seed=0, empty_rows=(6,)))
    table = snippet_table(task).to_pylist()
    assert {row["split"] for row in table} == {"train", "val", "test"}
    assert not any(row["char_id"].startswith("/m/002|") for row in table)  # Marty McFly shares a test movie
    bull = [row for row in table if row["char_id"] == "/m/003|dumb_muscle"]
    assert [row["D"] for row in bull] == [["Me lift heavy things.", "[NAME] smash!"], ["Duh, what?", "Muscles good. Books bad."],
                                          ["[NAME] strong."]]
    assert bull[0]["movie"] == "Gym Story" and bull[0]["E"] == [] and bull[0]["source"] == "ziems"


def test_scoring_rule_multilabel_and_macro_f1():
    gold = [[0, 1], [1], [2], [2]]
    top1 = np.array([1, 0, 2, 0])  # right (hits 1), wrong (against 1), right, wrong (against 2)
    # label 1: tp 1, fn 1 -> 2/3; label 2: tp 1, fn 1 -> 2/3; 0 is only predicted -> not averaged
    assert macro_f1(gold, top1) == pytest.approx(2 / 3)
    scores = np.array([[0.1, 0.9, 0.0], [0.5, 0.3, 0.2], [0.0, 0.1, 0.9], [0.6, 0.3, 0.1]])
    result = score_ranked(gold, ranked_from_scores(scores, k=2), n_resamples=200)
    assert result["accuracy"] == 0.5 and result["top5_accuracy"] == 0.75 and result["n"] == 4
    low, high = result["accuracy_ci95"]
    assert 0 <= low <= 0.5 <= high <= 1


def test_real_split_and_stored_chatgpt_answers_match_the_readme(shared_data):
    """The README's figures: 30 pool characters share a movie with 27 test characters;
    ChatGPT's stored answers score 0.246 accuracy and 0.119 macro-F1 under its rule."""
    task = load_unseen_task(shared_data, UnseenSettings())
    assert task.split_counts["test"] == 114 and task.split_counts["shared_movie"] == 30
    shared_movies = {m for c in task.characters if c.role == "shared_movie" for m in c.movies}
    assert sum(bool(set(c.movies) & shared_movies) for c in task.characters if c.role == "test") == 27
    from flows.lib.unseen_table import stored_answers

    ranked = stored_answers(shared_data, task, ["chatgpt"])["chatgpt"]
    result = score_ranked(task.gold("test"), ranked, n_resamples=10)
    assert round(result["accuracy"], 3) == 0.246 and round(result["macro_f1"], 3) == 0.119
