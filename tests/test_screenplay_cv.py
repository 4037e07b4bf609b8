"""Stage screenplay_cv on a small screenplay corpus written as real Parquet: k-fold by movie, every
character tested exactly once, no movie or sequel in two parts of a fold, real MiniLM vectors in
its own cache (a rerun with unchanged text loads no model), one pooled row per system."""
import json
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from flows.lib.errors import PipelineInputError
from flows.lib.schemas import CHARACTERS, SNIPPETS, write_table
from flows.lib.screenplay_cv import fold_leakage, fold_roles, load_screenplay_task
from flows.lib.splits import movie_folds

pytestmark = pytest.mark.usefixtures("one_thread")
PROJECT_PARAMS = Path(__file__).parents[1] / "params.yaml"
LINES = {
    "knight": ["I will guard the castle with my sword.", "Ride out, the enemy army is at the gate!",
               "My shield and my honour belong to the king."],
    "banker": ["Sell the shares before the market opens.", "The bank wants its money by Friday.",
               "That deal is worth ten million dollars."],
    "lover": ["I have loved you since the day we met.", "Kiss me before the train leaves.",
              "My heart breaks every time you go."],
}
TROPES = list(LINES)
FOLDS = 3


def _corpus(root: Path) -> tuple[Path, Path, Path]:
    """Fifteen people in twelve movies (movie 'Quest' and its sequel 'Quest II' share a knight);
    a person under two tropes has its snippets twice, as ingest writes them."""
    characters, snippets = [], []
    for person in range(15):
        trope = TROPES[person % 3]
        movie = f"Movie {person // 3 * 2 + person % 2}" if person >= 2 else ("Quest", "Quest II")[person]
        name = "Sir Hugo" if person < 2 else f"Person {person}"
        tropes = [trope, "lover"] if person == 4 else [trope]
        for one in tropes:
            char_id = f"/m/{person}|{one}"
            characters.append({"char_id": char_id, "trope": one, "character": name, "movie": movie, "actor": "",
                               "freebase_id": f"/m/{person}" if person >= 2 else "/m/hugo" + str(person), "split": "train"})
            for scene, line in enumerate(LINES[trope]):
                snippets.append({"snippet_id": f"{char_id}|{scene}", "char_id": char_id, "movie": movie, "scene": scene,
                                 "D": [line, f"I say it again: {line.lower()}"], "E": ["[NAME] looks up."],
                                 "O": [{"speaker": "BOB", "text": "Go on."}], "split": "train", "source": "screenplays"})
    write_table(pa.Table.from_pylist(characters, schema=CHARACTERS), root / "characters.parquet", CHARACTERS)
    write_table(pa.Table.from_pylist(snippets, schema=SNIPPETS), root / "snippets_screenplays.parquet", SNIPPETS)
    descriptions = root / "trope_descriptions.jsonl"
    descriptions.write_text("".join(json.dumps({"trope": t, "title": t.title(), "description": f"A {t}."}) + "\n"
                                    for t in TROPES), encoding="utf-8")
    return root / "snippets_screenplays.parquet", root / "characters.parquet", descriptions


def test_every_character_is_tested_once_and_no_movie_crosses_a_fold(tmp_path):
    task = load_screenplay_task(*_corpus(tmp_path), FOLDS, seed=13)
    assert len(task.characters) == 15 and sum(task.split_counts.values()) == 15
    person_four = next(c for c in task.characters if c.freebase_id == "/m/4")
    assert person_four.tropes == ("banker", "lover") and len(task.snippets[task.characters.index(person_four)]) == 3
    # the sequel's knight is one person with the first film's knight: same fold
    assert len({c.fold for c in task.characters if c.name == "Sir Hugo"}) == 1
    tested = []
    for fold in range(FOLDS):
        fold_task = fold_roles(task, fold, FOLDS)
        roles = [c.role for c in fold_task.characters]
        assert {"train", "val", "test"} <= set(roles)
        movies = {role: {m for c in fold_task.characters if c.role == role for m in c.movies} for role in set(roles)}
        assert not movies["test"] & (movies["train"] | movies["val"]) and not movies["val"] & movies["train"]
        assert fold_leakage(fold_task)["test_people_sharing_a_movie"] == 0
        tested += [c.freebase_id for c in fold_task.characters if c.role == "test"]
    assert sorted(tested) == sorted(c.freebase_id for c in task.characters)


