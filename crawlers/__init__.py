"""The Scrapy project that crawls TVTropes, IMDb quotes and IMSDb screenplays into crawls/.

Parsing lives in plain modules (`crawlers.tvtropes`, `crawlers.imdb`, `crawlers.imsdb`): pure
functions from page text to rows, testable without Scrapy. Spiders in `crawlers.spiders` only
fetch and hand pages to them; `crawlers.pipelines` writes the rows to Parquet. Run a crawl with
`personas crawl` (flows/crawl.py), which starts `scrapy crawl` with
SCRAPY_SETTINGS_MODULE=crawlers.settings.
"""
