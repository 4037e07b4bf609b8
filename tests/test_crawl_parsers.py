"""The page parsers alone: real TVTropes pages and IMDb search snapshot (shared data), hand-built
IMDb quote pages (tests/fixtures/imdb, see tests/fixtures/README.md), and malformed pages."""
import html as html_text
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FIXTURES
from crawlers.imdb import (TitleHit, choose_title, parse_next_data_quotes, parse_quote_text, parse_quotes_page,
                           parse_title_search)
from crawlers.imsdb import page_name, parse_script_page
from crawlers.pages import page_text
from crawlers.sources import imsdb_page_names, parse_movie_list, trope_movies, trope_pages
from crawlers.tvtropes import parse_laconic_page, parse_trope_page
from flows.lib.errors import PipelineInputError

MAIN = "https://tvtropes.org/pmwiki/pmwiki.php/Main/"


def tvtropes_page(shared_data, name: str) -> str:
    path = shared_data / "html" / "tvtropes" / f"tvtropes_{name}.html"
    return page_text(path.read_bytes(), "cp1252", str(path))  # what Scrapy makes of iso-8859-1


def fixture(*parts: str) -> str:
    return FIXTURES.joinpath(*parts).read_text(encoding="utf-8")


# --- TVTropes -------------------------------------------------------------------------------


def test_trope_page_description_stops_before_examples_and_drops_page_quote(shared_data):
    article = parse_trope_page(tvtropes_page(shared_data, "Main_NotWearingTights"), MAIN + "NotWearingTights")
    lines = article.description.split("\n")
    assert lines[0].startswith("These superheroes just aren't called superheroes.")
    assert lines[-1].startswith("Compare with Scifi Ghetto")
    assert [line.split(":")[0] for line in lines if ":" in line[:20]] == ["Aesthetics", "Genre Shift", "Marketing", "Budget", "Legal"]
    text = article.description
    assert "Darker Than Black" not in text  # first example, inside the folders
    assert "I ain't wearing no tights" not in text  # the page quote
    assert "Advertisement" not in text and "looks about right" not in text  # ad, image caption
    assert article.laconic_url == "https://tvtropes.org/pmwiki/pmwiki.php/Laconic/NotWearingTights"


@pytest.mark.parametrize("name, first_words, paragraphs", [
    ("Literature_AkataWitch", "2011 book by Nnedi Okorafor.", 3),
    ("Literature_AhrimanTrilogy", "The Ahriman Trilogy is a series of young adult", 3),
])
def test_work_pages_keep_text_around_the_image_and_have_no_laconic(shared_data, name, first_words, paragraphs):
    article = parse_trope_page(tvtropes_page(shared_data, name), MAIN + name)
    assert article.description.startswith(first_words)
    assert len(article.description.split("\n")) == paragraphs
    assert article.laconic_url is None  # only a "create Laconic page" link (?action=edit)


def test_cp1252_references_in_an_iso_8859_1_page_become_punctuation(shared_data):
    description = parse_trope_page(tvtropes_page(shared_data, "Literature_AkataWitch"), MAIN).description
    assert "can\u2019t play soccer" in description and "\u201cfree agent" in description
    assert not any("\x80" <= char <= "\x9f" for char in description)


def test_laconic_page():
    assert parse_laconic_page(fixture("tvtropes", "Laconic_NotWearingTights.html"), "laconic") == \
        "Superheroes in all but name and costume."


QUIET_COMPETENCE = [
    "A character who never boasts and rarely speaks, yet is the one everybody calls when something has to work.",
    "Typical signs include:",
    "Finishing the task before anyone notices it was started.",
    "Answering praise with a shrug.",
    "Compare the louder Badass Boast.",
]
ARTICLE_OPENING = re.compile(r'<div id="main-article"[^>]*>')


def with_notice(page: str, notice: str) -> str:
    """The page with `notice` (markup) as the first thing of its main article."""
    return ARTICLE_OPENING.sub(lambda opening: opening.group(0) + notice, page, count=1)


