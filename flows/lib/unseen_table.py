"""The unseen-character table: every system scored by flows/lib/trope_scoring.py on the 114
test characters of Ziems et al., trained (where it trains) on the pool without the characters
that share a movie with a test character; the second figure adds those back.

Protocol: every choice (C of each LR, the AMN's epoch count) is made on val with the model fitted
on train; the chosen setting is then refitted on train + val and test is read once."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from flows.lib.trope_scoring import ranked_from_scores, score_ranked
from flows.lib.unseen_amn import SentenceAMNSettings, best_epoch, persona_vectors, train_sentence_amn, trope_scores
from flows.lib.unseen_purity import purity_table
from flows.lib.unseen_references import majority_scores, tfidf_matrix, tuned_logreg, tuned_mix, zero_shot_scores
from flows.lib.unseen_task import ZIEMS, UnseenTask
from flows.lib.ziems import option_codes, read_answers

GPT4_PAPER = {"macro_f1": 0.449, "source": "Ziems et al. 2024, zero-shot GPT-4 as the paper reports it; no stored answers"}


def character_vectors(task: UnseenTask, snippet_vectors: np.ndarray) -> list[np.ndarray]:
    """Split the flat snippet vectors (task.all_texts() order) per character."""
    bounds = np.cumsum([0] + [len(s) for s in task.snippets])
    return [snippet_vectors[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def unit_mean(vectors: list[np.ndarray]) -> np.ndarray:
    means = np.stack([v.mean(0) for v in vectors])
    return means / np.linalg.norm(means, axis=1, keepdims=True).clip(1e-9)


def stored_answers(data_root: Path, task: UnseenTask, models: list[str]) -> dict[str, list[list[int]]]:
    """model -> ranked trope ids per test character, from answers/answer-<model>.tsv."""
    folder = Path(data_root) / ZIEMS
    codes = option_codes(folder)
    class_of = {t: i for i, t in enumerate(task.trope_ids)}
    test_rows = [c.row for c in task.characters if c.role == "test"]
    return {
        model: [[class_of[codes[code]] for code in answer]
                for answer in read_answers(folder / "answers" / f"answer-{model}.tsv", test_rows, list(codes))]
        for model in models
    }


def supervised_scores(task: UnseenTask, vectors: list[np.ndarray], texts_x, mean_x, trope_vectors: np.ndarray,
                      train_roles: tuple[str, ...], cs: list[float], amn: SentenceAMNSettings):
    """Fit every system that trains on the characters of `train_roles`, choosing its setting on
    role "val", refit on both and score role "test". -> (system -> test scores [n_test, n_tropes],
    val choices, character counts, test features for purity)."""
    train, val, test = task.indices(*train_roles), task.indices("val"), task.indices("test")
    gold_all = [[task.trope_ids.index(t) for t in c.tropes] for c in task.characters]
    n_tropes = len(task.trope_ids)
    scores, choices = {}, {}

    fit = np.concatenate([train, val])
    scores["majority"] = majority_scores([gold_all[i] for i in fit], len(test), n_tropes)
    scores["tfidf_lr"], choices["tfidf_lr"], _ = tuned_logreg(texts_x, gold_all, train, val, test, n_tropes, cs)
    scores["minilm_lr"], choices["minilm_lr"], val_scores = tuned_logreg(mean_x, gold_all, train, val, test, n_tropes, cs)
    features = {"minilm_lr_probabilities": scores["minilm_lr"], "mean_minilm": mean_x[test]}
    cosines = zero_shot_scores(mean_x, trope_vectors)
    scores["minilm_lr_zero_shot"], choices["minilm_lr_zero_shot"] = tuned_mix(
        [gold_all[i] for i in val], (val_scores, cosines[val]), (scores["minilm_lr"], cosines[test]))

    _, history = train_sentence_amn([vectors[i] for i in train], [gold_all[i] for i in train], trope_vectors, amn,
                                    amn.max_epochs, val=([vectors[i] for i in val], [gold_all[i] for i in val]))
    epochs = best_epoch(history)
    model, refit = train_sentence_amn([vectors[i] for i in fit], [gold_all[i] for i in fit], trope_vectors, amn, epochs)
    scores["amn"] = trope_scores(model, [vectors[i] for i in test], amn)
    features["amn_z"] = persona_vectors(model, [vectors[i] for i in test], amn)
    choices["amn"] = {"epochs": epochs, "val_history": history, "steps_per_epoch": history[0]["steps"],
                      "refit_steps_per_epoch": refit[0]["steps"]}
    counts = {"train": len(train), "val": len(val), "refit": len(fit), "test": len(test)}
    return scores, choices, counts, features


def _supervised_rows(task: UnseenTask, vectors: list[np.ndarray], texts_x, mean_x, trope_vectors: np.ndarray,
                     train_roles: tuple[str, ...], cs: list[float], amn: SentenceAMNSettings, n_resamples: int):
    scores, choices, counts, features = supervised_scores(task, vectors, texts_x, mean_x, trope_vectors,
                                                          train_roles, cs, amn)
    gold_test = task.gold("test")
    rows = {name: score_ranked(gold_test, ranked_from_scores(s), n_resamples) for name, s in scores.items()}
    return rows, choices, counts, features


def unseen_table(
    task: UnseenTask, snippet_vectors: np.ndarray, trope_vectors: np.ndarray, answers: dict[str, list[list[int]]],
    cs: list[float], amn: SentenceAMNSettings, n_resamples: int, purity_ks: list[int],
) -> dict:
    """metrics/unseen_tropes.json: one object per system (headline), then the second figure,
    the purity of the test characters' clusters (flows/lib/unseen_purity.py: the AMN's z, the
    supervised reference's LR probabilities, the unsupervised mean MiniLM vector, random),
    the val choices and the protocol."""
    vectors = character_vectors(task, snippet_vectors)
    texts = ["\n".join(s) for s in task.snippets]
    mean_x = unit_mean(vectors)
    gold_test = task.gold("test")
    test = task.indices("test")

    head_fit = np.concatenate([task.indices("train"), task.indices("val")])
    rows, choices, counts, features = _supervised_rows(task, vectors, tfidf_matrix(texts, head_fit), mean_x, trope_vectors,
                                             ("train",), cs, amn, n_resamples)
    rows["zero_shot_descriptions"] = score_ranked(
        gold_test, ranked_from_scores(zero_shot_scores(mean_x, trope_vectors)[test]), n_resamples)
    for model, ranked in answers.items():
        rows[model.replace("-", "_")] = score_ranked(gold_test, ranked, n_resamples)

    shared_fit = np.concatenate([head_fit, task.indices("shared_movie")])
    shared_rows, shared_choices, shared_counts, _ = _supervised_rows(
        task, vectors, tfidf_matrix(texts, shared_fit), mean_x, trope_vectors, ("train", "shared_movie"), cs, amn,
        n_resamples)
    return {
        **rows,
        "gpt4_paper": GPT4_PAPER,
        "with_shared_movies": shared_rows,
        # Held-out characters only: the 114 test characters, clustered by each system's vectors.
        "purity": purity_table(np.array([g[0] for g in gold_test]), features, purity_ks),
        "choices": {"headline": choices, "with_shared_movies": shared_choices},
        "protocol": {
            "split": task.split_counts,
            "characters": {"headline": counts, "with_shared_movies": shared_counts},
            "snippets": int(sum(len(s) for s in task.snippets)),
            "amn": dataclasses.asdict(amn),
            "bootstrap_resamples": n_resamples,
            "logreg_cs": cs,
        },
    }
