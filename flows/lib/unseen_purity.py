"""Cluster purity of held-out characters (the paper's Table 3, done on characters no model was
trained on), three measures side by side, since each rewards something else:

  purity        standard purity: each cluster counts its most common trope (rewards many small
                clusters; 1.0 when every character is its own cluster);
  purity_eq19   Eq 19 as the paper prints it (inverse purity): each trope counts its largest
                cluster (rewards few big clusters; 1.0 when all characters share one);
  nmi           normalised mutual information of clusters and tropes (penalises both extremes).

Gold = each character's first trope. Clusters: agglomerative (Ward) on L2-normalised vectors."""
from __future__ import annotations

import numpy as np


def cluster_measures(gold: np.ndarray, clusters: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import normalized_mutual_info_score
    from sklearn.metrics.cluster import contingency_matrix

    counts = contingency_matrix(gold, clusters)  # [tropes, clusters]
    return {
        "purity": round(float(counts.max(axis=0).sum() / len(gold)), 4),
        "purity_eq19": round(float(counts.max(axis=1).sum() / len(gold)), 4),
        "nmi": round(float(normalized_mutual_info_score(gold, clusters)), 4),
    }


def purity_table(gold: np.ndarray, features: dict[str, np.ndarray], ks: list[int], seed: int = 0,
                 random_repeats: int = 20) -> dict[str, dict[str, dict[str, float]]]:
    """{system: {k: measures}} for each feature matrix, plus 'random' (equal-sized random
    clusters, the mean of `random_repeats` draws): the floor every measure should be read against."""
    from sklearn.cluster import AgglomerativeClustering

    table: dict[str, dict[str, dict[str, float]]] = {}
    for name, x in features.items():
        x = x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-9)
        table[name] = {str(k): cluster_measures(gold, AgglomerativeClustering(n_clusters=min(k, len(x))).fit_predict(x))
                       for k in ks}
    rng = np.random.default_rng(seed)
    table["random"] = {}
    for k in ks:
        draws = [cluster_measures(gold, rng.permutation(np.arange(len(gold)) % min(k, len(gold))))
                 for _ in range(random_repeats)]
        table["random"][str(k)] = {m: round(float(np.mean([d[m] for d in draws])), 4) for m in draws[0]}
    return table
