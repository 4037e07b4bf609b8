"""A Parquet cache of sentence embeddings keyed by (model name, sha256 of the text), in the
spirit of the paper's skip-thought cache: `embed_with_cache` encodes only the texts the cache
lacks and loads no model when it lacks none; `cached_vectors` only reads, so that a training
stage never loads the sentence model at all."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa

from flows.lib.errors import PipelineInputError
from flows.lib.schemas import EMBEDDINGS, read_table, write_table


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _read_cache(cache_path: Path, model_name: str) -> tuple[pa.Table | None, dict[str, int], np.ndarray]:
    """(the whole table, sha -> row of `vectors`, vectors [n, dim] of `model_name`)."""
    if not cache_path.exists():
        return None, {}, np.zeros((0, 0), dtype=np.float32)
    table = read_table(cache_path, EMBEDDINGS)
    mine = table.filter(pa.compute.equal(table.column("model"), model_name))
    if mine.num_rows == 0:
        return table, {}, np.zeros((0, 0), dtype=np.float32)
    flat = np.asarray(mine.column("embedding").combine_chunks().flatten(), dtype=np.float32)
    if flat.size % mine.num_rows:
        raise PipelineInputError(f"{cache_path}: embeddings of '{model_name}' differ in length")
    vectors = flat.reshape(mine.num_rows, -1)
    return table, {sha: i for i, sha in enumerate(mine.column("text_sha256").to_pylist())}, vectors


def cached_vectors(
    texts: list[str], cache_path: str | Path, model_name: str, stage: str = "embed_snippets",
    names: list[str] | None = None,
) -> np.ndarray:
    """float32 [len(texts), dim], read from the cache only. A text it lacks is a one-line error
    naming the `stage` that fills the cache and, given `names` (one per text), the first such text."""
    cache_path = Path(cache_path)
    if not cache_path.exists():
        raise PipelineInputError(f"{cache_path}: embedding cache not found; run the {stage} stage")
    _, row_of, vectors = _read_cache(cache_path, model_name)
    rows = [row_of.get(text_sha256(text), -1) for text in texts]
    missing = rows.count(-1)
    if missing:
        what = (f"{names[rows.index(-1)]}" + (f" and {missing - 1} more" if missing > 1 else "")) if names \
            else f"{missing} of {len(texts)} texts"
        raise PipelineInputError(f"{cache_path}: no '{model_name}' embedding for {what}; run the {stage} stage")
    return vectors[rows]


def embed_with_cache(
    texts: list[str], cache_path: str | Path, model_name: str, encode: Callable[[list[str]], np.ndarray]
) -> dict[str, int]:
    """Encode the distinct texts the cache lacks with `encode` (called only when some are
    missing; returns unit vectors [n, dim]) and append them. The file is rewritten only then."""
    cache_path = Path(cache_path)
    table, row_of, _ = _read_cache(cache_path, model_name)
    missing = list(dict.fromkeys(text for text in texts if text_sha256(text) not in row_of))
    if not missing:
        return {"texts": len(texts), "encoded": 0}
    vectors = np.asarray(encode(missing), dtype=np.float32)
    new = pa.table(
        {
            "model": [model_name] * len(missing),
            "text_sha256": [text_sha256(text) for text in missing],
            "embedding": pa.FixedSizeListArray.from_arrays(vectors.reshape(-1), vectors.shape[1]).cast(
                pa.list_(pa.float32())
            ),
        },
        schema=EMBEDDINGS,
    )
    write_table(new if table is None else pa.concat_tables([table.cast(EMBEDDINGS), new]), cache_path, EMBEDDINGS)
    return {"texts": len(texts), "encoded": len(missing)}


def sentence_encoder(model_name: str, batch_size: int, device: str = "cpu") -> Callable[[list[str]], np.ndarray]:
    """An `encode` for embed_with_cache that loads the model on its first call only."""
    from models.runtime import load_sentence_model

    model = None

    def encode(texts: list[str]) -> np.ndarray:
        nonlocal model
        model = model or load_sentence_model(model_name, device)
        return model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                            show_progress_bar=False)

    return encode
