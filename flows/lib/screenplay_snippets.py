"""Dialogue snippets S = (D, E, O) from IMSDb screenplays (the ingest_screenplays stage), and
the cutting rules that IMDb quotes and `personas classify` share (params `ingest`).

Scripts: the bundled ones (imsdb_scripts/movie_script_map.tsv names the file and layout of each
movie) and, when data.crawled_screenplays exists, crawled pages for movies with no bundled
script (layout guessed). Cues: with ingest.hand_aliases, a character's cues are the
hand-checked `matched_cue` of imsdb_scripts/cmu_character_matches.tsv (the source of truth
for bundled scripts: it holds the fixes listed in that folder's README, e.g. Indiana Jones ->
INDY); otherwise, and for crawled scripts, `screenplay.match_character`'s name rules.

A snippet is a window of ingest.window consecutive blocks of one scene (scenes are tiled
into non-overlapping windows) holding at least one line of the character: D = the character's
lines, E = action lines and parentheticals, O = the other characters' lines with speakers.

With ingest.mask_names, names are masked before anything downstream reads the text
(flows/lib/name_mask.py): every speaker cue of the script (the character's own among them), the
cues of every CMU character in any script, and every word of a CMU character name (of this movie
and of the others: "Skywalker" is named in scripts where Luke is no CMU character) become one
placeholder, in D, E, O and O's speakers, so no model can tell who speaks from names. Splits: flows/lib/splits.py."""
from __future__ import annotations

import csv
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from flows.lib.config import PARAMS_FILE, param, write_json
from flows.lib.errors import PipelineInputError
from flows.lib.name_mask import NameMasker
from flows.lib.schemas import CHARACTERS, SCREENPLAY_PAGES, SNIPPETS, read_table, write_table
from flows.lib.screenplay import Scene, cue_counts, match_character, parse_screenplay
from flows.lib.splits import SPLITS, SplitSettings, snippet_splits

SCRIPTS_ROOT = "imsdb_scripts"  # under data.root; the two tables below name files inside it
SCRIPT_MAP = "movie_script_map.tsv"
CHARACTER_MATCHES = "cmu_character_matches.tsv"
SOURCE = "screenplays"
CONTENT_KINDS = ("dialogue", "action", "parenthetical")


@dataclass(frozen=True)
class IngestSettings:
    window: int  # blocks per snippet
    min_lines: int  # dialogue blocks a character needs to be kept
    max_snippets: int  # per character
    hand_aliases: bool  # cues from cmu_character_matches.tsv's matched_cue
    mask_names: bool  # mask cues and CMU names of the movie in every stream


@dataclass(frozen=True)
class Script:
    name: str  # the bundled file, or "crawl:<url>"
    text: str
    layout: str
    bundled: bool


def ingest_settings(params: dict) -> IngestSettings:
    values = {}
    for name in ("window", "min_lines", "max_snippets"):
        value = param(params, f"ingest.{name}", int)
        if value < 1:
            raise PipelineInputError(f"{PARAMS_FILE}: param 'ingest.{name}' must be >= 1, got {value}")
        values[name] = value
    return IngestSettings(**values, hand_aliases=param(params, "ingest.hand_aliases", bool),
                          mask_names=param(params, "ingest.mask_names", bool))


