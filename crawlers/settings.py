"""Scrapy settings of every spider (SCRAPY_SETTINGS_MODULE=crawlers.settings). The tunable
ones come from params.yaml, section `crawl:` (and the output paths from `data:`), read from the
working directory or $PERSONAS_PARAMS like every stage; `-s NAME=value` still overrides."""
from pathlib import Path

from flows.lib.config import data_path, load_params, param

_params = load_params()
_work_dir = Path(param(_params, "crawl.work_dir", str)).resolve()

BOT_NAME = "personas"
SPIDER_MODULES = ["crawlers.spiders"]
NEWSPIDER_MODULE = "crawlers.spiders"

# Politeness: say who we are, obey robots.txt, one request at a time per site, back off
# when the site slows down, and never fetch a page twice (the HTTP cache replays it).
USER_AGENT = param(_params, "crawl.user_agent", str)
ROBOTSTXT_OBEY = True
DOWNLOADER_MIDDLEWARES = {  # Scrapy's own, adjusted: see crawlers/middlewares.py
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
    "crawlers.middlewares.WarningOffsiteMiddleware": 50,
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "crawlers.middlewares.SharedRobotsTxtMiddleware": 100,
}
CONCURRENT_REQUESTS_PER_DOMAIN = param(_params, "crawl.concurrent_requests_per_domain", int)
DOWNLOAD_DELAY = float(param(_params, "crawl.download_delay", (int, float)))
DOWNLOAD_TIMEOUT = param(_params, "crawl.timeout_s", int)
AUTOTHROTTLE_ENABLED = param(_params, "crawl.autothrottle", bool)
AUTOTHROTTLE_START_DELAY = max(DOWNLOAD_DELAY, 1.0)
AUTOTHROTTLE_TARGET_CONCURRENCY = float(param(_params, "crawl.autothrottle_target_concurrency", (int, float)))
RETRY_ENABLED = True
RETRY_TIMES = param(_params, "crawl.retry_times", int)
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False  # an HTTP endpoint that runs Python code sent to it

HTTPCACHE_ENABLED = True
HTTPCACHE_DIR = str(_work_dir / "httpcache")
HTTPCACHE_STORAGE = "crawlers.resume.AtomicCacheStorage"
HTTPCACHE_EXPIRATION_SECS = 0  # never expires: a rerun replays instead of refetching
HTTPCACHE_IGNORE_HTTP_CODES = [403, 408, 429, 500, 502, 503, 504]  # transient: not worth keeping
HTTPCACHE_IGNORE_MISSING = param(_params, "crawl.offline", bool)  # offline: cache hits only

DUPEFILTER_CLASS = "crawlers.resume.ProcessDupeFilter"
ITEM_PIPELINES = {"crawlers.pipelines.PartsPipeline": 300}
LOG_LEVEL = "INFO"

# Project settings read by crawlers.pipelines and crawlers.spiders.
CRAWL_WORK_DIR = str(_work_dir)
CRAWL_BATCH_SIZE = param(_params, "crawl.batch_size", int)
CRAWL_BASE_URLS = param(_params, "crawl.base_urls", dict)
CRAWL_DATA_ROOT = str(data_path(_params))
CRAWL_OUTPUTS = {
    "tvtropes": str(Path(param(_params, "data.crawled_tropes", str)).resolve()),
    "imdb_quotes": str(Path(param(_params, "data.quotes", str)).resolve()),
    "imsdb": str(Path(param(_params, "data.crawled_screenplays", str)).resolve()),
}
