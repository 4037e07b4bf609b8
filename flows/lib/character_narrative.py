"""What the embeddings say about characters and movies (the paper's §6 narrative application
and Fig 4): the payload of data/narrative.json, which the report and the CLI read.

Per character (embeddings of stage cluster): the top tropes the model predicts, the nearest
characters by cosine similarity of z (the same person under another trope is left out: it has
the same vector), and the attention of Fig 4 — the inter-snippet weight of every snippet, the
top snippets, and the word weights inside them, over the words as the model reads them
(lower-cased GloVe tokens, cut at the model's max_tokens per stream).

Per movie: the paper's movie embedding, sum of its characters' z weighted by each one's share
of the movie's snippets (the paper: share of its quotes); agglomerative movie clusters with
their dominant (gold) tropes; and which tropes share a movie, over distinct people."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from flows.lib.amn_inference import load_checked_model, run_model
from flows.lib.character_embeddings import agglomerative, read_embeddings
from flows.lib.errors import PipelineInputError
from flows.lib.schemas import CHARACTERS, SNIPPETS, read_table
from flows.lib.trope_data import load_trope_data
from models.amn import STREAMS
from models.runtime import pick_device
from models.vocab import tokenize


@dataclass
class NarrativeSettings:
    neighbours: int = 10
    top_tropes: int = 5
    top_snippets: int = 3
    movie_clusters: int = 12
    linkage: str = "ward"


def cosine_similarities(vectors: np.ndarray) -> np.ndarray:
    """[n, n] cosine similarity of the rows (a zero row is similar to nothing)."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return unit @ unit.T


def nearest_neighbours(similarity: np.ndarray, people: list[str], k: int) -> list[list[tuple[int, float]]]:
    """Per row, the k most similar rows of other people as (index, similarity), ties by index.
    A person listed under several tropes (same freebase id) is one neighbour, met at its first row."""
    result = []
    for i, row in enumerate(similarity):
        found, seen = [], {people[i]}
        for j in np.lexsort((np.arange(len(row)), -row)):
            if people[j] not in seen:
                seen.add(people[j])
                found.append((int(j), float(row[j])))
                if len(found) == k:
                    break
        result.append(found)
    return result


def word_weights(lines: list[str], weights: np.ndarray, max_tokens: int) -> list[tuple[str, float]]:
    """(token, attention) pairs of one stream of one snippet, tokens as the model read them."""
    tokens = [token for line in lines for token in tokenize(line)][:max_tokens]
    return [(token, round(float(weight), 4)) for token, weight in zip(tokens, weights)]


def movie_embeddings(
    movies: list[str], people: list[str], n_snippets: np.ndarray, z: np.ndarray
) -> tuple[list[str], np.ndarray, dict[str, list[int]]]:
    """(movies in first-seen order, [n_movies, d_h], movie -> rows of its distinct people): the
    sum of the characters' z weighted by their share of the movie's snippets."""
    members: dict[str, list[int]] = {}
    seen: set[tuple[str, str]] = set()
    for row, (movie, person) in enumerate(zip(movies, people)):
        if (movie, person) not in seen:  # a person under two tropes counts once
            seen.add((movie, person))
            members.setdefault(movie, []).append(row)
    names = list(members)
    vectors = np.stack([
        (n_snippets[rows, None] * z[rows]).sum(0) / max(1, n_snippets[rows].sum()) for rows in members.values()
    ]) if names else np.zeros((0, z.shape[1]), np.float32)
    return names, vectors, members


def trope_cooccurrence(movies: list[str], people: list[str], tropes: list[str]) -> list[dict[str, Any]]:
    """Trope pairs held by two different people of one movie, most frequent first."""
    by_movie: dict[str, list[tuple[str, str]]] = {}
    for movie, person, trope in zip(movies, people, tropes):
        by_movie.setdefault(movie, []).append((person, trope))
    pairs: dict[tuple[str, str], set[str]] = {}
    for movie, cast in by_movie.items():
        for (person_a, trope_a), (person_b, trope_b) in combinations(cast, 2):
            if person_a != person_b and trope_a != trope_b:
                pairs.setdefault(tuple(sorted((trope_a, trope_b))), set()).add(movie)
    return [{"tropes": list(pair), "count": len(found), "movies": sorted(found)}
            for pair, found in sorted(pairs.items(), key=lambda item: (-len(item[1]), item[0]))]


