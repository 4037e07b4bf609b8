"""Dialogue snippets S = (D, E, O) from crawled IMDb quotes (the ingest_quotes stage, source
"imdb"): one snippet per quote in which the character speaks: D = the character's lines, E =
every bracketed direction of the quote, O = the other speakers' lines. A character is matched to
the speakers of its movie's quotes by the screenplay path's name rules
(`screenplay.match_character`: full name, name without titles, title + last name, and the most
frequent first or last name), keeps ingest.min_lines lines at least and ingest.max_snippets
quotes at most, and is split like the screenplay snippets (split.unit; a quote is a scene). With
ingest.mask_names the names are masked as in the screenplay snippets: every speaker of the movie's
quotes and every word of a CMU character name becomes one placeholder."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow as pa

from flows.lib.config import write_json
from flows.lib.name_mask import NameMasker
from flows.lib.schemas import CHARACTERS, QUOTES, SNIPPETS, read_table, write_table
from flows.lib.screenplay import match_character, normalize_cue
from flows.lib.screenplay_snippets import IngestSettings, cap_evenly, mask_streams
from flows.lib.splits import SPLITS, SplitSettings, snippet_splits

SOURCE = "imdb"


def quote_snippet(quote: dict, speakers: set[str]) -> dict | None:
    """The (D, E, O) of one quote for the character speaking as `speakers` (normalized), or
    None when the character says nothing in it."""
    lines = quote["lines"]
    said = [line["text"] for line in lines if normalize_cue(line["speaker"]) in speakers and line["text"]]
    if not said:
        return None
    return {
        "D": said,
        "E": [direction for line in lines for direction in line["directions"]],
        "O": [{"speaker": line["speaker"], "text": line["text"]} for line in lines
              if line["text"] and normalize_cue(line["speaker"]) not in speakers],
    }


def ingest_quotes(characters_path: Path, quotes_path: Path, output_path: Path, metrics_path: Path,
                  settings: IngestSettings, split: SplitSettings) -> dict:
    """Match characters to quote speakers, cut snippets, split, write table and metrics."""
    characters = read_table(characters_path, CHARACTERS).to_pylist()
    quotes_by_movie: dict[str, list[dict]] = {}
    for quote in sorted(read_table(quotes_path, QUOTES).to_pylist(), key=lambda q: (q["movie"], q["position"])):
        quotes_by_movie.setdefault(quote["movie"], []).append(quote)
    cmu_names = sorted({character["character"] for character in characters})
    rows: list[dict] = []
    matched: dict[str, int] = {}
    for character in characters:
        quotes = quotes_by_movie.get(character["movie"], [])
        counts = Counter(normalize_cue(line["speaker"]) for quote in quotes for line in quote["lines"]
                         if line["speaker"] and line["text"])
        speakers = set(match_character(character["character"], counts))
        if sum(counts[speaker] for speaker in speakers) < settings.min_lines:
            continue
        snippets = [(quote, snippet) for quote in quotes if (snippet := quote_snippet(quote, speakers))]
        snippets = cap_evenly(snippets, settings.max_snippets)
        if settings.mask_names:
            masker = NameMasker(cmu_names, cues=counts)
            snippets = [(quote, mask_streams(snippet, masker)) for quote, snippet in snippets]
        if split.unit == "snippet":  # the same person under two tropes gets the same split
            scenes = [quote["position"] for quote, _ in snippets]
            labels = snippet_splits(scenes, split, f"{character['freebase_id']}|{character['movie']}")
        else:
            labels = [character["split"]] * len(snippets)
        for (quote, snippet), label in zip(snippets, labels):
            rows.append({"snippet_id": f"{character['char_id']}|imdb|{quote['quote_id']}",
                         "char_id": character["char_id"], "movie": character["movie"], "scene": quote["position"],
                         **snippet, "split": label, "source": SOURCE})
        matched[character["char_id"]] = len(snippets)
    write_table(pa.Table.from_pylist(rows, schema=SNIPPETS), output_path, SNIPPETS)
    metrics = {
        "characters": {"rows": len(characters), "matched": len(matched),
                       "with_quotes": sum(character["movie"] in quotes_by_movie for character in characters)},
        "quotes": {"movies": len(quotes_by_movie), "total": sum(map(len, quotes_by_movie.values()))},
        "snippets": {"total": len(rows), **{name: sum(row["split"] == name for row in rows) for name in SPLITS}},
    }
    write_json(metrics, metrics_path)
    return metrics
