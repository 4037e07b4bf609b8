"""How snippets and characters are split into train, val and test (params `split`), the same
way by every ingest stage: deterministic, keyed on the seed and a name (never on Python's hash
salt), and one person is one unit, so nobody leaks across splits."""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from flows.lib.config import PARAMS_FILE, choice, param
from flows.lib.errors import PipelineInputError

SPLITS = ("train", "val", "test")
SPLIT_UNITS = ("snippet", "character")


@dataclass(frozen=True)
class SplitSettings:
    unit: str  # snippet | character
    seed: int
    ratios: tuple[float, float, float]  # train, val, test


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


def character_splits(rows: list, split: SplitSettings) -> dict[str, str]:
    """freebase_id -> split of rows with .trope and .freebase_id. A character listed under several tropes is one unit (no leakage);
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


def snippet_splits(count: int, split: SplitSettings, key: str) -> list[str]:
    """Per-character split of `count` snippets: ratios rounded, at least one snippet in each
    split with a positive ratio once the character has 3 or more, shuffled by (seed, key)."""
    sizes = [round(count * ratio) for ratio in split.ratios[1:]]
    if count >= 3:
        sizes = [max(1, size) if ratio > 0 else 0 for size, ratio in zip(sizes, split.ratios[1:])]
    while sum(sizes) > count - 1 and count > 0:  # keep at least one training snippet
        sizes[sizes.index(max(sizes))] -= 1
    labels = ["train"] * (count - sum(sizes)) + ["val"] * sizes[0] + ["test"] * sizes[1]
    return [labels[index] for index in stable_rng(split.seed, key).permutation(count)]
