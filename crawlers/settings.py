"""Scrapy settings of every spider (SCRAPY_SETTINGS_MODULE=crawlers.settings): the fixed ones.
The tunable ones (politeness, paths, base URLs) live in params.yaml `crawl:` and `data:` alone;
`personas crawl` (flows/crawl.py, scrapy_settings) passes them to `scrapy crawl` as `-s NAME=value`."""

BOT_NAME = "personas"
SPIDER_MODULES = ["crawlers.spiders"]
NEWSPIDER_MODULE = "crawlers.spiders"

# Politeness: say who we are, obey robots.txt, one request at a time per site, back off
# when the site slows down, and never fetch a page twice (the HTTP cache replays it).
ROBOTSTXT_OBEY = True
DOWNLOADER_MIDDLEWARES = {  # Scrapy's own, adjusted: see crawlers/middlewares.py
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
    "crawlers.middlewares.WarningOffsiteMiddleware": 50,
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "crawlers.middlewares.SharedRobotsTxtMiddleware": 100,
}
RETRY_ENABLED = True
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False  # an HTTP endpoint that runs Python code sent to it

HTTPCACHE_ENABLED = True
HTTPCACHE_STORAGE = "crawlers.resume.AtomicCacheStorage"
HTTPCACHE_EXPIRATION_SECS = 0  # never expires: a rerun replays instead of refetching
HTTPCACHE_IGNORE_HTTP_CODES = [403, 408, 429, 500, 502, 503, 504]  # transient: not worth keeping

DUPEFILTER_CLASS = "crawlers.resume.ProcessDupeFilter"
ITEM_PIPELINES = {"crawlers.pipelines.PartsPipeline": 300}
LOG_LEVEL = "INFO"

# Set per run from params.yaml by flows/crawl.py: USER_AGENT, DOWNLOAD_DELAY, DOWNLOAD_TIMEOUT,
# CONCURRENT_REQUESTS_PER_DOMAIN, AUTOTHROTTLE_*, RETRY_TIMES, HTTPCACHE_DIR,
# HTTPCACHE_IGNORE_MISSING, and the project's own CRAWL_WORK_DIR, CRAWL_BATCH_SIZE,
# CRAWL_BASE_URLS, CRAWL_DATA_ROOT, CRAWL_OUTPUTS (read by crawlers.pipelines and crawlers.spiders).
