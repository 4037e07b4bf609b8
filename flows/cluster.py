"""Stage `cluster`: embed every character with the trained AMN and measure how well agglomerative
clusters of the embeddings recover the tropes (the paper's Table 3), beside three references
scored on the same characters and k: TF-IDF of the character's own lines, the mean MiniLM
embedding of its snippets' own lines, and random assignment (the floor).

A character's embedding is z with all of its snippets (every split, story order) read as one
example, i.e. N_diag = its snippet count. One row per char_id: a person listed under two tropes
is two rows with the same vector, each with its own gold trope.

Purity. Eq 19 of the paper (after Bamman et al. 2013) prints
    (1/N) sum_i max_j |g_i ∩ c_j|,  g_i the gold trope clusters, c_j the k clusters:
each trope counts its largest cluster, which is what the literature calls inverse purity. The
standard purity (Manning et al., IR book §16.3) goes the other way,
    (1/N) sum_j max_i |g_i ∩ c_j|:  each cluster counts its most common trope.
Both are written: `purity` (standard) and `purity_eq19` (as printed). Cutting one agglomerative
tree at a larger k refines the clusters, which can only raise standard purity and only lower
Eq 19; the paper's scores fall as k grows, so they follow the formula as printed.

The AMN was trained on these characters' tropes (under split.unit=snippet every character has
training snippets) and the references are unsupervised, as in the paper's comparison with
Bamman et al.; only split.unit=character gives characters the model has not learned from.

Writes data/character_embeddings.parquet and metrics/purity.json (percentages, as Table 3)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from prefect import flow

from flows.lib.config import PARAMS_FILE, load_params, param, write_json
from flows.lib.errors import PipelineInputError
from flows.evaluate import MODEL_PATH, evaluate_settings, load_checked_model, run_model
from flows.lib.orchestration import fingerprint, run_stage, stage_task
from flows.lib.schemas import CHARACTER_EMBEDDINGS, read_table, write_table
from flows.train import TropeData, encode_snippets, load_trope_data, table_paths
from models.runtime import load_sentence_model, pick_device
from models.vocab import tokenize

EMBEDDINGS_PATH = Path("data/character_embeddings.parquet")
METRICS_PATH = Path("metrics/purity.json")
LINKAGES = ("ward", "average", "complete", "single")
METHODS = ("amn", "tfidf", "minilm", "random")
# Table 3 of Chu et al. (2018), purity in %: Persona Regression and Dirichlet Persona (Bamman et
# al. 2014) and the AMN, on the paper's IMDb characters.
PAPER_TABLE3 = {
    "PR": {"25": 42.9, "50": 36.5, "100": 30.3},
    "DP": {"25": 39.63, "50": 31.0, "100": 24.4},
    "AMN": {"25": 48.4, "50": 48.1, "100": 45.2},
}


@dataclass
class ClusterSettings:
    ks: list[int]
    linkage: str = "ward"
    random_repeats: int = 20
    seed: int = 0
    tfidf_max_features: int = 20000
    embed_batch_size: int = 64


# --- purity --------------------------------------------------------------------------------
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


def agglomerative(vectors: np.ndarray, k: int, linkage: str) -> np.ndarray:
    """Cluster ids [n] of the L2-normalised rows (so Euclidean ward follows cosine similarity)."""
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.preprocessing import normalize

    return AgglomerativeClustering(n_clusters=k, linkage=linkage).fit_predict(normalize(vectors))


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


# --- character features --------------------------------------------------------------------
def character_rows(data: TropeData) -> tuple[list[str], list[np.ndarray]]:
    """char_ids in sorted order and each one's snippet rows in table (story) order, all splits."""
    rows_of: dict[str, list[int]] = {}
    for row, char_id in enumerate(data.char_ids):
        rows_of.setdefault(char_id, []).append(row)
    char_ids = sorted(rows_of)
    return char_ids, [np.array(rows_of[char_id]) for char_id in char_ids]


def own_line_texts(data: TropeData, rows: list[np.ndarray]) -> list[list[str]]:
    """Per character: the own lines (D) of each of its snippets, one text per snippet."""
    return [[" ".join(data.lines["D"][row]) for row in picks] for picks in rows]


def tfidf_features(texts: list[list[str]], max_features: int) -> np.ndarray:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(tokenizer=tokenize, lowercase=False, token_pattern=None, sublinear_tf=True,
                                 max_features=max_features)
    return vectorizer.fit_transform("\n".join(snippets) for snippets in texts).toarray()


def minilm_features(texts: list[list[str]], model_name: str, batch_size: int) -> np.ndarray:
    """Mean of the unit MiniLM vectors of a character's snippets' own lines."""
    encoder = load_sentence_model(model_name)
    flat = [text for snippets in texts for text in snippets]
    vectors = encoder.encode(flat, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                             show_progress_bar=False)
    bounds = np.cumsum([0] + [len(snippets) for snippets in texts])
    return np.stack([vectors[start:end].mean(0) for start, end in zip(bounds[:-1], bounds[1:])])


