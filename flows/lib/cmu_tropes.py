"""The CMU trope list (cmu_tvtropes/tvtropes.clusters.txt under data.root): its one parser, and
data/characters.parquet built from it (one row per character and trope, with its split)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from flows.lib.errors import PipelineInputError
from flows.lib.schemas import CHARACTERS, write_table
from flows.lib.splits import SPLITS, SplitSettings, character_splits

CLUSTERS = ("cmu_tvtropes", "tvtropes.clusters.txt")


@dataclass(frozen=True)
class TropeCharacter:
    trope: str
    character: str
    movie: str
    actor: str
    freebase_id: str

    @property
    def char_id(self) -> str:
        return f"{self.freebase_id}|{self.trope}"


def read_clusters(path: Path) -> list[TropeCharacter]:
    """Parse `trope<TAB>{"char", "movie", "id", "actor"}` lines; a bad line names file and line."""
    if not path.exists():
        raise PipelineInputError(f"{path}: file not found")
    rows: list[TropeCharacter] = []
    seen: dict[str, int] = {}
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            trope, _, payload = line.rstrip("\n").partition("\t")
            try:
                record = json.loads(payload)
            except json.JSONDecodeError:
                record = None
            if not trope.strip() or not isinstance(record, dict):
                raise PipelineInputError(f"{path}:{number}: expected 'trope<TAB>{{json object}}'")
            for key in ("char", "movie", "id"):
                if not isinstance(record.get(key), str) or not record[key].strip():
                    raise PipelineInputError(f"{path}:{number}: field '{key}' missing or empty")
            row = TropeCharacter(
                trope.strip(), record["char"].strip(), record["movie"].strip(),
                str(record.get("actor") or "").strip(), record["id"].strip(),
            )
            if row.char_id in seen:
                raise PipelineInputError(
                    f"{path}:{number}: character '{row.freebase_id}' repeats trope '{row.trope}' "
                    f"(line {seen[row.char_id]})"
                )
            seen[row.char_id] = number
            rows.append(row)
    if not rows:
        raise PipelineInputError(f"{path}: no characters")
    return rows


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
