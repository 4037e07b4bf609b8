import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flows.lib.description_embeddings import load_description_embeddings, update_cache
from flows.lib.embedding_cache import text_sha256
from flows.lib.errors import PipelineInputError
from flows.lib.trope_descriptions import ingest_descriptions
from flows.lib.schemas import TROPES, read_table, write_table
from models.runtime import SENTENCE_MODEL

pytestmark = pytest.mark.slow  # loads the real MiniLM


@pytest.fixture(scope="module")
def embedded(shared_data, tmp_path_factory):
    """The real tropes.parquet, cut to four tropes (one titled), embedded once."""
    folder = tmp_path_factory.mktemp("embed")
    ingest_descriptions(shared_data / "cmu_tvtropes" / "tvtropes.clusters.txt",
                        shared_data / "tvtropes_descriptions" / "trope_descriptions.jsonl",
                        None, folder / "all.parquet")
    tropes = read_table(folder / "all.parquet", TROPES)
    keep = [i for i, t in enumerate(tropes.column("trope").to_pylist())
            if t in ("dumb_muscle", "ditz", "storyteller", "byronic_hero")]
    tropes_path = write_table(tropes.take(keep), folder / "tropes.parquet", TROPES)
    cache = folder / "embeddings" / "descriptions.parquet"
    counts = update_cache(tropes_path, cache, SENTENCE_MODEL, batch_size=2)
    return tropes_path, cache, counts


def test_vectors_in_trope_order(embedded):
    tropes_path, cache, counts = embedded
    assert counts == {"texts": 4, "encoded": 4}
    ids, vectors = load_description_embeddings(tropes_path, cache, SENTENCE_MODEL)
    assert ids == pq.read_table(tropes_path).column("trope").to_pylist()
    assert vectors.dtype == np.float32 and vectors.shape == (4, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
    similarity = vectors @ vectors.T
    assert np.all(similarity[~np.eye(4, dtype=bool)] < 0.99)  # four different texts
    keys = pq.read_table(cache).select(["model", "text_sha256"]).to_pylist()
    texts = pq.read_table(tropes_path).column("description").to_pylist()
    assert keys == [{"model": SENTENCE_MODEL, "text_sha256": text_sha256(t)} for t in texts]


def test_rerun_with_same_text_loads_no_model_and_writes_nothing(embedded):
    tropes_path, cache, _ = embedded
    before = (cache.stat().st_mtime_ns, cache.read_bytes())
    script = (
        "import sys; from flows.lib.description_embeddings import update_cache; "
        f"print(update_cache({str(tropes_path)!r}, {str(cache)!r}, {SENTENCE_MODEL!r}, 2)); "
        "print('sentence_transformers' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.split("\n")[:2] == ["{'texts': 4, 'encoded': 0}", "False"]
    assert (cache.stat().st_mtime_ns, cache.read_bytes()) == before


def test_changed_text_encodes_only_that_text(embedded, tmp_path):
    tropes_path, cache, _ = embedded
    local_cache = tmp_path / "descriptions.parquet"
    local_cache.write_bytes(cache.read_bytes())
    rows = pq.read_table(tropes_path).to_pylist()
    rows[0]["description"] = "Edited. " + rows[0]["description"]  # MiniLM reads only the first 256 tokens
    edited = write_table(pa.Table.from_pylist(rows, schema=TROPES), tmp_path / "tropes.parquet", TROPES)
    assert update_cache(edited, local_cache, SENTENCE_MODEL, batch_size=2) == {"texts": 4, "encoded": 1}
    assert pq.read_metadata(local_cache).num_rows == 5  # the old entry stays cached
    ids, vectors = load_description_embeddings(edited, local_cache, SENTENCE_MODEL)
    _, old = load_description_embeddings(tropes_path, local_cache, SENTENCE_MODEL)
    assert np.array_equal(vectors[1:], old[1:]) and not np.array_equal(vectors[0], old[0])


def test_missing_cache_or_entry_is_a_one_line_error(embedded, tmp_path):
    tropes_path, cache, _ = embedded
    with pytest.raises(PipelineInputError, match=r"gone\.parquet: embedding cache not found") as error:
        load_description_embeddings(tropes_path, tmp_path / "gone.parquet", SENTENCE_MODEL)
    assert "\n" not in str(error.value)
    with pytest.raises(PipelineInputError, match=r"descriptions\.parquet: no 'other-model' embedding .* trope"):
        load_description_embeddings(tropes_path, cache, "other-model")


def test_cache_with_wrong_schema_names_file_and_column(embedded, tmp_path):
    tropes_path, _, _ = embedded
    bad = tmp_path / "descriptions.parquet"
    pq.write_table(pa.table({"model": ["m"], "text_sha256": ["x"], "embedding": [[1.0, 2.0]]}), bad)  # float64
    with pytest.raises(PipelineInputError, match=r"descriptions\.parquet: column 'embedding' has type"):
        load_description_embeddings(tropes_path, bad, SENTENCE_MODEL)
    with pytest.raises(PipelineInputError, match=r"descriptions\.parquet: column 'embedding' has type"):
        update_cache(tropes_path, bad, SENTENCE_MODEL, batch_size=2)