def embed_characters(
    model_path: str | Path, data: TropeData, char_ids: list[str], rows: list[np.ndarray],
    max_tokens: int, batch_size: int, device: str, embeddings_path: str | Path,
) -> pa.Table:
    """z and trope probabilities of every character from all its snippets; written to Parquet."""
    torch_device = pick_device(device)
    model, vocab = load_checked_model(model_path, data, torch_device)
    outputs = run_model(model, encode_snippets(data, vocab, max_tokens), rows, batch_size, torch_device)
    table = pa.table(
        {
            "char_id": char_ids,
            "n_snippets": [len(picks) for picks in rows],
            "z": [vector.tolist() for vector in outputs.z],
            "probs": [vector.tolist() for vector in outputs.probs],
        },
        schema=CHARACTER_EMBEDDINGS,
    )
    write_table(table, embeddings_path, CHARACTER_EMBEDDINGS)
    return table


def read_embeddings(path: str | Path) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(char_ids, n_snippets [n], z [n, d_h], probs [n, n_tropes]) from character_embeddings.parquet."""
    table = read_table(path, CHARACTER_EMBEDDINGS)
    if table.num_rows == 0:
        raise PipelineInputError(f"{path}: no characters")
    as_matrix = lambda name: np.asarray(table.column(name).to_pylist(), dtype=np.float32)  # noqa: E731
    return (table.column("char_id").to_pylist(), np.asarray(table.column("n_snippets").to_pylist()),
            as_matrix("z"), as_matrix("probs"))


def cluster_characters(
    model_path: str | Path, snippets_path: str | Path, characters_path: str | Path, tropes_path: str | Path,
    embed_model: str, inference: dict[str, Any], settings: ClusterSettings, embeddings_path: str | Path,
) -> dict[str, Any]:
    """Pure stage logic: embed, cluster, score; writes the embeddings, returns the metrics."""
    data = load_trope_data(snippets_path, characters_path, tropes_path)
    char_ids, rows = character_rows(data)
    table = embed_characters(model_path, data, char_ids, rows, inference["max_tokens"], inference["batch_size"],
                             inference["device"], embeddings_path)
    gold = np.array([data.labels[picks[0]] for picks in rows])
    texts = own_line_texts(data, rows)
    features = {
        "amn": np.asarray(table.column("z").to_pylist(), dtype=np.float32),
        "tfidf": tfidf_features(texts, settings.tfidf_max_features),
        "minilm": minilm_features(texts, embed_model, settings.embed_batch_size),
    }
    return {
        "characters": len(char_ids),
        "tropes": int(len(np.unique(gold))),
        "k_used": {str(k): min(k, len(char_ids)) for k in settings.ks},
        "linkage": settings.linkage,
        **score_methods(features, gold, settings),
        "paper": PAPER_TABLE3,
    }


# --- stage ---------------------------------------------------------------------------------
def cluster_settings(params: dict[str, Any]) -> ClusterSettings:
    ks = param(params, "cluster.ks", list)
    if not ks or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in ks):
        raise PipelineInputError(f"{PARAMS_FILE}: param 'cluster.ks' must be a list of integers >= 1, got {ks!r}")
    linkage = param(params, "cluster.linkage", str)
    if linkage not in LINKAGES:
        raise PipelineInputError(f"{PARAMS_FILE}: param 'cluster.linkage' is {linkage!r}; valid: {', '.join(LINKAGES)}")
    repeats = param(params, "cluster.random_repeats", int)
    if repeats < 1:
        raise PipelineInputError(f"{PARAMS_FILE}: param 'cluster.random_repeats' must be >= 1, got {repeats}")
    return ClusterSettings(
        ks=ks, linkage=linkage, random_repeats=repeats, seed=param(params, "cluster.seed", int),
        tfidf_max_features=param(params, "baselines.tfidf_max_features", int),
        embed_batch_size=param(params, "baselines.embed_batch_size", int),
    )


@stage_task
def cluster_stage(
    model_path: str, snippets_path: str, characters_path: str, tropes_path: str, embed_model: str,
    inference: dict[str, Any], settings: dict[str, Any], inputs_hash: dict[str, str],
    embeddings_path: str, metrics_path: str,
) -> dict[str, Any]:
    metrics = cluster_characters(model_path, snippets_path, characters_path, tropes_path, embed_model, inference,
                                 ClusterSettings(**settings), embeddings_path)
    write_json(metrics, metrics_path)
    return metrics


@flow(name="cluster_flow")
def cluster_flow() -> dict[str, Any]:
    params = load_params()
    paths = table_paths(params)
    return run_stage(
        cluster_stage,
        outputs=[EMBEDDINGS_PATH, METRICS_PATH],
        model_path=str(MODEL_PATH),
        **paths,
        embed_model=param(params, "embed.model", str),
        inference=evaluate_settings(params),
        settings=asdict(cluster_settings(params)),
        inputs_hash=fingerprint(MODEL_PATH, *paths.values()),
        embeddings_path=str(EMBEDDINGS_PATH),
        metrics_path=str(METRICS_PATH),
    )


if __name__ == "__main__":
    cluster_flow()
