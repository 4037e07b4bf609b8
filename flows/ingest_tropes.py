"""Stage ingest_tropes: the CMU trope list (tvtropes.clusters.txt) -> data/characters.parquet,
one row per (character, trope) with a deterministic character-level train/val/test split."""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from prefect import flow

from flows.lib.config import PARAMS_FILE, choice, data_path, load_params, param
from flows.lib.errors import PipelineInputError
from flows.lib.orchestration import fingerprint, run_stage, stage_task
from flows.lib.schemas import CHARACTERS, write_table

CLUSTERS = ("cmu_tvtropes", "tvtropes.clusters.txt")
CHARACTERS_PATH = Path("data/characters.parquet")
SPLITS = ("train", "val", "test")
SPLIT_UNITS = ("snippet", "character")


@dataclass(frozen=True)
class SplitSettings:
    unit: str  # snippet | character
    seed: int
    ratios: tuple[float, float, float]  # train, val, test


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


def split_settings(params: dict) -> SplitSettings:
    """The `split` section, checked: a known unit, an int seed, ratios in [0, 1] summing to 1."""
    unit = choice(params, "split.unit", SPLIT_UNITS)
    seed = param(params, "split.seed", int)
    ratios = []
    for name in SPLITS:
        value = param(params, f"split.{name}", (int, float))
        if not 0 <= value <= 1:
            raise PipelineInputError(f"{PARAMS_FILE}: param 'split.{name}' must be in [0, 1], got {value!r}")
        ratios.append(float(value))
    if not math.isclose(sum(ratios), 1.0, abs_tol=1e-6):
        raise PipelineInputError(
            f"{PARAMS_FILE}: params 'split.train', 'split.val', 'split.test' must sum to 1, got {sum(ratios):g}"
        )
    if ratios[0] == 0:
        raise PipelineInputError(f"{PARAMS_FILE}: param 'split.train' must be > 0")
    return SplitSettings(unit, seed, tuple(ratios))


def stable_rng(seed: int, key: str) -> np.random.Generator:
    """A generator that depends on the seed and on `key` only (not on Python's hash salt)."""
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    return np.random.default_rng([seed, digest])


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


def balanced_assignment(count: int, ratios: tuple[float, ...]) -> list[int]:
    """Split indices for `count` items in order, always giving the next item to the split
    furthest below its quota, so every prefix holds the ratios as closely as possible."""
    assigned = [0] * len(ratios)
    order = []
    for position in range(1, count + 1):
        deficits = [ratio * position - done for ratio, done in zip(ratios, assigned)]
        best = max(range(len(ratios)), key=lambda index: (deficits[index], -index))
        assigned[best] += 1
        order.append(best)
    return order


def character_splits(rows: list[TropeCharacter], split: SplitSettings) -> dict[str, str]:
    """freebase_id -> split. A character listed under several tropes is one unit (no leakage);
    units are stratified by their rarest trope: ordered by trope, shuffled within it, then
    dealt out in proportion, so each trope's characters spread over the splits."""
    trope_sizes: dict[str, set[str]] = {}
    for row in rows:
        trope_sizes.setdefault(row.trope, set()).add(row.freebase_id)
    stratum: dict[str, str] = {}
    for row in rows:
        current = stratum.get(row.freebase_id)
        if current is None or (len(trope_sizes[row.trope]), row.trope) < (len(trope_sizes[current]), current):
            stratum[row.freebase_id] = row.trope
    ordered: list[str] = []
    for trope in sorted(set(stratum.values())):
        members = sorted(unit for unit, home in stratum.items() if home == trope)
        ordered.extend(members[i] for i in stable_rng(split.seed, trope).permutation(len(members)))
    return {unit: SPLITS[index] for unit, index in zip(ordered, balanced_assignment(len(ordered), split.ratios))}


def ingest_tropes(clusters_path: Path, output_path: Path, split: SplitSettings) -> dict[str, int]:
    """Pure stage logic: read the clusters file, split, write characters.parquet."""
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


@stage_task
def ingest_tropes_task(clusters_path: str, output_path: str, split: SplitSettings, inputs: dict) -> dict:
    return ingest_tropes(Path(clusters_path), Path(output_path), split)


@flow(name="ingest_tropes_flow")
def ingest_tropes_flow() -> dict:
    params = load_params()
    clusters = data_path(params, *CLUSTERS)
    output = CHARACTERS_PATH.resolve()
    return run_stage(
        ingest_tropes_task,
        outputs=[output],
        clusters_path=str(clusters),
        output_path=str(output),
        split=split_settings(params),
        inputs=fingerprint(clusters),
    )


if __name__ == "__main__":
    ingest_tropes_flow()
