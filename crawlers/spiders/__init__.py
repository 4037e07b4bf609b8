"""The three spiders and what they share (`SiteSpider`)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import scrapy

from crawlers.pages import page_text
from crawlers.resume import done_units, end_job, job_dir, parts_dir, start_job
from flows.lib.errors import PipelineInputError

Parsed = TypeVar("Parsed")
Work = TypeVar("Work")


class SiteSpider(scrapy.Spider):
    """A spider for one site. `-a base_url=http://127.0.0.1:8000` points it elsewhere (tests);
    allowed_domains is always the base URL's host alone, so nothing off it is fetched, even
    through a redirect. Parse failures log one warning and yield nothing."""

    table: str  # the spider's table in flows.lib.schemas.SCHEMAS

    def __init__(self, base_url: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.base_url_arg = base_url

    @classmethod
    def update_settings(cls, settings) -> None:
        super().update_settings(settings)
        if not settings.get("CRAWL_WORK_DIR"):
            raise PipelineInputError("CRAWL_WORK_DIR is not set: run spiders with `personas crawl`, which passes params.yaml crawl: as -s settings")
        # A job directory per spider, unless the command line names one.
        settings.set("JOBDIR", str(job_dir(settings["CRAWL_WORK_DIR"], cls.name)), priority="spider")

    @classmethod
    def from_crawler(cls, crawler, *args: Any, **kwargs: Any):
        spider = super().from_crawler(crawler, *args, **kwargs)
        base_url = (spider.base_url_arg or crawler.settings.getdict("CRAWL_BASE_URLS").get(cls.name) or "").rstrip("/")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PipelineInputError(f"crawl.base_urls.{cls.name}: {base_url!r} is not an http(s) URL")
        spider.base_url = base_url
        spider.allowed_domains = [parts.hostname]
        spider.data_root = Path(crawler.settings["CRAWL_DATA_ROOT"])
        if crawler.settings["JOBDIR"] and start_job(crawler.settings["JOBDIR"]):
            spider.logger.warning("the last run was killed: its request queue is dropped (finished units stay)")
        return spider

    def closed(self, reason: str) -> None:
        if self.settings["JOBDIR"]:
            end_job(self.settings["JOBDIR"])

    def pending(self, work: dict[str, Work]) -> list[tuple[str, Work]]:
        """(unit, work) for the units of `work` not yet complete on disk, in order."""
        done = done_units(parts_dir(self.settings["CRAWL_WORK_DIR"], self.name))
        if done:
            self.logger.info("resuming: %d of %d units already crawled", len(done & set(work)), len(work))
        return [(unit, what) for unit, what in work.items() if unit not in done]

    def request(self, url: str, callback: Callable, **cb_kwargs: Any) -> scrapy.Request:
        return scrapy.Request(url, callback=callback, errback=self.warn_failed, cb_kwargs=cb_kwargs)

    def parsed(self, parser: Callable[[str, str], Parsed], response) -> Parsed | None:
        """`parser(page text, url)`, or None with a warning when the page is unusable."""
        try:
            return parser(page_text(response.body, getattr(response, "encoding", None), response.url), response.url)
        except PipelineInputError as error:
            self.logger.warning("%s", error)
            self.crawler.stats.inc_value("pages/unusable")
            return None

    def warn_failed(self, failure) -> None:
        self.logger.warning("%s: no page (%s)", failure.request.url, failure.getErrorMessage())
        self.crawler.stats.inc_value("pages/failed")

    def on_site(self, url: str) -> bool:
        host, allowed = urlsplit(url).hostname or "", self.allowed_domains[0]
        return host == allowed or host.endswith("." + allowed)
