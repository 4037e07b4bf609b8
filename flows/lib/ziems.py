"""The IMDb quotes of the 434 trope characters bundled from Ziems et al. (2024) in
shared/data/ziems_tropes/: reader, snippets, the unseen-character split and the stored
zero-shot answers of the language models.

A character is one row of tropes.csv: its CMU trope ids (all of them; a prediction is right when
it is one of them), its CMU movies (from tvtropes.clusters.txt, matched by name) and its quote
lines. The quotes carry no speaker labels, so this source has one stream; a snippet is a
window of consecutive quote lines.

The split (`ziems_split`): the 114 rows of test.json are the test set; from the other 320, the
characters that share a movie with a test character are flagged `shared_movie` (trained on only
for the second figure), and val is carved from the rest by connected groups of movies, so that
no movie is in two of train, val and test."""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from flows.lib.errors import PipelineInputError

TROPES_CSV = "tropes.csv"
TEST_JSON = "test.json"
CLUSTERS = ("cmu_tvtropes", "tvtropes.clusters.txt")
COLUMNS = ("Character", "Tropes", "TropesHuman", "Quotes")
ROLES = ("train", "val", "test", "shared_movie")  # shared_movie: pool characters sharing a test movie


@dataclass(frozen=True)
class CmuRecord:
    trope: str
    character: str
    movie: str
    freebase_id: str


@dataclass
class ZiemsCharacter:
    row: int  # row index of tropes.csv (the key of test.json)
    name: str
    tropes: tuple[str, ...]  # CMU trope ids, in the order tropes.csv lists them
    movies: tuple[str, ...]  # CMU movies of the records with this name and one of these tropes
    freebase_id: str  # of the record of its first trope: char_id = "<freebase_id>|<trope>" as in characters.parquet
    lines: list[str]  # quote lines, in file order
    role: str = ""  # one of ROLES once split
    other_names: tuple[str, ...] = field(default=())  # CMU characters of the same movies


def trope_id(name: str) -> str:
    """'Drill Sargeant Nasty' -> 'drill_sargeant_nasty' (the README's mapping)."""
    return "_".join(name.lower().split())


def read_cmu_records(path: Path) -> list[CmuRecord]:
    """`trope<TAB>{"char", "movie", ...}` lines of tvtropes.clusters.txt."""
    if not path.exists():
        raise PipelineInputError(f"{path}: file not found")
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        trope, _, payload = line.partition("\t")
        try:
            record = json.loads(payload)
            records.append(CmuRecord(trope.strip(), record["char"].strip(), record["movie"].strip(), record["id"].strip()))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            raise PipelineInputError(f"{path}:{number}: expected 'trope<TAB>{{\"char\", \"movie\", \"id\", ...}}'") from None
    return records


def read_ziems_characters(
    folder: Path, clusters_path: Path, empty_rows: tuple[int, ...] = ()
) -> list[ZiemsCharacter]:
    """Every row of tropes.csv as a ZiemsCharacter; a row with no quotes, a trope name that is
    no CMU trope or a name that is no CMU character is a one-line error naming file and row.
    `empty_rows` lists the rows known to have no quotes (row 63 of the bundled file): they are
    left out instead, and a listed row that does have quotes is an error too."""
    path = Path(folder) / TROPES_CSV
    if not path.exists():
        raise PipelineInputError(f"{path}: file not found")
    records = read_cmu_records(Path(clusters_path))
    known_tropes = {r.trope for r in records}
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise PipelineInputError(f"{path}: missing column '{missing[0]}'")
        rows = list(reader)
    characters = []
    for index, row in enumerate(rows):
        where = f"{path}: row {index} ({row['Character']!r})"
        lines = [line.strip() for line in (row["Quotes"] or "").splitlines() if line.strip()]
        if index in empty_rows:
            if lines:
                raise PipelineInputError(f"{where}: listed as having no quotes, but has {len(lines)} lines")
            continue
        if not lines:
            raise PipelineInputError(f"{where}: no quotes")
        tropes = tuple(trope_id(name) for name in (row["TropesHuman"] or "").split(",") if name.strip())
        if not tropes:
            raise PipelineInputError(f"{where}: no trope in column 'TropesHuman'")
        unknown = [t for t in tropes if t not in known_tropes]
        if unknown:
            raise PipelineInputError(f"{where}: trope '{unknown[0]}' is not a CMU trope of {clusters_path}")
        name = row["Character"].strip()
        matches = [r for r in records if r.character == name]
        if not matches:
            raise PipelineInputError(f"{where}: character is not in {clusters_path}")
        # A name can be a character of several movies (sequels); its tropes pick the records.
        chosen = [r for r in matches if r.trope in tropes] or matches
        movies = sorted({r.movie for r in chosen})
        # One row can merge two CMU characters of one name (Anakin Skywalker of Episodes I and III).
        first = next((r for r in chosen if r.trope == tropes[0]), chosen[0])
        characters.append(ZiemsCharacter(index, name, tropes, tuple(movies), first.freebase_id, lines))
    for character in characters:
        character.other_names = tuple(sorted(
            {r.character for r in records if r.movie in character.movies and r.character != character.name}
        ))
    return characters


