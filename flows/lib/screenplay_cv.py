"""Tropes of unseen characters on the screenplays (issue 15): k-fold cross-validation by movie, so
that every character with screenplay snippets is tested once, by systems that never saw its movie
or a sequel of it (flows/lib/splits.py `movie_folds`).

Fold f: test = the characters of fold f, val = those of fold f + 1 (mod k), train = the rest.
Every system of flows/lib/unseen_table.py chooses its setting on val, refits on train + val and
scores the test fold; the test predictions of all folds are pooled and scored once by
flows/lib/trope_scoring.py, with bootstrap intervals over characters. A character is a person
(freebase id) with all the tropes of its rows; a snippet is one text, its names masked at
ingest: the character's lines D, the other characters' lines O (without their speaker cues,
which are names) and the context E, in that order, since the sentence encoder truncates."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from flows.lib.errors import PipelineInputError
from flows.lib.schemas import CHARACTERS, SNIPPETS, read_table
from flows.lib.splits import movie_folds
from flows.lib.trope_scoring import ranked_from_scores, score_ranked
from flows.lib.unseen_amn import SentenceAMNSettings
from flows.lib.unseen_references import tfidf_matrix, zero_shot_scores
from flows.lib.unseen_table import character_vectors, supervised_scores, unit_mean
from flows.lib.unseen_task import UnseenTask, trope_texts

VERBATIM_MIN_WORDS = 5  # shorter lines ("Yes, sir.") recur across any two scripts


@dataclasses.dataclass
class ScreenplayCharacter:
    freebase_id: str
    name: str
    tropes: tuple[str, ...]  # every trope of the person's rows, in trope-file order
    movies: tuple[str, ...]
    fold: int
    role: str = ""  # train | val | test within one fold


def snippet_text(snippet: dict) -> str:
    return "\n".join([*snippet["D"], *(other["text"] for other in snippet["O"]), *snippet["E"]])


def load_screenplay_task(snippets_path: Path, characters_path: Path, descriptions_path: Path, folds: int,
                         seed: int) -> UnseenTask:
    """The screenplay characters with their fold (`ScreenplayCharacter.fold`), masked snippet
    texts and the trope texts, as the systems of flows/lib/unseen_table.py read them."""
    if folds < 3:
        raise PipelineInputError(f"screenplay_cv.folds: {folds}; cross-validation with a val fold needs 3 or more")
    trope_ids, texts = trope_texts(descriptions_path)
    snippets = read_table(snippets_path, SNIPPETS).to_pylist()
    rows = {row["char_id"]: row for row in read_table(characters_path, CHARACTERS).to_pylist()}
    people: dict[str, dict] = {}
    for snippet in snippets:
        row = rows.get(snippet["char_id"])
        if row is None:
            raise PipelineInputError(f"{snippets_path}: char_id '{snippet['char_id']}' is not a row of {characters_path}")
        if row["trope"] not in trope_ids:
            raise PipelineInputError(f"{characters_path}: trope '{row['trope']}' of '{row['char_id']}' has no "
                                     f"description in {descriptions_path}")
        person = people.setdefault(row["freebase_id"], {"rows": {}, "texts": {}})
        person["rows"][row["char_id"]] = row
        # a person listed under two tropes has its snippets twice: keep one of each
        person["texts"].setdefault(snippet_text(snippet), None)
    person_rows = [row for person in people.values() for row in person["rows"].values()]
    fold_of = movie_folds([SimpleNamespace(**row) for row in person_rows], folds, seed)
    characters, snippet_texts = [], []
    for freebase_id in sorted(people):
        own = people[freebase_id]["rows"].values()
        tropes = {row["trope"] for row in own}
        characters.append(ScreenplayCharacter(
            freebase_id, next(iter(own))["character"], tuple(t for t in trope_ids if t in tropes),
            tuple(sorted({row["movie"] for row in own})), fold_of[freebase_id]))
        snippet_texts.append(list(people[freebase_id]["texts"]))
    counts = {f"fold{k}": sum(c.fold == k for c in characters) for k in range(folds)}
    return UnseenTask(trope_ids, texts, characters, snippet_texts, counts)


def fold_roles(task: UnseenTask, fold: int, folds: int) -> UnseenTask:
    """The task with roles for `fold`: test = fold, val = fold + 1 (mod folds), train = the rest."""
    def role(character: ScreenplayCharacter) -> str:
        return "test" if character.fold == fold else "val" if character.fold == (fold + 1) % folds else "train"

    return dataclasses.replace(task, characters=[dataclasses.replace(c, role=role(c)) for c in task.characters])


def fold_leakage(task: UnseenTask) -> dict:
    """What a fold's test characters share with the characters it fits on (train + val): people
    that share a movie, and own or other lines of VERBATIM_MIN_WORDS+ words found verbatim."""
    fit_movies = {m for c in task.characters if c.role != "test" for m in c.movies}
    test_people = [c for c in task.characters if c.role == "test"]

    def long_lines(roles: set[str]) -> list[str]:
        return [line for c, texts in zip(task.characters, task.snippets) if (c.role in roles)
                for text in texts for line in text.split("\n") if len(line.split()) >= VERBATIM_MIN_WORDS]

    fit_lines = set(long_lines({"train", "val"}))
    test_lines = long_lines({"test"})
    return {
        "test_people_sharing_a_movie": sum(bool(set(c.movies) & fit_movies) for c in test_people),
        "test_lines": len(test_lines),
        "test_lines_verbatim_in_fit": sum(line in fit_lines for line in test_lines),
    }


def cross_validated_table(task: UnseenTask, folds: int, snippet_vectors: np.ndarray, trope_vectors: np.ndarray,
                          cs: list[float], amn: SentenceAMNSettings, n_resamples: int) -> dict:
    """metrics/screenplay_cv.json: per system the pooled test scores of all folds (accuracy,
    top-5, macro-F1 with 95% intervals, n) and the accuracy of each fold; then each fold's val
    choices, sizes and leakage check, and the protocol."""
    vectors = character_vectors(task, snippet_vectors)
    texts = ["\n".join(s) for s in task.snippets]
    mean_x = unit_mean(vectors)
    class_of = {trope: i for i, trope in enumerate(task.trope_ids)}
    gold = [[class_of[t] for t in c.tropes] for c in task.characters]
    pooled = {"zero_shot_descriptions": zero_shot_scores(mean_x, trope_vectors)}  # reads no label
    per_fold = []
    for fold in range(folds):
        fold_task = fold_roles(task, fold, folds)
        fit = fold_task.indices("train", "val")
        scores, choices, counts, _ = supervised_scores(fold_task, vectors, tfidf_matrix(texts, fit), mean_x,
                                                       trope_vectors, ("train",), cs, amn)
        test = fold_task.indices("test")
        for name, test_scores in scores.items():
            pooled.setdefault(name, np.zeros((len(task.characters), len(task.trope_ids))))[test] = test_scores
        per_fold.append({"characters": counts, "choices": choices, "leakage": fold_leakage(fold_task),
                         "test": test})
    rows = {}
    for name, scores in pooled.items():
        ranked = ranked_from_scores(scores)
        rows[name] = score_ranked(gold, ranked, n_resamples)
        rows[name]["fold_accuracy"] = [
            score_ranked([gold[i] for i in fold["test"]], [ranked[i] for i in fold["test"]], 1)["accuracy"]
            for fold in per_fold]
    for fold in per_fold:
        del fold["test"]
    return {
        **rows,
        "folds": per_fold,
        "protocol": {
            "folds": folds,
            "characters": len(task.characters),
            "per_fold": task.split_counts,
            "snippets": int(sum(len(s) for s in task.snippets)),
            "amn": dataclasses.asdict(amn),
            "bootstrap_resamples": n_resamples,
            "logreg_cs": cs,
        },
    }
