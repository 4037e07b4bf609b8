"""Sentence embeddings of the trope descriptions, in the embedding cache of
flows/lib/embedding_cache.py (one Parquet file keyed by model name and text hash):
`update_cache` encodes only what the cache lacks (and loads no model when nothing is missing);
`load_description_embeddings` gives the AMN its [n_tropes, dim] matrix."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from flows.lib.embedding_cache import cached_vectors, embed_with_cache, sentence_encoder
from flows.lib.schemas import TROPES, read_table

STAGE = "embed_descriptions"


def update_cache(
    tropes_path: str | Path, cache_path: str | Path, model_name: str, batch_size: int, device: str = "cpu"
) -> dict[str, int]:
    """Encode the descriptions the cache lacks (in first-seen order) and append them to it."""
    texts = read_table(tropes_path, TROPES).column("description").to_pylist()
    return embed_with_cache(texts, cache_path, model_name, sentence_encoder(model_name, batch_size, device))


def load_description_embeddings(
    tropes_path: str | Path, cache_path: str | Path, model_name: str
) -> tuple[list[str], np.ndarray]:
    """Trope ids in tropes.parquet order and their description vectors, float32 [n, dim]."""
    tropes = read_table(tropes_path, TROPES)
    trope_ids, texts = tropes.column("trope").to_pylist(), tropes.column("description").to_pylist()
    names = [f"the description of trope '{trope}'" for trope in trope_ids]
    return trope_ids, cached_vectors(texts, cache_path, model_name, STAGE, names)
