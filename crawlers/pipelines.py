"""The one item pipeline: rows -> atomic Parquet part files -> the merged crawl table.

Spiders yield `CrawledRows`, all rows of one work unit. The pipeline buffers units and, every
CRAWL_BATCH_SIZE units and at the end, writes them as one part file (crawlers.resume); at the
end it also merges all parts of the spider into its table in crawls/ (the path params.yaml
names: data.crawled_tropes, data.quotes, data.crawled_screenplays), one row per key.
"""
from __future__ import annotations

from pathlib import Path

from crawlers.items import CrawledRows
from crawlers.resume import done_units, merge_parts, parts_dir, write_part


class PartsPipeline:
    def __init__(self, crawler):
        self.crawler = crawler
        self.batch_size = crawler.settings.getint("CRAWL_BATCH_SIZE")

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def open_spider(self) -> None:
        spider = self.crawler.spider
        self.parts = parts_dir(self.crawler.settings["CRAWL_WORK_DIR"], spider.name)
        self.parts.mkdir(parents=True, exist_ok=True)
        for leftover in self.parts.glob(".part-*.tmp"):  # a write cut short by a kill
            leftover.unlink()
        self.done = done_units(self.parts)
        self.units: list[str] = []
        self.rows: list[dict] = []
        self.table = spider.table

    def process_item(self, item):
        if not isinstance(item, CrawledRows):
            return item
        if item.unit in self.done:  # a request replayed from the job queue after a restart
            self.crawler.stats.inc_value("parts/repeated_units")
            return item
        self.done.add(item.unit)
        self.units.append(item.unit)
        self.rows.extend(item.rows)
        if len(self.units) >= self.batch_size:
            self.flush()
        return item

    def flush(self) -> None:
        if self.units:
            write_part(self.parts, self.table, self.units, self.rows)
            self.crawler.stats.inc_value("parts/files")
            self.units, self.rows = [], []

    def close_spider(self) -> None:
        self.flush()
        outputs = self.crawler.settings.getdict("CRAWL_OUTPUTS")
        spider = self.crawler.spider
        rows = merge_parts(self.parts, Path(outputs[spider.name]), self.table)
        spider.logger.info("merged %d %s rows into %s", rows, self.table, outputs[spider.name])
