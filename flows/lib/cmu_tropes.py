"""data/characters.parquet from the CMU trope list (parsed by flows.lib.schemas.read_clusters):
one row per character and trope, with its split."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from flows.lib.schemas import CHARACTERS, read_clusters, write_table
from flows.lib.splits import SPLITS, SplitSettings, character_splits


def ingest_tropes(clusters_path: Path, output_path: Path, split: SplitSettings) -> dict[str, int]:
    """Read the clusters file, split, write characters.parquet; returns counts."""
    rows = read_clusters(Path(clusters_path))
    splits = character_splits(rows, split)
    table = pa.table(
        {
            "char_id": [row.char_id for row in rows],
            "trope": [row.trope for row in rows],
            "character": [row.character for row in rows],
            "movie": [row.movie for row in rows],
            "actor": [row.actor for row in rows],
            "freebase_id": [row.freebase_id for row in rows],
            "split": [splits[row.freebase_id] for row in rows],
        }
    )
    write_table(table, output_path, CHARACTERS)
    counts = {"rows": len(rows), "characters": len(splits), "tropes": len({row.trope for row in rows})}
    counts.update({name: sum(1 for value in splits.values() if value == name) for name in SPLITS})
    return counts
