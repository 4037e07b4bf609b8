"""What each spider asks for first, from the shared data's lists (no network: the requests
are only built), and what it skips when units are already on disk."""
import asyncio

from scrapy.crawler import Crawler
from scrapy.settings import Settings

from crawlers.resume import parts_dir, write_part
from crawlers.spiders.imdb_quotes import ImdbQuotesSpider
from crawlers.spiders.imsdb import ImsdbSpider
from crawlers.spiders.tvtropes import TvTropesSpider
from flows.crawl import scrapy_settings
from flows.lib.config import load_params


def start_urls(spider_class, tmp_path, shared_data) -> list[str]:
    settings = Settings()
    settings.setmodule("crawlers.settings")
    settings.update({**scrapy_settings(load_params()), "CRAWL_WORK_DIR": str(tmp_path), "CRAWL_DATA_ROOT": str(shared_data)})
    spider = spider_class.from_crawler(Crawler(spider_class, settings))
    assert spider.allowed_domains == [spider.base_url.split("://")[1]]

    async def collect():
        return [request.url async for request in spider.start()]
    return asyncio.run(collect())


def test_default_work_lists(tmp_path, shared_data):
    tropes = start_urls(TvTropesSpider, tmp_path, shared_data)
    assert len(tropes) == 72 and "https://tvtropes.org/pmwiki/pmwiki.php/Main/DaChief" in tropes
    searches = start_urls(ImdbQuotesSpider, tmp_path, shared_data)
    assert len(searches) == 383
    assert ("https://www.imdb.com/search/title/?title=Scarface&title_type=feature%2Ctv_movie%2Cvideo"
            "&release_date=1931-01-01%2C1984-12-31") in searches  # remakes share a title: both years
    scripts = start_urls(ImsdbSpider, tmp_path, shared_data)
    assert len(scripts) == 382  # Kill Bill Volume 1 and 2: one page for both
    assert {"https://imsdb.com/scripts/L.A.-Confidential.html", "https://imsdb.com/scripts/Kill-Bill-Volume-1-&-2.html",
            "https://imsdb.com/scripts/Departed,-The.html"} <= set(scripts)


def test_units_on_disk_are_not_asked_for_again(tmp_path, shared_data):
    row = {"trope": "the_chief", "title": "DaChief", "url": "u", "description": "d", "laconic": ""}
    write_part(parts_dir(tmp_path, "tvtropes"), "trope_pages", ["the_chief"], [row])
    tropes = start_urls(TvTropesSpider, tmp_path, shared_data)
    assert len(tropes) == 71 and not any(url.endswith("/DaChief") for url in tropes)
