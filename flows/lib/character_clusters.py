"""Character embeddings of the trained AMN and how well agglomerative clusters of them recover
the tropes (the paper's Table 3), beside three references scored on the same characters and k:
TF-IDF of the character's own lines, the mean MiniLM embedding of its snippets' own lines, and
random assignment (the floor). Both purities are scored (flows/lib/metrics.py): `purity`
(standard) and `purity_eq19` (the paper's formula as printed).

A character's embedding is z with all of its snippets (every split, story order) read as one
example, i.e. N_diag = its snippet count. One row per char_id: a person listed under two tropes
is two rows with the same vector, each with its own gold trope.

The AMN was trained on these characters' tropes (under split.unit=snippet every character has
training snippets) and the references are unsupervised, as in the paper's comparison with
Bamman et al.; only split.unit=character gives characters the model has not learned from."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from flows.lib.amn_inference import load_checked_model, run_model
from flows.lib.character_embeddings import agglomerative
from flows.lib.metrics import purity, purity_eq19
from flows.lib.paper import PAPER_TABLE3
from flows.lib.schemas import CHARACTER_EMBEDDINGS, write_table
from flows.lib.text_features import MeanSentenceEmbedder, character_documents, tfidf_vectorizer
from flows.lib.trope_data import TropeData, load_trope_data, own_line_texts
from models.runtime import pick_device

METHODS = ("amn", "tfidf", "minilm", "random")

@dataclass
class ClusterSettings:
    ks: list[int]
    linkage: str = "ward"
    random_repeats: int = 20
    seed: int = 0
    tfidf_max_features: int = 20000
    embed_batch_size: int = 64


def random_clusters(n: int, k: int, seed: int, repeat: int) -> np.ndarray:
    return np.random.default_rng([seed, k, repeat]).integers(0, k, size=n)


def score_methods(
    features: dict[str, np.ndarray], gold: np.ndarray, settings: ClusterSettings
) -> dict[str, dict[str, dict[str, float]]]:
    """{'purity'|'purity_eq19': {method: {k: %}}} for every feature matrix and the random floor;
    k (the requested value names the column) is capped at the number of characters."""
    scores: dict[str, dict[str, dict[str, float]]] = {"purity": {}, "purity_eq19": {}}
    for k in settings.ks:
        used = min(k, len(gold))
        assignments = {name: [agglomerative(vectors, used, settings.linkage)] for name, vectors in features.items()}
        assignments["random"] = [random_clusters(len(gold), used, settings.seed, r)
                                 for r in range(settings.random_repeats)]
        for measure, score in (("purity", purity), ("purity_eq19", purity_eq19)):
            for name, runs in assignments.items():
                value = 100 * float(np.mean([score(gold, clusters) for clusters in runs]))
                scores[measure].setdefault(name, {})[str(k)] = round(value, 2)
    return scores


def embed_characters(
    model_path: str | Path, data: TropeData, char_ids: list[str], rows: list[np.ndarray],
    batch_size: int, device: str,
) -> pa.Table:
    """z and trope probabilities of every character from all its snippets (CHARACTER_EMBEDDINGS)."""
    torch_device = pick_device(device)
    trained = load_checked_model(model_path, data, torch_device)
    outputs = run_model(trained.model, trained.encode(data), rows, batch_size, torch_device)
    return pa.table(
        {
            "char_id": char_ids,
            "n_snippets": [len(picks) for picks in rows],
            "z": [vector.tolist() for vector in outputs.z],
            "probs": [vector.tolist() for vector in outputs.probs],
        },
        schema=CHARACTER_EMBEDDINGS,
    )


def cluster_characters(
    model_path: str | Path, snippets_path: str | Path, characters_path: str | Path, tropes_path: str | Path,
    embed_model: str, batch_size: int, device: str, settings: ClusterSettings, embeddings_path: str | Path,
) -> dict[str, Any]:
    """Embed every character (written to `embeddings_path`), cluster, score; returns the metrics."""
    data = load_trope_data(snippets_path, characters_path, tropes_path)
    char_ids, rows = data.characters()
    table = embed_characters(model_path, data, char_ids, rows, batch_size, device)
    write_table(table, embeddings_path, CHARACTER_EMBEDDINGS)
    gold = np.array([data.labels[picks[0]] for picks in rows])
    texts = own_line_texts(data, rows)
    features = {
        "amn": np.asarray(table.column("z").to_pylist(), dtype=np.float32),
        "tfidf": tfidf_vectorizer(settings.tfidf_max_features).fit_transform(character_documents(texts)).toarray(),
        "minilm": MeanSentenceEmbedder(embed_model, settings.embed_batch_size)(texts),
    }
    return {
        "characters": len(char_ids),
        "tropes": int(len(np.unique(gold))),
        "k_used": {str(k): min(k, len(char_ids)) for k in settings.ks},
        "linkage": settings.linkage,
        **score_methods(features, gold, settings),
        "paper": PAPER_TABLE3,
    }
