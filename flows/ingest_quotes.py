"""Stage ingest_quotes: crawled IMDb quotes (data.quotes, from `personas crawl`) -> dialogue
snippets S = (D, E, O) per CMU character -> data/snippets_imdb.parquet (source "imdb"), plus
counts in metrics/ingest_quotes.json.

One snippet per quote in which the character speaks: D = the character's lines, E = every
bracketed direction of the quote, O = the other speakers' lines. A character is matched to
the speakers of its movie's quotes by the screenplay path's name rules
(`screenplay.match_character`: full name, name without titles, title + last name, and the most
frequent first or last name), keeps ingest.min_lines lines at least and ingest.max_snippets
quotes at most, and is split like the screenplay snippets (split.unit).

Frozen in dvc.yaml: the default `dvc repro` builds snippets from the bundled screenplays. To use
IMDb quotes: `personas crawl --spider imdb_quotes`, `dvc unfreeze ingest_quotes`, set
`data.source: imdb` in params.yaml, then `dvc repro`.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow as pa
from prefect import flow

from flows import ingest_screenplays
from flows.lib import screenplay
from flows.lib.config import load_params, param, write_json
from flows.ingest_screenplays import IngestSettings, cap_evenly, ingest_settings, snippet_splits
from flows.ingest_tropes import CHARACTERS_PATH, SPLITS, SplitSettings, split_settings
from flows.lib.orchestration import fingerprint, run_stage, stage_task
from flows.lib.schemas import CHARACTERS, QUOTES, SNIPPETS, read_table, write_table
from flows.lib.screenplay import match_character, normalize_cue

SNIPPETS_PATH = Path("data/snippets_imdb.parquet")
METRICS_PATH = Path("metrics/ingest_quotes.json")
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
    """Pure stage logic: match characters to quote speakers, cut snippets, split, write."""
    characters = read_table(characters_path, CHARACTERS).to_pylist()
    quotes_by_movie: dict[str, list[dict]] = {}
    for quote in sorted(read_table(quotes_path, QUOTES).to_pylist(), key=lambda q: (q["movie"], q["position"])):
        quotes_by_movie.setdefault(quote["movie"], []).append(quote)
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
        if split.unit == "snippet":  # the same person under two tropes gets the same split
            labels = snippet_splits(len(snippets), split, f"{character['freebase_id']}|{character['movie']}")
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


@stage_task
def ingest_quotes_task(characters_path: str, quotes_path: str, output_path: str, metrics_path: str,
                       settings: IngestSettings, split: SplitSettings, inputs: dict) -> dict:
    return ingest_quotes(Path(characters_path), Path(quotes_path), Path(output_path), Path(metrics_path),
                         settings, split)


@flow(name="ingest_quotes_flow")
def ingest_quotes_flow() -> dict:
    params = load_params()
    characters, output, metrics = (path.resolve() for path in (CHARACTERS_PATH, SNIPPETS_PATH, METRICS_PATH))
    quotes = Path(param(params, "data.quotes", str)).resolve()
    return run_stage(
        ingest_quotes_task,
        outputs=[output, metrics],
        characters_path=str(characters),
        quotes_path=str(quotes),
        output_path=str(output),
        metrics_path=str(metrics),
        settings=ingest_settings(params),
        split=split_settings(params),
        # The matching and splitting rules live in the screenplay stage's files.
        inputs=fingerprint(characters, quotes, screenplay.__file__, ingest_screenplays.__file__),
    )


if __name__ == "__main__":
    ingest_quotes_flow()
