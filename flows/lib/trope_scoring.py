"""One scoring rule for every system of the unseen-character table (models, references and the
stored answers of the language models), as shared/data/ziems_tropes/README.md states it:

- a prediction is right when it is one of the character's gold tropes;
- top-5: one of the first five ranked tropes is a gold trope;
- macro-F1 over the gold labels: a right prediction counts for the gold label it hit, a wrong
  one against the character's first gold trope; F1 is averaged over the labels that occur as
  gold in the scored set (labels only ever predicted add to no average).

Intervals: 95% percentile bootstrap over the scored characters."""
from __future__ import annotations

import numpy as np

from flows.lib.bootstrap import bootstrap

NO_ANSWER = -1  # a system that gave no valid trope for a character


def _single_label(gold: list[list[int]], top1: np.ndarray) -> np.ndarray:
    """The gold label each prediction is scored against (the README rule)."""
    return np.array([p if p in g else g[0] for g, p in zip(gold, top1)])


def macro_f1(gold: list[list[int]], top1: np.ndarray) -> float:
    truth = _single_label(gold, top1)
    scores = []
    for label in np.unique(truth):
        tp = np.sum((truth == label) & (top1 == label))
        fp = np.sum((truth != label) & (top1 == label))
        fn = np.sum((truth == label) & (top1 != label))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(scores))


def _point(gold: list[list[int]], ranked: list[list[int]]) -> dict[str, float]:
    top1 = np.array([r[0] if r else NO_ANSWER for r in ranked])
    hit1 = np.array([p in g for g, p in zip(gold, top1)])
    hit5 = np.array([bool(set(r[:5]) & set(g)) for g, r in zip(gold, ranked)])
    return {"accuracy": float(hit1.mean()), "top5_accuracy": float(hit5.mean()), "macro_f1": macro_f1(gold, top1)}


def score_ranked(
    gold: list[list[int]], ranked: list[list[int]], n_resamples: int = 2000, seed: int = 0
) -> dict[str, object]:
    """gold: per character its trope ids, first gold first; ranked: per character its predicted
    trope ids, best first (may be shorter than five, or empty for no answer). Returns accuracy,
    top5_accuracy, macro_f1, each with a 95% bootstrap interval, and n."""
    if len(gold) != len(ranked) or not gold:
        raise ValueError(f"score_ranked: {len(gold)} gold rows, {len(ranked)} predictions")
    return bootstrap(lambda rows: _point([gold[i] for i in rows], [ranked[i] for i in rows]), len(gold), n_resamples, seed)


def ranked_from_scores(scores: np.ndarray, k: int = 5) -> list[list[int]]:
    """scores [n, n_tropes] -> the k best trope ids per row, best first."""
    return np.argsort(-scores, axis=1, kind="stable")[:, :k].tolist()


def summary_line(name: str, row: dict) -> str:
    """One scored row (score_ranked's dict) as a log line."""
    return (f"{name:24s} acc {row['accuracy']:.3f} {row['accuracy_ci95']}  top5 {row['top5_accuracy']:.3f}  "
            f"macro-F1 {row['macro_f1']:.3f}  n {row['n']}")
