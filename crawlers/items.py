"""The one item type every spider yields."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CrawledRows:
    """All rows one work unit (a trope, a movie) yields, written to disk together so that a
    unit is either complete in the crawl output or crawled again after a restart."""

    unit: str
    rows: list[dict]  # each a row of the spider's table (flows.lib.schemas.SCHEMAS[spider.table])