def read_test_rows(folder: Path, n_rows: int) -> list[int]:
    """Row indices of the test set, in test.json's key order (the order of the answer files)."""
    path = Path(folder) / TEST_JSON
    if not path.exists():
        raise PipelineInputError(f"{path}: file not found")
    try:
        labels = json.loads(path.read_text(encoding="utf-8"))["labels"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise PipelineInputError(f"{path}: expected a JSON object with key 'labels' ({error})") from None
    rows = []
    for key in labels:
        if not key.isdigit() or int(key) >= n_rows:
            raise PipelineInputError(f"{path}: test key {key!r} is not a row of {TROPES_CSV} (0..{n_rows - 1})")
        rows.append(int(key))
    return rows


def shared_movie_groups(characters: list[ZiemsCharacter]) -> list[int]:
    """Per character, the id of its connected group: characters sharing a movie, transitively."""
    parent = list(range(len(characters)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_of: dict[str, int] = {}
    for i, character in enumerate(characters):
        for movie in character.movies:
            j = first_of.setdefault(movie, i)
            parent[root(i)] = root(j)
    return [root(i) for i in range(len(characters))]


def ziems_split(characters: list[ZiemsCharacter], test_rows: list[int], val_share: float, seed: int) -> dict[str, int]:
    """Set each character's role in place and return the counts per role. Val takes whole
    movie groups of the pool (less the shared_movie characters) until it holds val_share of it."""
    test = set(test_rows)
    test_movies = {m for c in characters if c.row in test for m in c.movies}
    pool = []
    for character in characters:
        if character.row in test:
            character.role = "test"
        elif set(character.movies) & test_movies:
            character.role = "shared_movie"
        else:
            character.role = "train"
            pool.append(character)
    groups = shared_movie_groups(pool)
    order = np.random.default_rng(seed).permutation(sorted(set(groups)))
    target, taken = round(val_share * len(pool)), 0
    for group in order:
        if taken >= target:
            break
        members = [c for c, g in zip(pool, groups) if g == group]
        for character in members:
            character.role = "val"
        taken += len(members)
    return {role: sum(c.role == role for c in characters) for role in ROLES}


def snippet_windows(lines: list[str], window: int) -> list[list[str]]:
    """Consecutive, non-overlapping windows of `window` quote lines (the last may be shorter)."""
    return [lines[start : start + window] for start in range(0, len(lines), window)]


def read_answers(path: Path, test_rows: list[int], codes: list[str]) -> list[list[str]]:
    """The codes a model answered per test character, in test.json order: `index<TAB>gold<TAB>
    answer`, answer = comma-separated codes or free text; words that are no option code are
    dropped, so a free-text answer counts as no answer."""
    if not path.exists():
        raise PipelineInputError(f"{path}: file not found")
    valid = set(codes)
    answers: list[list[str] | None] = [None] * len(test_rows)
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 2 or not parts[0].strip().isdigit():
            raise PipelineInputError(f"{path}:{number}: expected 'index<TAB>gold<TAB>answer'")
        index = int(parts[0])
        if index >= len(test_rows):
            raise PipelineInputError(f"{path}:{number}: index {index} is not a test character (0..{len(test_rows) - 1})")
        answer = parts[2] if len(parts) > 2 else ""
        answers[index] = [code for code in (w.strip() for w in answer.replace(";", ",").split(",")) if code in valid]
    return [codes_ if codes_ is not None else [] for codes_ in answers]


def option_codes(folder: Path) -> dict[str, str]:
    """Option code -> CMU trope id, from the prompt of test.json ('A: Absent Minded Professor')."""
    path = Path(folder) / TEST_JSON
    prompts = json.loads(path.read_text(encoding="utf-8"))["prompts"]
    prompt = next(iter(prompts.values()))
    codes = {}
    for line in prompt.splitlines():
        code, sep, name = line.partition(": ")
        if sep and code.isalpha() and code.isupper() and len(code) <= 2:
            codes[code] = trope_id(name)
    if not codes:
        raise PipelineInputError(f"{path}: no 'CODE: Trope Name' options in the prompts")
    return codes