def test_description_after_a_leading_heading_notice_keeps_list_drops_footnote():
    # tests/fixtures/layouts/Main_RedirectNotice.html: an <h2> redirect notice and comments
    # before the image, the page quote and the prose; a bulleted list between paragraphs, a
    # hidden footnote, then <hr>, an ad, "Examples:" and the folders.
    article = parse_trope_page(fixture("layouts", "Main_RedirectNotice.html"), MAIN + "QuietCompetence")
    assert article.description.split("\n") == QUIET_COMPETENCE
    assert article.laconic_url == "https://tvtropes.org/pmwiki/pmwiki.php/Laconic/QuietCompetence"


@pytest.mark.parametrize("heading", ["Examples:", "Example subpages:", "Subtropes:", "Other examples:", "Examples"])
@pytest.mark.parametrize("rule", ["<hr>", ""])
@pytest.mark.parametrize("folders", [True, False])
def test_description_ends_at_the_examples_heading_or_the_rule_before_it(heading, rule, folders):
    page = fixture("layouts", "Main_RedirectNotice.html").replace("<h2>Examples:</h2>", f"<h2>{heading}</h2>")
    page = page.replace('</p><hr><div class="proper-ad-unit', f'</p>{rule}<div class="proper-ad-unit')
    if not folders:  # examples as a plain list
        page = re.sub(r'<p></p><div class="folderlabel".*?</div>', "", page, flags=re.S)
    assert parse_trope_page(page, MAIN).description.split("\n") == QUIET_COMPETENCE


def test_text_between_a_rule_and_the_examples_heading_is_not_description():
    page = fixture("layouts", "Main_RedirectNotice.html").replace(
        "<h2>Examples:</h2>", "<p>Sorted by medium.</p><h2>Examples:</h2>")
    assert parse_trope_page(page, MAIN).description.split("\n") == QUIET_COMPETENCE


NOTICE_WORDS = st.text(st.characters(whitelist_categories=("L", "N", "P", "Zs")), min_size=1, max_size=30)


