"""Character embeddings (data/character_embeddings.parquet, stage cluster): their reader, and
agglomerative clustering of embedding rows, which stage cluster applies to characters and stage
narrative to movies."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from flows.lib.errors import PipelineInputError
from flows.lib.schemas import CHARACTER_EMBEDDINGS, read_table

LINKAGES = ("ward", "average", "complete", "single")


def read_embeddings(path: str | Path) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(char_ids, n_snippets [n], z [n, d_h], probs [n, n_tropes]) from character_embeddings.parquet."""
    table = read_table(path, CHARACTER_EMBEDDINGS)
    if table.num_rows == 0:
        raise PipelineInputError(f"{path}: no characters")
    as_matrix = lambda name: np.asarray(table.column(name).to_pylist(), dtype=np.float32)  # noqa: E731
    return (table.column("char_id").to_pylist(), np.asarray(table.column("n_snippets").to_pylist()),
            as_matrix("z"), as_matrix("probs"))


def agglomerative(vectors: np.ndarray, k: int, linkage: str) -> np.ndarray:
    """Cluster ids [n] of the L2-normalised rows (so Euclidean ward follows cosine similarity)."""
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.preprocessing import normalize

    return AgglomerativeClustering(n_clusters=k, linkage=linkage).fit_predict(normalize(vectors))
