"""Each spider as a real `scrapy crawl` subprocess (flows.crawl.run_spider) against a site on
127.0.0.1 that the test serves; the Parquet it writes, and what it never fetches."""
from pathlib import Path

import pytest

from conftest import FIXTURES
from crawlers.resume import part_files
from flows.crawl import run_spider
from flows.lib.schemas import QUOTES, SCREENPLAY_PAGES, TROPE_PAGES, read_table
from loopback_site import LoopbackSite, Page, crawl_params

TVTROPES = "/pmwiki/pmwiki.php/Main/"
LATIN1 = "text/html; charset=iso-8859-1"


def crawl(tmp_path: Path, shared_data: Path, site: LoopbackSite, spider: str, monkeypatch, **args: str) -> tuple[Path, str]:
    monkeypatch.setenv("PERSONAS_PARAMS", str(crawl_params(tmp_path, shared_data, site.url)))
    monkeypatch.chdir(tmp_path)
    log = tmp_path / f"{spider}.log"
    return run_spider(spider, args, log_file=log), log.read_text()


def warnings(log: str) -> list[str]:
    return [line.split("WARNING: ", 1)[1] for line in log.splitlines() if " WARNING: " in line]


def tvtropes_bytes(shared_data: Path, name: str) -> bytes:
    return (shared_data / "html" / "tvtropes" / f"tvtropes_{name}.html").read_bytes()


