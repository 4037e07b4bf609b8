"""How snippets and characters are split into train, val and test (params `split`), the same
way by every ingest stage: deterministic, keyed on the seed and a name (never on Python's hash
salt). Unseen characters (split.unit character): the unit is the movie, so no movie and nobody
straddles splits. The paper's protocol (split.unit snippet): each character's snippets are split,
the unit being the scene, so no scene of a character straddles splits."""
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


def balanced_assignment(sizes: list[int], ratios: tuple[float, ...]) -> list[int]:
    """Split indices for units of `sizes` in order, always giving the next unit to the split
    furthest below its quota (counted in the units' sizes), so every prefix holds the ratios as
    closely as possible."""
    assigned = [0] * len(ratios)
    total = 0
    order = []
    for size in sizes:
        total += size
        deficits = [ratio * total - done for ratio, done in zip(ratios, assigned)]
        best = max(range(len(ratios)), key=lambda index: (deficits[index], -index))
        assigned[best] += size
        order.append(best)
    return order


def sequel_groups(rows: list) -> dict[str, str]:
    """movie -> its group, for rows with .movie and .character: movies that share a character
    name (sequels, a franchise: "Indiana Jones", "Han Solo") are one group, named by its first
    movie in sorted order, so that nobody is seen in one movie and tested in its sequel."""
    parent = {movie: movie for movie in sorted({row.movie for row in rows})}

    def root(movie: str) -> str:
        while parent[movie] != movie:
            movie = parent[movie]
        return movie

    first_movie: dict[str, str] = {}
    for row in sorted(rows, key=lambda row: (row.character, row.movie)):
        home = first_movie.setdefault(row.character, row.movie)
        low, high = sorted((root(home), root(row.movie)))
        parent[high] = low
    return {movie: root(movie) for movie in parent}


def character_splits(rows: list, split: SplitSettings) -> dict[str, str]:
    """freebase_id -> split (train | val | test) of rows with .trope, .freebase_id, .character and
    .movie, by `movie_unit_assignment` at split.ratios."""
    assignment = movie_unit_assignment(rows, split.ratios, split.seed)
    return {person: SPLITS[index] for person, index in assignment.items()}


def movie_folds(rows: list, folds: int, seed: int) -> dict[str, int]:
    """freebase_id -> fold in range(folds) for k-fold cross-validation by movie."""
    return movie_unit_assignment(rows, (1 / folds,) * folds, seed)


def movie_unit_assignment(rows: list, ratios: tuple[float, ...], seed: int) -> dict[str, int]:
    """freebase_id -> index into `ratios`. The unit is the movie (with its sequels,
    `sequel_groups`): all its characters go to one part, so no movie, and no person listed under
    several tropes, is in two parts. Units are stratified by the rarest trope of their characters:
    ordered by trope, shuffled within it, then dealt out in proportion to their number of
    characters, so each trope's characters spread over the parts."""
    group_of = sequel_groups(rows)
    trope_sizes: dict[str, set[str]] = {}
    people: dict[str, set[str]] = {}
    for row in rows:
        trope_sizes.setdefault(row.trope, set()).add(row.freebase_id)
        people.setdefault(group_of[row.movie], set()).add(row.freebase_id)
    stratum: dict[str, str] = {}
    for row in rows:
        unit = group_of[row.movie]
        current = stratum.get(unit)
        if current is None or (len(trope_sizes[row.trope]), row.trope) < (len(trope_sizes[current]), current):
            stratum[unit] = row.trope
    ordered: list[str] = []
    for trope in sorted(set(stratum.values())):
        members = sorted(unit for unit, home in stratum.items() if home == trope)
        ordered.extend(members[i] for i in stable_rng(seed, trope).permutation(len(members)))
    assignment = balanced_assignment([len(people[unit]) for unit in ordered], ratios)
    part_of = dict(zip(ordered, assignment))
    return {row.freebase_id: part_of[group_of[row.movie]] for row in rows}


def unit_splits(count: int, split: SplitSettings, key: str) -> list[str]:
    """Per-character split of `count` units: ratios rounded, at least one unit in each split with
    a positive ratio once the character has 3 or more, shuffled by (seed, key)."""
    sizes = [round(count * ratio) for ratio in split.ratios[1:]]
    if count >= 3:
        sizes = [max(1, size) if ratio > 0 else 0 for size, ratio in zip(sizes, split.ratios[1:])]
    while sum(sizes) > count - 1 and count > 0:  # keep at least one training unit
        sizes[sizes.index(max(sizes))] -= 1
    labels = ["train"] * (count - sum(sizes)) + ["val"] * sizes[0] + ["test"] * sizes[1]
    return [labels[index] for index in stable_rng(split.seed, key).permutation(count)]


def snippet_splits(scenes: list, split: SplitSettings, key: str) -> list[str]:
    """Per-character split of its snippets, given each snippet's scene (the paper's protocol,
    split.unit snippet): the unit is the scene, so the snippets of one scene of one character all
    go to one split (`unit_splits` over the scenes in order of first appearance)."""
    order = list(dict.fromkeys(scenes))
    split_of = dict(zip(order, unit_splits(len(order), split, key)))
    return [split_of[scene] for scene in scenes]
