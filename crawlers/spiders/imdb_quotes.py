"""imdb_quotes: each CMU trope movie -> its IMDb title id -> its quotes -> crawls/quotes.parquet.

    scrapy crawl imdb_quotes [-a "movies=The Matrix (1999);Flubber (1997)=tt0119137"]
                             [-a base_url=http://127.0.0.1:8000]

Without `movies`, the movies are those of cmu_tvtropes/tvtropes.clusters.txt with their years
from cmu_movie_summaries/movie.metadata.tsv.gz. The title id comes from IMDb's advanced title
search (`/search/title/?title=...&release_date=...`, years ±1), unless given as `=tt...`.
"""
from __future__ import annotations

from urllib.parse import urlencode

from crawlers.imdb import choose_title, parse_quotes_page, parse_title_search, quote_rows
from crawlers.items import CrawledRows
from crawlers.sources import Movie, parse_movie_list, trope_movies
from crawlers.spiders import SiteSpider


class ImdbQuotesSpider(SiteSpider):
    name = "imdb_quotes"
    table = "quotes"

    def __init__(self, movies: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.movies = parse_movie_list(movies) if movies else None

    async def start(self):
        movies = {movie.title: movie for movie in self.movies or trope_movies(self.data_root)}
        for title, movie in self.pending(movies):
            if movie.imdb_id:
                yield self.request(self.quotes_url(movie.imdb_id), self.parse_quotes, movie=title, imdb_id=movie.imdb_id)
            else:
                yield self.request(self.search_url(movie), self.parse_search, movie=title, years=list(movie.years))

    def search_url(self, movie: Movie) -> str:
        query = {"title": movie.title, "title_type": "feature,tv_movie,video"}
        if movie.years:
            query["release_date"] = f"{min(movie.years) - 1}-01-01,{max(movie.years) + 1}-12-31"
        return f"{self.base_url}/search/title/?{urlencode(query)}"

    def quotes_url(self, imdb_id: str) -> str:
        return f"{self.base_url}/title/{imdb_id}/quotes/"

    def parse_search(self, response, movie: str, years: list[int]):
        hits = self.parsed(parse_title_search, response)
        hit = choose_title(hits, movie, years) if hits else None
        if hits and hit is None:
            self.logger.warning("%s: no result is %r from %s", response.url, movie, years)
        if hit is not None:
            yield self.request(self.quotes_url(hit.imdb_id), self.parse_quotes, movie=movie, imdb_id=hit.imdb_id)

    def parse_quotes(self, response, movie: str, imdb_id: str):
        quotes = self.parsed(parse_quotes_page, response)
        if quotes:
            yield CrawledRows(movie, quote_rows(quotes, imdb_id, movie, response.url))
