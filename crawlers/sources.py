"""What to crawl: trope pages and CMU trope movies, read from the shared data folder, or the
lists a spider argument gives instead."""
from __future__ import annotations

import csv
import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path

from crawlers.imsdb import page_name
from flows.lib.errors import PipelineInputError
from flows.lib.schemas import CLUSTERS, read_clusters

TROPE_LIST = Path("tvtropes_descriptions", "trope_descriptions.jsonl")
MOVIE_METADATA = Path("cmu_movie_summaries", "movie.metadata.tsv.gz")
SCRIPT_MAP = Path("imsdb_scripts", "movie_script_map.tsv")

_MOVIE_ARG = re.compile(r"^(?P<title>.+?)\s*(?:\((?P<year>\d{4})\))?\s*(?:=\s*(?P<imdb_id>tt\d+))?$")


@dataclass(frozen=True)
class Movie:
    title: str  # the CMU title: the key that joins crawled rows to CMU characters
    years: tuple[int, ...]  # every release year CMU lists under this title (remakes share one)
    imdb_id: str | None = None  # known already: no title search needed


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise PipelineInputError(f"{path}: cannot read ({error.strerror})") from error


def trope_pages(data_root: Path) -> list[tuple[str, str]]:
    """(CMU trope id, TVTropes page title) for every trope of the bundled list."""
    path = data_root / TROPE_LIST
    pages = []
    for number, line in enumerate(_lines(path), 1):
        try:
            record = json.loads(line)
            pages.append((str(record["trope"]), str(record["title"])))
        except (ValueError, KeyError, TypeError) as error:
            raise PipelineInputError(f"{path}: line {number} lacks trope/title ({error})") from error
    return pages


def trope_movies(data_root: Path) -> list[Movie]:
    """Every movie of the CMU trope list, with the years CMU's metadata gives its title."""
    titles = {row.movie for row in read_clusters(data_root.joinpath(*CLUSTERS))}
    years: dict[str, set[int]] = {title: set() for title in titles}
    metadata = data_root / MOVIE_METADATA
    try:
        with gzip.open(metadata, "rt", encoding="utf-8") as handle:
            for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
                if len(row) > 3 and row[2] in years and row[3][:4].isdigit():
                    years[row[2]].add(int(row[3][:4]))
    except (OSError, EOFError) as error:
        raise PipelineInputError(f"{metadata}: cannot read ({error})") from error
    return [Movie(title, tuple(sorted(years[title]))) for title in sorted(titles)]


def imsdb_page_names(data_root: Path, titles: list[str]) -> dict[str, str]:
    """IMSDb page name per title: the name of the bundled copy of its script when there is
    one (those were matched by hand), else the name IMSDb's naming rule gives. The mirror cut
    names at their first '.' (L.txt is L.A.-Confidential): such a name yields to the rule."""
    names = {title: page_name(title) for title in titles}
    path = data_root / SCRIPT_MAP
    for row in csv.DictReader(_lines(path), delimiter="\t"):
        title, script = row.get("movie"), Path(row.get("script_file") or "").stem
        if title in names and script and not names[title].startswith(script + "."):
            names[title] = script
    return names


def parse_movie_list(text: str) -> list[Movie]:
    """A spider argument `Title (Year)[=tt0000000];...` -> movies."""
    movies = []
    for entry in filter(None, (part.strip() for part in text.split(";"))):
        match = _MOVIE_ARG.match(entry)
        if not match:
            raise PipelineInputError(f"spider argument movies: cannot read {entry!r} as 'Title (Year)[=tt...]'")
        year = match.group("year")
        movies.append(Movie(match.group("title"), (int(year),) if year else (), match.group("imdb_id")))
    return movies