@st.composite
def notices(draw) -> str:
    """Markup a trope page may open its article with: an <h2> notice, comments, a rule."""
    title = html_text.escape(draw(NOTICE_WORDS))
    sentence = draw(st.sampled_from([
        f"\"{title}\" redirects here.",
        f"{title} redirects here. For the other meaning, see {html_text.escape(draw(NOTICE_WORDS))}.",
        f"Not to be confused with {title}.",
    ]))
    comments = "".join(f"<!-- {html_text.escape(draw(NOTICE_WORDS)).replace('-', ' ')} -->\n"
                       for _ in range(draw(st.integers(0, 2))))
    return f"<h2>{sentence}</h2>\n{comments}" + draw(st.sampled_from(["", "<hr>"]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(notice=notices(), name=st.sampled_from(["Main_NotWearingTights", "Literature_AkataWitch",
                                               "Literature_AhrimanTrilogy", "fixture"]))
def test_a_leading_heading_notice_does_not_change_the_description(shared_data, notice, name):
    if name == "fixture":  # the hand-built page, its own notice taken out
        page = re.sub(r"<h2>[^<]*redirects here\.</h2>", "", fixture("layouts", "Main_RedirectNotice.html"))
    else:
        page = tvtropes_page(shared_data, name)
    assert parse_trope_page(with_notice(page, notice), MAIN).description == parse_trope_page(page, MAIN).description


# --- IMDb -----------------------------------------------------------------------------------


def test_title_search_snapshot_lists_fifty_titles_in_order(shared_data):
    html = (shared_data / "html" / "imdb" / "imdb_advanced_search_dom_snapshot_2025.html").read_text(encoding="utf-8")
    hits = parse_title_search(html, "search")
    assert len(hits) == 50 and len({hit.imdb_id for hit in hits}) == 50
    assert hits[0] == TitleHit("tt3581920", "The Last of Us", 2023)
    assert all(hit.imdb_id.startswith("tt") and hit.year for hit in hits)
    assert any(hit.title == "Navy CIS" for hit in hits)  # localized title kept as shown


def test_choose_title_prefers_same_title_and_year_then_year_alone():
    hits = parse_title_search(fixture("imdb", "search_the_matrix.html"), "search")
    assert choose_title(hits, "The Matrix", [1999]).imdb_id == "tt0133093"
    assert choose_title(hits, "Making 'The Matrix'", [1999]).imdb_id == "tt0274085"
    assert choose_title(hits, "Die Matrix", [2002]).imdb_id == "tt0234215"  # no title match: first of 2001-2003
    assert choose_title(hits, "The Matrix", [1950]) is None
    remakes = [TitleHit("tt2", "Scarface", 1983), TitleHit("tt1", "Scarface", 1932)]
    assert choose_title(remakes, "Scarface", [1932, 1983]).imdb_id == "tt2"  # the more popular one


def test_next_data_quotes_in_order_with_speakers_and_directions():
    quotes = parse_quotes_page(fixture("imdb", "quotes_next_data.html"), "quotes")
    assert [quote.quote_id for quote in quotes] == ["qt9000001", "qt9000002", "qt9000003", "qt9000004"]
    first = quotes[0].lines
    assert [(line.speaker, line.text, line.directions) for line in first] == [
        ("Agent Smith", "Punctuality is a courtesy, Mr. Anderson.", ["straightening his tie"]),
        ("Neo", "Then I must be very rude.", []),
    ]
    stage, morpheus = quotes[1].lines
    assert (stage.speaker, stage.text, stage.directions) == ("", "", ["first lines"])
    assert (morpheus.text, morpheus.directions) == ("The phone is ringing. Answer it.", ["pause"])
    structured = quotes[3].lines  # the GraphQL shape: characters / text / stageDirection
    assert [(line.speaker, line.text, line.directions) for line in structured] == [
        ("", "", ["interrogation room"]),
        ("Agent Smith", "You will talk. They all talk eventually.", ["taps the table"]),
        ("Neo and Trinity", "No.", ["together"]),
    ]


def test_legacy_quote_list_markup():
    quotes = parse_quotes_page(fixture("imdb", "quotes_legacy.html"), "quotes")
    assert [quote.quote_id for quote in quotes][:2] == ["qt9100001", "qt9100002"]
    brainard = quotes[0].lines[0]
    assert (brainard.speaker, brainard.directions) == ("Professor Brainard", ["to Weebo, holding up a green blob"])
    assert brainard.text == "It moves. It bounces. It forgets nothing, which makes one of us."
    assert [line.speaker for line in quotes[1].lines] == ["", "Sara Jean Reynolds", "Professor Brainard"]
    assert quotes[1].lines[2].text == "Full of what? Oh. Of people."
    # A quote shown without an id gets one from its content: stable across runs.
    assert quotes[2].quote_id.startswith("qh") and quotes[2].lines[0].speaker == "Professor Brainard"
    assert parse_quotes_page(fixture("imdb", "quotes_legacy.html"), "quotes")[2].quote_id == quotes[2].quote_id


@pytest.mark.parametrize("raw, expected", [
    ("Neo: Whoa.", ("Neo", "Whoa.", [])),
    ("[Neo falls] [silence]", ("", "", ["Neo falls", "silence"])),
    ("[Title card: 1999] Later.", ("", "Later.", ["Title card: 1999"])),
    ("Dr. Evil: [pinky to mouth] One million dollars.", ("Dr. Evil", "One million dollars.", ["pinky to mouth"])),
    ("   ", None),
])
def test_quote_line_text(raw, expected):
    line = parse_quote_text(raw)
    assert (line and (line.speaker, line.text, line.directions)) == expected


def test_next_data_without_quotes_falls_back_to_html_then_fails():
    page = '<html><body><script id="__NEXT_DATA__" type="application/json">{"props": {}}</script></body></html>'
    with pytest.raises(PipelineInputError, match="no quotes on the page"):
        parse_quotes_page(page, "https://www.imdb.com/title/tt1/quotes/")
    assert parse_next_data_quotes(json.dumps([{"id": "qt0000001", "lines": "not a list"}]), "u") == []


# --- IMSDb ----------------------------------------------------------------------------------


def test_script_page_keeps_layout(shared_data):
    script = (shared_data / "imsdb_scripts" / "scripts" / "Alien.txt").read_text(encoding="utf-8")[:3000]
    page = f"<html><body><table><tr><td class='scrtext'><pre>{script.replace('&', '&amp;').replace('<', '&lt;')}</pre></td></tr></table></body></html>"
    assert parse_script_page(page, "alien") == script


def test_imsdb_page_names(shared_data):
    assert page_name("The Departed") == "Departed,-The"
    assert page_name("Harold & Kumar Go to White Castle") == "Harold-and-Kumar-Go-to-White-Castle"
    assert page_name("Mission: Impossible") == "Mission-Impossible"
    names = imsdb_page_names(shared_data, ["L.A. Confidential", "Sunset Boulevard", "Alien", "Not A Film"])
    assert names == {"L.A. Confidential": "L.A.-Confidential",  # the mirror's "L" was cut at the '.'
                     "Sunset Boulevard": "Sunset-Blvd", "Alien": "Alien", "Not A Film": "Not-A-Film"}


# --- what to crawl --------------------------------------------------------------------------


def test_crawl_lists_from_shared_data(shared_data):
    assert len(trope_pages(shared_data)) == 72
    movies = trope_movies(shared_data)
    assert len(movies) == 383 and all(movie.years for movie in movies)
    assert {movie.title: movie.years for movie in movies}["Scarface"] == (1932, 1983)


def test_movie_list_argument():
    movies = parse_movie_list("The Matrix (1999)=tt0133093; Flubber (1997) ;Alien")
    assert [(m.title, m.years, m.imdb_id) for m in movies] == [
        ("The Matrix", (1999,), "tt0133093"), ("Flubber", (1997,), None), ("Alien", (), None)]


# --- malformed pages: one-line PipelineInputError, never another exception -----------------


@pytest.mark.parametrize("body, encoding, message", [
    (b"", "utf-8", "empty page"),
    (b"  \n ", "utf-8", "empty page"),
    ("caf\u00e9".encode("latin-1") + b"<html></html>", "utf-8", "not valid utf-8 text at byte 3"),
    (b"<html></html>", "x-no-such-charset", "unknown charset"),
    (b"\x00\x01", None, "not a text page"),
])
def test_undecodable_pages(body, encoding, message):
    with pytest.raises(PipelineInputError, match=message):
        page_text(body, encoding, "page")


def test_iso_8859_1_bytes_cp1252_lacks_still_decode():
    assert page_text(b"<p>\x81</p>", "cp1252", "page") == "<p>\x81</p>"


@pytest.mark.parametrize("parser", [parse_trope_page, parse_laconic_page, parse_quotes_page, parse_title_search, parse_script_page])
@pytest.mark.parametrize("html, message", [
    ("<html><body><p>Nothing here</p></body></html>", "no div#main-article|no quotes|no title results|no screenplay"),
    ("<html><body><div id='main-article'><p>Cut off he", "truncated page"),
    ("<?xml version='1.0' encoding='utf-8'?><html></html>", "not parseable as HTML"),
])
def test_malformed_pages_raise_one_line_errors(parser, html, message):
    with pytest.raises(PipelineInputError, match=message) as error:
        parser(html, "https://example.org/page")
    assert "\n" not in str(error.value) and "https://example.org/page" in str(error.value)


def test_truncated_real_pages_are_refused(shared_data):
    page = tvtropes_page(shared_data, "Main_NotWearingTights")
    with pytest.raises(PipelineInputError, match="truncated"):
        parse_trope_page(page[: len(page) // 3], MAIN)
    with pytest.raises(PipelineInputError, match="no text before the examples"):
        parse_trope_page("<html><body><div id='main-article'><hr><h2>Examples</h2></div></body></html>", MAIN)
