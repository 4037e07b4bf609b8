"""One description per CMU trope (data/tropes.parquet). Text per trope, best first: a crawled
full description (data.crawled_tropes, when that file exists), the bundled full description, a
crawled then bundled Laconic line, and last the page title in words ("Fastest Gun In The West",
description_kind "title", with a logged warning)."""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pyarrow as pa

from flows.lib.schemas import read_clusters
from flows.lib.errors import PipelineInputError
from flows.lib.schemas import TROPE_PAGES, TROPES, read_table, write_table

DESCRIPTIONS = ("tvtropes_descriptions", "trope_descriptions.jsonl")
PAGE_URL = "https://tvtropes.org/pmwiki/pmwiki.php/Main/{title}"

log = logging.getLogger(__name__)


def _text(value) -> str:
    return value.strip() if isinstance(value, str) else ""


def read_bundled(path: Path) -> dict[str, dict]:
    """trope id -> record of trope_descriptions.jsonl; a bad line names file and line."""
    if not path.exists():
        raise PipelineInputError(f"{path}: file not found")
    records: dict[str, dict] = {}
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise PipelineInputError(f"{path}:{number}: not a JSON object ({error.msg})") from error
            if not isinstance(record, dict) or not _text(record.get("trope")):
                raise PipelineInputError(f"{path}:{number}: field 'trope' missing or empty")
            records[record["trope"].strip()] = record
    return records


def read_crawled(path: Path | None) -> dict[str, dict]:
    """trope id -> crawled TROPE_PAGES row, or {} when no crawl was made."""
    if path is None or not Path(path).exists():
        return {}
    return {row["trope"]: row for row in read_table(path, TROPE_PAGES).to_pylist() if _text(row["trope"])}


def title_words(title: str) -> str:
    """'FastestGunInTheWest' -> 'Fastest Gun In The West'; 'dumb_muscle' -> 'Dumb Muscle'."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|_", " ", title)
    return " ".join(word[:1].upper() + word[1:] for word in spaced.split())


def describe(trope: str, bundled: dict, crawled: dict) -> dict[str, str]:
    """One TROPES row from whichever source has the best text."""
    title = _text(crawled.get("title")) or _text(bundled.get("title")) or title_words(trope).replace(" ", "")
    url = _text(crawled.get("url")) or _text(bundled.get("url")) or PAGE_URL.format(title=title)
    laconic = _text(crawled.get("laconic")) or _text(bundled.get("laconic"))
    bundled_kind = _text(bundled.get("description_kind"))
    bundled_text = _text(bundled.get("description"))
    candidates = [
        (_text(crawled.get("description")), "full", f"crawl:{url}"),
        (bundled_text if bundled_kind == "full" else "", "full", _text(bundled.get("source"))),
        (_text(crawled.get("laconic")), "laconic", f"crawl:{url}"),
        (bundled_text if bundled_kind != "full" else "", "laconic", _text(bundled.get("source"))),
        (_text(bundled.get("laconic")), "laconic", _text(bundled.get("laconic_source"))),
    ]
    for text, kind, source in candidates:
        if text:
            return {"trope": trope, "title": title, "description": text, "description_kind": kind,
                    "laconic": laconic, "url": url, "source": source}
    log.warning("trope %s has no description; using its title %r as text", trope, title)
    return {"trope": trope, "title": title, "description": title_words(title), "description_kind": "title",
            "laconic": laconic, "url": url, "source": "title"}


def ingest_descriptions(
    clusters_path: Path, descriptions_path: Path, crawled_path: Path | None, output_path: Path
) -> dict[str, int]:
    """Every trope of the clusters file gets one row, in trope id order; returns counts."""
    tropes = sorted({row.trope for row in read_clusters(Path(clusters_path))})
    bundled = read_bundled(Path(descriptions_path))
    crawled = read_crawled(crawled_path)
    rows = [describe(trope, bundled.get(trope, {}), crawled.get(trope, {})) for trope in tropes]
    write_table(pa.Table.from_pylist(rows, schema=TROPES), output_path, TROPES)
    counts = {"tropes": len(rows), "crawled": sum(row["source"].startswith("crawl:") for row in rows)}
    for kind in ("full", "laconic", "title"):
        counts[kind] = sum(row["description_kind"] == kind for row in rows)
    return counts
