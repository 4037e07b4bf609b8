"""Sentence embeddings of the trope descriptions, cached in one Parquet file keyed by (model
name, sha256 of the text): `update_cache` encodes only what the cache lacks (and loads no model
when nothing is missing); `load_description_embeddings` gives the AMN its [n_tropes, dim] matrix."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa

from flows.lib.errors import PipelineInputError
from flows.lib.schemas import EMBEDDINGS, TROPES, read_table, write_table
from models.runtime import load_sentence_model


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _cached_keys(cache_path: Path) -> tuple[pa.Table | None, set[tuple[str, str]]]:
    if not cache_path.exists():
        return None, set()
    cache = read_table(cache_path, EMBEDDINGS)
    return cache, set(zip(cache.column("model").to_pylist(), cache.column("text_sha256").to_pylist()))


def update_cache(
    tropes_path: str | Path, cache_path: str | Path, model_name: str, batch_size: int, device: str = "cpu"
) -> dict[str, int]:
    """Encode the descriptions the cache lacks (in first-seen order) and append them to it."""
    texts = read_table(tropes_path, TROPES).column("description").to_pylist()
    cache, cached = _cached_keys(Path(cache_path))
    missing = list(dict.fromkeys(text for text in texts if (model_name, text_sha256(text)) not in cached))
    if not missing:
        return {"texts": len(texts), "encoded": 0}
    model = load_sentence_model(model_name, device)
    vectors = model.encode(missing, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    new = pa.table(
        {
            "model": [model_name] * len(missing),
            "text_sha256": [text_sha256(text) for text in missing],
            "embedding": [row.astype(np.float32).tolist() for row in vectors],
        },
        schema=EMBEDDINGS,
    )
    write_table(new if cache is None else pa.concat_tables([cache.cast(EMBEDDINGS), new]), cache_path, EMBEDDINGS)
    return {"texts": len(texts), "encoded": len(missing)}


def load_description_embeddings(
    tropes_path: str | Path, cache_path: str | Path, model_name: str
) -> tuple[list[str], np.ndarray]:
    """Trope ids in tropes.parquet order and their description vectors, float32 [n, dim]."""
    tropes = read_table(tropes_path, TROPES)
    cache_path = Path(cache_path)
    if not cache_path.exists():
        raise PipelineInputError(f"{cache_path}: embedding cache not found; run the embed_descriptions stage")
    cache = read_table(cache_path, EMBEDDINGS)
    vectors = {
        sha: vector
        for model, sha, vector in zip(
            cache.column("model").to_pylist(),
            cache.column("text_sha256").to_pylist(),
            cache.column("embedding").to_pylist(),
        )
        if model == model_name
    }
    trope_ids = tropes.column("trope").to_pylist()
    rows = []
    for trope, text in zip(trope_ids, tropes.column("description").to_pylist()):
        vector = vectors.get(text_sha256(text))
        if vector is None:
            raise PipelineInputError(
                f"{cache_path}: no '{model_name}' embedding for the description of trope '{trope}'; "
                "run the embed_descriptions stage"
            )
        rows.append(vector)
    if len({len(row) for row in rows}) > 1:
        raise PipelineInputError(f"{cache_path}: embeddings of '{model_name}' differ in length")
    return trope_ids, np.asarray(rows, dtype=np.float32).reshape(len(rows), -1)