@pytest.mark.slow
def test_tvtropes_spider_writes_trope_pages_and_skips_malformed(tmp_path, shared_data, monkeypatch):
    ahriman = tvtropes_bytes(shared_data, "Literature_AhrimanTrilogy")
    pages = {
        TVTROPES + "NotWearingTights": Page(tvtropes_bytes(shared_data, "Main_NotWearingTights"), content_type=LATIN1),
        "/pmwiki/pmwiki.php/Laconic/NotWearingTights": Page(
            (FIXTURES / "tvtropes" / "Laconic_NotWearingTights.html").read_bytes(), content_type=LATIN1),
        # charset only in the page's <meta>
        TVTROPES + "AkataWitch": Page(tvtropes_bytes(shared_data, "Literature_AkataWitch"), content_type="text/html"),
        TVTROPES + "Truncated": Page(ahriman[: len(ahriman) // 2], content_type=LATIN1),
        TVTROPES + "WrongCharset": Page(ahriman.replace(b"Needless to say", b"Needless to say\xe9")),
        TVTROPES + "Empty": Page(b""),
    }
    with LoopbackSite(pages) as site:
        titles = "NotWearingTights,AkataWitch,Truncated,WrongCharset,Empty,Missing"
        output, log = crawl(tmp_path, shared_data, site, "tvtropes", monkeypatch, titles=titles)
    rows = {row["trope"]: row for row in read_table(output, TROPE_PAGES).to_pylist()}
    assert sorted(rows) == ["AkataWitch", "NotWearingTights"]
    tights = rows["NotWearingTights"]
    assert tights["laconic"] == "Superheroes in all but name and costume."
    assert tights["description"].startswith("These superheroes just aren't called superheroes.")
    assert tights["url"] == f"{site.url}{TVTROPES}NotWearingTights"
    assert "can\u2019t play soccer" in rows["AkataWitch"]["description"] and rows["AkataWitch"]["laconic"] == ""
    said = "\n".join(warnings(log))
    for problem in ("Truncated: truncated page", "WrongCharset: not valid utf-8 text", "Empty: empty page",
                    "Missing: no page (Ignoring non-200 response)"):
        assert problem in said
    assert "Traceback" not in log


@pytest.mark.slow
def test_offsite_links_redirects_and_robots_disallowed_pages_are_never_fetched(tmp_path, shared_data, monkeypatch):
    page = tvtropes_bytes(shared_data, "Main_NotWearingTights")
    with LoopbackSite({}, robots=f"User-agent: *\nDisallow: {TVTROPES}Secret\n") as site:
        elsewhere = f"http://localhost:{site.port}"  # the same server under another host name
        site.pages.update({
            TVTROPES + "LinksAway": Page(page.replace(b'href="/pmwiki/pmwiki.php/Laconic/', f'href="{elsewhere}/pmwiki/pmwiki.php/Laconic/'.encode()),
                                         content_type=LATIN1),
            TVTROPES + "Moved": Page(status=302, headers={"Location": f"{elsewhere}{TVTROPES}LinksAway"}),
            TVTROPES + "Secret": Page(page, content_type=LATIN1),
        })
        output, log = crawl(tmp_path, shared_data, site, "tvtropes", monkeypatch, titles="LinksAway,Moved,Secret")
    assert {host for host, _ in site.requests} == {f"127.0.0.1:{site.port}"}
    assert sorted(site.paths()) == sorted(["/robots.txt", TVTROPES + "LinksAway", TVTROPES + "Moved"])
    (row,) = read_table(output, TROPE_PAGES).to_pylist()
    assert (row["trope"], row["laconic"]) == ("LinksAway", "")  # its Laconic link leads off the site
    said = "\n".join(warnings(log))
    assert f"{elsewhere}{TVTROPES}LinksAway: not fetched, off the allowed domains ['127.0.0.1']" in said
    assert "Secret: no page (Forbidden by robots.txt)" in said


@pytest.mark.slow
def test_imdb_quotes_spider_resolves_titles_and_parses_both_layouts(tmp_path, shared_data, monkeypatch):
    pages = {
        "/search/title/": Page((FIXTURES / "imdb" / "search_the_matrix.html").read_bytes()),  # whatever the query
        "/title/tt0133093/quotes/": Page((FIXTURES / "imdb" / "quotes_next_data.html").read_bytes()),
        "/title/tt0119137/quotes/": Page((FIXTURES / "imdb" / "quotes_legacy.html").read_bytes()),
        "/title/tt0000002/quotes/": Page(b"<html><body><p>No quotes yet.</p></body></html>"),
    }
    movies = "The Matrix (1999);Flubber (1997)=tt0119137;Unknown Film (2001);Quiet Film (2002)=tt0000002"
    with LoopbackSite(pages) as site:
        output, log = crawl(tmp_path, shared_data, site, "imdb_quotes", monkeypatch, movies=movies)
    rows = read_table(output, QUOTES).to_pylist()
    by_movie = {}
    for row in rows:
        by_movie.setdefault(row["movie"], []).append(row)
    assert sorted(by_movie) == ["Flubber", "The Matrix"]
    matrix = sorted(by_movie["The Matrix"], key=lambda row: row["position"])
    assert [row["quote_id"] for row in matrix] == ["qt9000001", "qt9000002", "qt9000003", "qt9000004"]
    assert {row["imdb_id"] for row in matrix} == {"tt0133093"} and matrix[0]["url"] == f"{site.url}/title/tt0133093/quotes/"
    assert matrix[0]["lines"][0] == {"speaker": "Agent Smith", "text": "Punctuality is a courtesy, Mr. Anderson.",
                                     "directions": ["straightening his tie"]}
    assert [row["position"] for row in by_movie["Flubber"]] == [0, 1, 2]
    assert "/search/title/?title=The+Matrix&title_type=feature%2Ctv_movie%2Cvideo&release_date=1998-01-01%2C2000-12-31" in site.paths()
    said = "\n".join(warnings(log))
    assert "no result is 'Unknown Film' from [2001]" in said  # only 1999 and 2003 titles listed
    assert "tt0000002/quotes/: no quotes on the page" in said


@pytest.mark.slow
def test_imsdb_spider_writes_screenplay_pages(tmp_path, shared_data, monkeypatch):
    scripts = shared_data / "imsdb_scripts" / "scripts"
    texts = {name: (scripts / f"{name}.txt").read_text(encoding="utf-8")[:5000] for name in ("Alien", "Casino")}
    def script_page(text: str) -> Page:
        escaped = text.replace("&", "&amp;").replace("<", "&lt;")
        return Page(f"<html><body><table><tr><td class='scrtext'><pre>{escaped}</pre></td></tr></table></body></html>".encode())
    pages = {"/scripts/Alien.html": script_page(texts["Alien"]), "/scripts/Casino,-The.html": script_page(texts["Casino"]),
             "/scripts/Placeholder.html": Page(b"<html><body><pre>Script coming soon</pre></body></html>")}
    with LoopbackSite(pages) as site:
        output, log = crawl(tmp_path, shared_data, site, "imsdb", monkeypatch, movies="Alien;The Casino;Placeholder;Missing Film")
    rows = {row["movie"]: row for row in read_table(output, SCREENPLAY_PAGES).to_pylist()}
    assert sorted(rows) == ["Alien", "The Casino"]
    assert rows["Alien"]["text"] == texts["Alien"] and rows["The Casino"]["text"] == texts["Casino"]
    assert rows["The Casino"]["url"] == f"{site.url}/scripts/Casino,-The.html"
    said = "\n".join(warnings(log))
    assert "Placeholder.html: no screenplay text" in said and "Missing-Film.html: no page" in said
    assert len(part_files(tmp_path / "crawls" / "parts" / "imsdb")) == 1  # 2 units < crawl.batch_size
