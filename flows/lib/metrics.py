"""Scores shared by the AMN stages and their references: classification metrics (the paper's
Table 2) and the two purities of clusters against gold tropes (Table 3).

Purity. Eq 19 of the paper (after Bamman et al. 2013) prints
    (1/N) sum_i max_j |g_i ∩ c_j|,  g_i the gold trope clusters, c_j the k clusters:
each trope counts its largest cluster, which is what the literature calls inverse purity. The
standard purity (Manning et al., IR book §16.3) goes the other way,
    (1/N) sum_j max_i |g_i ∩ c_j|:  each cluster counts its most common trope.
Cutting one agglomerative tree at a larger k refines the clusters, which can only raise standard
purity and only lower Eq 19; the paper's scores fall as k grows, so they follow the formula as printed."""
from __future__ import annotations

import numpy as np


def classification_metrics(y_true: list[int] | np.ndarray, y_pred: list[int] | np.ndarray) -> dict[str, float]:
    """Accuracy, support-weighted precision/recall/F1 (as the paper's Table 2) and macro-F1."""
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    precision, recall, f1, _ = precision_recall_fscore_support(y_true, y_pred, average="weighted", zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "f1_macro": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }


def purity(gold: np.ndarray | list, clusters: np.ndarray | list) -> float:
    """Standard purity: (1/N) sum over clusters of the count of its most common gold label."""
    from sklearn.metrics.cluster import contingency_matrix

    table = contingency_matrix(gold, clusters)  # [n_gold, n_clusters]
    return float(table.max(axis=0).sum() / table.sum())


def purity_eq19(gold: np.ndarray | list, clusters: np.ndarray | list) -> float:
    """Eq 19 as printed (inverse purity): (1/N) sum over gold labels of its largest cluster."""
    from sklearn.metrics.cluster import contingency_matrix

    table = contingency_matrix(gold, clusters)
    return float(table.max(axis=1).sum() / table.sum())
