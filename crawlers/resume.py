"""Crash-safe resume: part files that record which work units they complete.

A spider's rows reach disk as part files, each written atomically (temporary file, rename) and
carrying in its Parquet metadata the work units (trope, movie) whose rows it holds, all of
them. A unit is therefore on disk completely or not at all, and a restarted crawl skips exactly
the units found in its parts, whatever killed the previous run.

The HTTP cache must be as careful: `AtomicCacheStorage` writes each entry whole or not at all,
so that a kill cannot leave a cut-off page that every later run would replay.

Scrapy's JOBDIR alone cannot promise that after a SIGKILL. It appends each fingerprint to
`requests.seen` as soon as a request is scheduled, so a resumed job would skip requests that
never completed: `ProcessDupeFilter` keeps fingerprints for one process only. And it saves its
disk queue's bookkeeping only at a clean close: resumed after a kill, the queue replayed stale
requests and lost new ones (seen when tests/test_crawl_resume.py first ran). So a job that did
not close cleanly (no CLEAN_EXIT marker) has its queue dropped before it starts; after a clean
pause (Ctrl-C once) JOBDIR resumes as Scrapy documents.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from scrapy.dupefilters import RFPDupeFilter
from scrapy.extensions.httpcache import FilesystemCacheStorage

from flows.lib.schemas import SCHEMAS, read_table, write_table

UNITS_KEY = b"personas.units"
# The column that identifies a row: merging keeps the first row per key.
ROW_KEYS = {"trope_pages": "trope", "quotes": "quote_id", "screenplay_pages": "movie"}


class ProcessDupeFilter(RFPDupeFilter):
    """Drops repeated requests within one run and remembers nothing across runs."""

    @classmethod
    def from_crawler(cls, crawler):
        return cls(None, crawler.settings.getbool("DUPEFILTER_DEBUG"), fingerprinter=crawler.request_fingerprinter)


class AtomicCacheStorage(FilesystemCacheStorage):
    """Scrapy's filesystem cache writes an entry file by file; a kill between the files leaves
    metadata that promises a body which is not (all) there. This one writes the entry into a
    staging folder beside it and renames the folder into place."""

    _staging: Path | None = None

    def store_response(self, spider, request, response) -> None:
        final = Path(super()._get_request_path(spider, request))
        self._staging = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        shutil.rmtree(self._staging, ignore_errors=True)
        try:
            super().store_response(spider, request, response)
            shutil.rmtree(final, ignore_errors=True)
            os.replace(self._staging, final)
        finally:
            self._staging = None

    def _get_request_path(self, spider, request) -> str:
        # The parent class writes to this path: the staging folder while storing.
        return str(self._staging) if self._staging else super()._get_request_path(spider, request)


CLEAN_EXIT = "clean-exit"  # written into JOBDIR once Scrapy has saved the job's queue


def start_job(jobdir: Path) -> bool:
    """Before a run: drop the request queue of a job that was not closed cleanly, and clear
    the marker so that this run must earn it again. Returns whether a queue was dropped."""
    jobdir = Path(jobdir)
    queue = jobdir / "requests.queue"
    dropped = queue.exists() and not (jobdir / CLEAN_EXIT).exists()
    if dropped:
        shutil.rmtree(queue)
    (jobdir / CLEAN_EXIT).unlink(missing_ok=True)
    return dropped


def end_job(jobdir: Path) -> None:
    """After the scheduler has saved the queue (spider_closed): mark the job clean."""
    Path(jobdir).mkdir(parents=True, exist_ok=True)
    (Path(jobdir) / CLEAN_EXIT).touch()


def parts_dir(work_dir: str | Path, spider_name: str) -> Path:
    """Where a spider's part files live: <crawl.work_dir>/parts/<spider>."""
    return Path(work_dir) / "parts" / spider_name


def job_dir(work_dir: str | Path, spider_name: str) -> Path:
    """The spider's Scrapy JOBDIR: <crawl.work_dir>/jobs/<spider>."""
    return Path(work_dir) / "jobs" / spider_name


def part_files(directory: Path) -> list[Path]:
    """Finished part files, oldest first (names start with the time they were written)."""
    return sorted(Path(directory).glob("part-*.parquet"))


def done_units(directory: Path) -> set[str]:
    units: set[str] = set()
    for path in part_files(directory):
        units.update(json.loads(pq.read_schema(path).metadata[UNITS_KEY]))
    return units


def write_part(directory: Path, table_name: str, units: list[str], rows: list[dict]) -> Path:
    """Write the rows of whole units as one part file, atomically."""
    schema = SCHEMAS[table_name]
    path = Path(directory) / f"part-{time.time_ns():020d}.parquet"
    table = pa.Table.from_pylist(rows, schema=schema)
    return write_table(table, path, schema.with_metadata({UNITS_KEY: json.dumps(units).encode()}))


def merge_parts(directory: Path, out_path: Path, table_name: str) -> int:
    """All parts -> one table at `out_path` (atomic), one row per key, first seen kept.
    Returns the number of rows written."""
    schema = SCHEMAS[table_name]
    tables = [read_table(path, schema) for path in part_files(directory)]
    merged = pa.concat_tables(tables) if tables else schema.empty_table()
    key = ROW_KEYS[table_name]
    seen: set[str] = set()
    keep = [not (value in seen or seen.add(value)) for value in merged.column(key).to_pylist()]
    merged = merged.filter(pa.array(keep, pa.bool_()))
    write_table(merged, out_path, schema)
    return merged.num_rows
