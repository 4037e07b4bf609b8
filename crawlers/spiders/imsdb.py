"""imsdb: each CMU trope movie's IMSDb script page -> crawls/screenplay_pages.parquet.

    scrapy crawl imsdb [-a "movies=Alien;The Departed"] [-a base_url=http://127.0.0.1:8000]

Without `movies`, the movies are those of cmu_tvtropes/tvtropes.clusters.txt, under the page
names of imsdb_scripts/movie_script_map.tsv where it has them (crawlers.sources); titles given
here take the name IMSDb's naming rule gives. Movies without a script get a 404, logged.
"""
from __future__ import annotations

from urllib.parse import quote

from crawlers.imsdb import page_name, parse_script_page
from crawlers.items import CrawledRows
from crawlers.sources import imsdb_page_names, parse_movie_list, trope_movies
from crawlers.spiders import SiteSpider


class ImsdbSpider(SiteSpider):
    name = "imsdb"
    table = "screenplay_pages"

    def __init__(self, movies: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.movie_titles = [movie.title for movie in parse_movie_list(movies)] if movies else None

    async def start(self):
        if self.movie_titles:
            names = {title: page_name(title) for title in self.movie_titles}
        else:
            titles = [movie.title for movie in trope_movies(self.data_root)]
            names = imsdb_page_names(self.data_root, titles)
        movies_of: dict[str, list[str]] = {}  # one page may hold several films (Kill Bill 1 and 2)
        for title, name in self.pending(names):
            movies_of.setdefault(name, []).append(title)
        for name, movies in movies_of.items():
            url = f"{self.base_url}/scripts/{quote(name, safe='%,&-.')}.html"
            yield self.request(url, self.parse_script, movies=movies)

    def parse_script(self, response, movies: list[str]):
        text = self.parsed(parse_script_page, response)
        for movie in movies if text is not None else []:
            yield CrawledRows(movie, [{"movie": movie, "url": response.url, "text": text}])
