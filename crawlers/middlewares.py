"""Two Scrapy 2.19 downloader middlewares, adjusted: robots.txt for every request, and a
warning for every request left out for leaving the allowed domain."""
from __future__ import annotations

import logging

from scrapy.downloadermiddlewares.offsite import OffsiteMiddleware
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

logger = logging.getLogger(__name__)


class SharedRobotsTxtMiddleware(RobotsTxtMiddleware):
    """Obeys robots.txt for every request, not only the first one per site.

    Scrapy 2.19 makes the requests that arrive while robots.txt is being fetched await one
    Deferred through `Deferred.asFuture`, which hands the parser to the first of them and None
    (read as "no robots.txt: allow all") to the rest, so a crawl's first burst of requests went
    unchecked (tests/test_spiders_loopback.py caught it). The parser is stored before the
    Deferred fires, so a waiter handed None looks it up again."""

    async def robot_parser(self, request):
        parser = await super().robot_parser(request)
        if parser is None:
            stored = self._parsers.get(urlparse_cached(request).netloc)
            parser = None if isinstance(stored, Deferred) else stored
        return parser


class WarningOffsiteMiddleware(OffsiteMiddleware):
    """Scrapy's filter, saying so at WARNING for each request it drops (Scrapy logs the first
    per host at DEBUG, and a redirect dropped at scheduling reaches no errback)."""

    def process_request(self, request, spider=None) -> None:
        try:
            super().process_request(request)
        except IgnoreRequest:
            logger.warning("%s: not fetched, off the allowed domains %s", request.url,
                           self.crawler.spider.allowed_domains, extra={"spider": self.crawler.spider})
            raise