def read_tsv(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    if not path.exists():
        raise PipelineInputError(f"{path}: file not found")
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        for column in columns:
            if column not in (reader.fieldnames or []):
                raise PipelineInputError(f"{path}: missing column '{column}'")
        return list(reader)


def bundled_scripts(script_map: Path, scripts_root: Path) -> dict[str, Script]:
    """movie -> its bundled script (text read here; a missing file names itself)."""
    scripts: dict[str, Script] = {}
    texts: dict[str, str] = {}
    for row in read_tsv(script_map, ("movie", "script_file", "parse_mode")):
        if not row["script_file"]:
            continue
        file = scripts_root / row["script_file"]
        if row["script_file"] not in texts:
            if not file.exists():
                raise PipelineInputError(f"{file}: file not found (listed in {script_map})")
            texts[row["script_file"]] = file.read_text(encoding="utf-8", errors="replace")
        scripts[row["movie"]] = Script(row["script_file"], texts[row["script_file"]], row["parse_mode"] or "auto", True)
    return scripts


def crawled_scripts(path: Path | None) -> dict[str, Script]:
    """movie -> crawled screenplay text (pages of one movie joined in file order)."""
    if path is None or not Path(path).exists():
        return {}
    pages: dict[str, list[dict]] = {}
    for row in read_table(path, SCREENPLAY_PAGES).to_pylist():
        if row["movie"] and row["text"]:
            pages.setdefault(row["movie"], []).append(row)
    return {
        movie: Script(f"crawl:{rows[0]['url']}", "\n".join(row["text"] for row in rows), "auto", False)
        for movie, rows in pages.items()
    }


def read_hand_aliases(path: Path) -> dict[tuple[str, str], list[str]]:
    """(movie, character) -> matched cues, for rows that have a bundled script."""
    return {
        (row["movie"], row["character"]): [cue for cue in row["matched_cue"].split("|") if cue]
        for row in read_tsv(path, ("character", "movie", "script_file", "matched_cue"))
        if row["script_file"]
    }


def snippet_windows(scenes: list[Scene], cues: set[str], window: int):
    """(scene index, first block index, blocks) of each window holding a line of `cues`."""
    for scene_index, scene in enumerate(scenes):
        blocks = [block for block in scene.blocks if block.kind in CONTENT_KINDS]
        for start in range(0, len(blocks), window):
            chunk = blocks[start:start + window]
            if any(block.kind == "dialogue" and block.speaker in cues for block in chunk):
                yield scene_index, start, chunk


def window_streams(blocks: list, cues: set[str]) -> dict[str, list]:
    """The snippet S of one window: D the character's lines, E action lines and parentheticals,
    O the other characters' lines with their speakers."""
    return {
        "D": [b.text for b in blocks if b.kind == "dialogue" and b.speaker in cues],
        "E": [b.text for b in blocks if b.kind != "dialogue"],
        "O": [{"speaker": b.speaker, "text": b.text} for b in blocks if b.kind == "dialogue" and b.speaker not in cues],
    }


def mask_streams(streams: dict[str, list], masker: NameMasker) -> dict[str, list]:
    """(D, E, O) with names masked, O's speakers too."""
    return {
        "D": [masker.mask(text) for text in streams["D"]],
        "E": [masker.mask(text) for text in streams["E"]],
        "O": [{"speaker": masker.mask(other["speaker"]), "text": masker.mask(other["text"])} for other in streams["O"]],
    }


def cap_evenly(items: list, limit: int) -> list:
    """At most `limit` items, evenly spread over the script (deterministic)."""
    if len(items) <= limit:
        return items
    return [items[index] for index in np.linspace(0, len(items) - 1, limit).round().astype(int)]


def ingest_screenplays(
    characters_path: Path,
    scripts_root: Path,
    crawled_path: Path | None,
    output_path: Path,
    metrics_path: Path,
    settings: IngestSettings,
    split: SplitSettings,
) -> dict:
    """Match characters to cues, cut snippets, split, write table and metrics."""
    characters = read_table(characters_path, CHARACTERS).to_pylist()
    scripts = {**crawled_scripts(crawled_path), **bundled_scripts(scripts_root / SCRIPT_MAP, scripts_root)}
    aliases = read_hand_aliases(scripts_root / CHARACTER_MATCHES) if settings.hand_aliases else {}
    parsed: dict[str, tuple[list[Scene], Counter]] = {}
    matched: list[tuple[dict, list[Scene], set[str]]] = []  # (character, its script's scenes, its cues)
    with_script = 0
    for character in characters:
        script = scripts.get(character["movie"])
        if script is None:
            continue
        with_script += 1
        if script.name not in parsed:
            scenes = parse_screenplay(script.text, script.layout)
            parsed[script.name] = (scenes, cue_counts(scenes))
        scenes, counts = parsed[script.name]
        known = aliases.get((character["movie"], character["character"])) if script.bundled else None
        cues = set(match_character(character["character"], counts, known))
        if sum(counts[cue] for cue in cues) >= settings.min_lines:
            matched.append((character, scenes, cues))
    maskers: dict[str, NameMasker] = {}
    if settings.mask_names:
        # Names: every CMU name, and the cues of every CMU character in any script ("INDY" of
        # Raiders also names him in Temple of Doom, whose script cues him "INDIANA").
        cmu_names = sorted({character["character"] for character in characters})
        character_cues = sorted({cue for _, _, cues in matched for cue in cues})
        for movie in dict.fromkeys(character["movie"] for character, _, _ in matched):
            counts = parsed[scripts[movie].name][1]
            maskers[movie] = NameMasker(cmu_names, cues=[*counts, *character_cues])
    rows: list[dict] = []
    per_character: dict[str, int] = {}
    for character, scenes, cues in matched:
        windows = cap_evenly(list(snippet_windows(scenes, cues, settings.window)), settings.max_snippets)
        if split.unit == "snippet":  # the same person under two tropes gets the same split
            scenes_of = [scene_index for scene_index, _, _ in windows]
            labels = snippet_splits(scenes_of, split, f"{character['freebase_id']}|{character['movie']}")
        else:
            labels = [character["split"]] * len(windows)
        for (scene_index, start, blocks), label in zip(windows, labels):
            streams = window_streams(blocks, cues)
            if settings.mask_names:
                streams = mask_streams(streams, maskers[character["movie"]])
            rows.append(
                {
                    "snippet_id": f"{character['char_id']}|{scene_index}|{start}",
                    "char_id": character["char_id"],
                    "movie": character["movie"],
                    "scene": scene_index,
                    **streams,
                    "split": label,
                    "source": SOURCE,
                }
            )
        per_character[character["char_id"]] = len(windows)
    write_table(pa.Table.from_pylist(rows, schema=SNIPPETS), output_path, SNIPPETS)
    metrics = ingest_metrics(characters, with_script, per_character, rows, parsed)
    write_json(metrics, metrics_path)
    return metrics


def ingest_metrics(characters: list[dict], with_script: int, per_character: dict[str, int],
                   rows: list[dict], parsed: dict) -> dict:
    trope_of = {character["char_id"]: character["trope"] for character in characters}
    person_of = {character["char_id"]: character["freebase_id"] for character in characters}
    people_per_trope: dict[str, set[str]] = {}
    for char_id in per_character:
        people_per_trope.setdefault(trope_of[char_id], set()).add(person_of[char_id])
    sizes = sorted(per_character.values())
    return {
        "characters": {
            "rows": len(characters),
            "with_script": with_script,
            "matched": len(per_character),
            "unmatched": len(characters) - len(per_character),
            "distinct_matched": len({person_of[char_id] for char_id in per_character}),
        },
        "snippets_per_character": {
            "median": statistics.median(sizes) if sizes else 0,
            "min": sizes[0] if sizes else 0,
            "max": sizes[-1] if sizes else 0,
        },
        "tropes": {
            "total": len(set(trope_of.values())),
            "covered": len(people_per_trope),
            "with_3_characters": sum(len(people) >= 3 for people in people_per_trope.values()),
        },
        "snippets": {"total": len(rows), **{name: sum(row["split"] == name for row in rows) for name in SPLITS}},
        "scripts": {
            "parsed": len(parsed),
            "crawled": sum(name.startswith("crawl:") for name in parsed),
        },
    }
