"""tvtropes: each trope's `Main/<Title>` page (and its Laconic page) -> crawls/trope_pages.parquet.

    scrapy crawl tvtropes [-a titles=DumbMuscle,TheDitz] [-a base_url=http://127.0.0.1:8000]

Without `titles`, the tropes are those of tvtropes_descriptions/trope_descriptions.jsonl
(CMU trope id and page title); a title given here keeps its CMU id when the list has it.
"""
from __future__ import annotations

import scrapy

from crawlers.items import CrawledRows
from crawlers.sources import TROPE_LIST, trope_pages
from crawlers.spiders import SiteSpider
from crawlers.tvtropes import parse_laconic_page, parse_trope_page


class TvTropesSpider(SiteSpider):
    name = "tvtropes"
    table = "trope_pages"

    def __init__(self, titles: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.titles = [title.strip() for title in (titles or "").split(",") if title.strip()]

    async def start(self):
        listed = not self.titles or (self.data_root / TROPE_LIST).exists()
        tropes = trope_pages(self.data_root) if listed else []
        trope_of = {title: trope for trope, title in tropes}
        titles = self.titles or [title for _, title in tropes]
        for trope, title in self.pending({trope_of.get(title, title): title for title in titles}):
            url = f"{self.base_url}/pmwiki/pmwiki.php/Main/{title}"
            yield self.request(url, self.parse_main, trope=trope, title=title)

    def parse_main(self, response, trope: str, title: str):
        article = self.parsed(parse_trope_page, response)
        if article is None:
            return
        row = {"trope": trope, "title": title, "url": response.url, "description": article.description, "laconic": ""}
        if article.laconic_url is None or not self.on_site(article.laconic_url):
            yield CrawledRows(trope, [row])
            return
        # The main page's row still counts when the Laconic page fails (laconic_failed).
        yield scrapy.Request(article.laconic_url, callback=self.parse_laconic, errback=self.laconic_failed,
                             cb_kwargs={"row": row})

    def parse_laconic(self, response, row: dict):
        laconic = self.parsed(parse_laconic_page, response)
        yield CrawledRows(row["trope"], [{**row, "laconic": laconic or ""}])

    def laconic_failed(self, failure):
        self.warn_failed(failure)
        row = failure.request.cb_kwargs["row"]
        yield CrawledRows(row["trope"], [row])