def test_movie_folds_follow_the_seed_and_keep_movie_groups_whole(tmp_path):
    task = load_screenplay_task(*_corpus(tmp_path), FOLDS, seed=13)
    rows = [type("Row", (), {"trope": c.tropes[0], "freebase_id": c.freebase_id, "character": c.name, "movie": m})
            for c in task.characters for m in c.movies]
    assert movie_folds(rows, FOLDS, 13) == movie_folds(rows, FOLDS, 13)
    assert set(movie_folds(rows, FOLDS, 13).values()) == set(range(FOLDS))


def test_stage_pools_every_fold_and_a_rerun_loads_no_model(tmp_path, monkeypatch):
    from flows.screenplay_cv import screenplay_cv
    from models import runtime

    snippets, characters, descriptions = _corpus(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    params = yaml.safe_load(PROJECT_PARAMS.read_text())
    params["paths"].update(snippets_dir=str(snippets.parent), characters=str(characters))
    params["data"]["root"] = str(tmp_path / "shared")
    target = Path(params["data"]["root"], "tvtropes_descriptions", "trope_descriptions.jsonl")
    target.parent.mkdir(parents=True)
    target.write_text(descriptions.read_text())
    params["screenplay_cv"].update(folds=FOLDS, bootstrap=50)
    params["unseen"]["logreg_cs"] = [1.0, 10.0]
    params["unseen"]["amn"].update(attn_dim=8, max_epochs=2, batch_size=2, draw=3)

    metrics = screenplay_cv(params)
    assert json.loads(Path(params["paths"]["screenplay_cv_metrics"]).read_text())["protocol"]["characters"] == 15
    for system in ("amn", "majority", "tfidf_lr", "minilm_lr", "minilm_lr_zero_shot", "zero_shot_descriptions"):
        row = metrics[system]
        assert row["n"] == 15 and len(row["fold_accuracy"]) == FOLDS
        assert row["accuracy_ci95"][0] <= row["accuracy"] <= row["accuracy_ci95"][1] <= row["top5_accuracy_ci95"][1]
    # the three tropes speak apart: sentence vectors + LR find them on movies never seen
    assert metrics["minilm_lr"]["accuracy"] >= 0.8 > metrics["majority"]["accuracy"]
    assert [fold["leakage"]["test_people_sharing_a_movie"] for fold in metrics["folds"]] == [0] * FOLDS

    def no_model(*args, **kwargs):
        raise AssertionError("a rerun with unchanged text loaded the sentence model")

    monkeypatch.setattr(runtime, "load_sentence_model", no_model)
    assert screenplay_cv(params)["minilm_lr"] == metrics["minilm_lr"]


def test_a_snippet_of_an_unknown_character_names_the_file(tmp_path):
    snippets, characters, descriptions = _corpus(tmp_path)
    table = pa.Table.from_pylist([{"snippet_id": "x", "char_id": "/m/nobody|knight", "movie": "M", "scene": 0,
                                   "D": ["Hi."], "E": [], "O": [], "split": "train", "source": "screenplays"}],
                                 schema=SNIPPETS)
    write_table(table, snippets, SNIPPETS)
    with pytest.raises(PipelineInputError, match=r"snippets_screenplays\.parquet: char_id '/m/nobody\|knight' is not a row"):
        load_screenplay_task(snippets, characters, descriptions, FOLDS, seed=13)