def build_narrative(
    model_path: str | Path, snippets_path: str | Path, characters_path: str | Path, tropes_path: str | Path,
    embeddings_path: str | Path, batch_size: int, device: str, settings: NarrativeSettings,
) -> dict[str, Any]:
    """The narrative.json payload."""
    data = load_trope_data(snippets_path, characters_path, tropes_path)
    char_ids, rows = data.characters()
    stored_ids, n_snippets, z, probs = read_embeddings(embeddings_path)
    if stored_ids != char_ids:
        raise PipelineInputError(f"{embeddings_path}: characters differ from {snippets_path}; rerun the cluster stage")
    info = {row["char_id"]: row for row in read_table(characters_path, CHARACTERS).to_pylist()}
    snippets = read_table(snippets_path, SNIPPETS).select(["snippet_id", "scene", "split", "D", "E", "O"]).to_pylist()
    torch_device = pick_device(device)
    trained = load_checked_model(model_path, data, torch_device)
    model = trained.model
    attention = run_model(model, trained.encode(data), rows, batch_size, torch_device, attention=True).attention

    people = [info[c]["freebase_id"] for c in char_ids]
    movies = [info[c]["movie"] for c in char_ids]
    neighbours = nearest_neighbours(cosine_similarities(z), people, settings.neighbours)
    characters = []
    for i, char_id in enumerate(char_ids):
        weights = attention[i]["snippets"]
        top = np.argsort(-weights, kind="stable")[: settings.top_snippets]
        characters.append({
            "char_id": char_id,
            "character": info[char_id]["character"],
            "movie": movies[i],
            "actor": info[char_id]["actor"],
            "person": people[i],
            "trope": info[char_id]["trope"],
            "n_snippets": int(n_snippets[i]),
            "top_tropes": [{"trope": data.trope_ids[t], "prob": round(float(probs[i, t]), 4)}
                           for t in np.argsort(-probs[i], kind="stable")[: settings.top_tropes]],
            "neighbours": [{"char_id": char_ids[j], "similarity": round(s, 4)} for j, s in neighbours[i]],
            "snippets": [{**snippets[row], "weight": round(float(w), 4)} for row, w in zip(rows[i], weights)],
            "top_snippets": [
                {"index": int(s), "words": {stream: word_weights(data.lines[stream][rows[i][s]],
                                                                 attention[i][f"words_{stream}"][s],
                                                                 trained.max_tokens)
                                            for stream in model.config.streams}}
                for s in top
            ],
        })

    movie_names, movie_vectors, members = movie_embeddings(movies, people, n_snippets, z)
    n_clusters = min(settings.movie_clusters, len(movie_names))
    labels = (agglomerative(movie_vectors, n_clusters, settings.linkage) if n_clusters > 1
              else np.zeros(len(movie_names), dtype=int))
    clusters = []
    for cluster in range(n_clusters):
        in_cluster = [m for m, label in zip(movie_names, labels) if label == cluster]
        tropes = Counter(characters[row]["trope"] for m in in_cluster for row in members[m])
        clusters.append({"cluster": cluster, "movies": sorted(in_cluster),
                         "dominant_tropes": [{"trope": t, "count": c} for t, c in tropes.most_common(3)]})
    clusters.sort(key=lambda c: (-len(c["movies"]), c["movies"]))
    return {
        "variant": trained.variant,
        "n_diag": model.config.n_diag,
        "gamma": {stream: round(model.learned_weights()[f"gamma_{stream}"], 4) for stream in STREAMS},
        "tropes": data.trope_ids,
        "characters": characters,
        "movies": [{"movie": m, "cluster": int(label), "characters": [char_ids[row] for row in members[m]]}
                   for m, label in zip(movie_names, labels)],
        "movie_clusters": clusters,
        "trope_cooccurrence": trope_cooccurrence(movies, people, [c["trope"] for c in characters]),
    }
