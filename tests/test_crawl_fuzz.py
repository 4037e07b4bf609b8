"""Fuzzing the page parsers: 1,000 malformed inputs each (real pages cut, spliced and salted with
markup fragments, plus made-up HTML and JSON). The only exception allowed is PipelineInputError,
in one line; whatever parses must have the promised shape."""
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FIXTURES, SHARED_DATA
from crawlers.imdb import Quote, parse_next_data_quotes, parse_quotes_page
from crawlers.tvtropes import TropeArticle, parse_trope_page
from flows.lib.errors import PipelineInputError

FUZZ = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
URL = "https://example.org/fuzz"
FRAGMENTS = [
    '<div id="main-article">', "</div>", "<hr>", "<h2>Examples</h2>", '<div class="folderlabel">', "&#146;", "&#0;",
    "&#xD800;", "\x00", "\x0b", "\ufeff", "\ud800", "<?xml version='1.0' encoding='utf-8'?>", "<!--", "-->",
    "<![CDATA[", '<script id="__NEXT_DATA__" type="application/json">', "</script>", "</html>", "<html>", "{", "}",
    "[", "]", '"', '"id": "qt0000001", ', '"lines": [', '"plaidHtml": "<li>x</li>"', "null", "<li>", "</li>", "<p>",
    '<div class="sodatext">', '<span class="character">Neo</span>:', "[", "]", ":", "<ul>", "<" * 50, "&amp;" * 20,
    '<a class="subpage-link" href="/pmwiki/pmwiki.php/Laconic/X">', '<a class="subpage-link" href="javascript:x">',
    '<a class="subpage-link" href="http://[::1">', "<" + "div>" * 300,
]
JSON_KEYS = ["id", "lines", "characters", "character", "text", "stageDirection", "displayableArticle", "body",
             "plaidHtml", "htmlContent", "node", "edges", "props", "pageProps", "quotes"]


def page_texts() -> list[str]:
    tvtropes = sorted((SHARED_DATA / "html" / "tvtropes").glob("*.html"))
    return [path.read_bytes().decode("cp1252", errors="replace") for path in tvtropes]


@st.composite
def mutated(draw, pages: list[str]) -> str:
    """A page cut short, with spans dropped or repeated, and fragments or random text spliced in;
    half of them closed again, so that damage inside the document reaches the parser."""
    text = draw(st.sampled_from(pages))
    for _ in range(draw(st.integers(1, 5))):
        at = draw(st.integers(0, len(text)))
        operation = draw(st.sampled_from(["cut", "drop", "splice", "splice", "repeat"]))
        if operation == "cut":
            text = text[:at]
        elif operation == "drop":
            text = text[:at] + text[draw(st.integers(at, min(len(text), at + 5000))):]
        elif operation == "repeat":
            text = text[:at] + text[at:at + draw(st.integers(0, 3000))] * 2 + text[at:]
        else:
            text = text[:at] + draw(st.sampled_from(FRAGMENTS) | st.text(max_size=30)) + text[at:]
    return text + "</html>" * draw(st.booleans())


def made_up_html() -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=20), max_size=40).map("".join)


def json_values() -> st.SearchStrategy:
    leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=15) | \
        st.sampled_from(["qt0000001", "qt7654321", "<li>Neo: [x] hi</li>", "<ul><li>", "[", "]"])
    return st.recursive(leaves, lambda inner: st.lists(inner, max_size=4) |
                        st.dictionaries(st.sampled_from(JSON_KEYS) | st.text(max_size=5), inner, max_size=5), max_leaves=40)


def parses_or_refuses(parser, text: str):
    try:
        return parser(text, URL)
    except PipelineInputError as error:
        assert "\n" not in str(error) and URL in str(error)
        return None


def check_quotes(quotes) -> None:
    for quote in quotes or []:
        assert isinstance(quote, Quote) and quote.quote_id and quote.lines
        for line in quote.lines:
            assert isinstance(line.speaker, str) and isinstance(line.text, str)
            assert all(isinstance(direction, str) and direction for direction in line.directions)
            assert line.text or line.directions


@pytest.mark.slow
@FUZZ
@given(st.data())
def test_tvtropes_parser_survives_malformed_pages(data):
    text = data.draw(mutated(PAGES) | made_up_html())
    article = parses_or_refuses(parse_trope_page, text)
    if article is not None:
        assert isinstance(article, TropeArticle) and article.description.strip()
        assert "\n\n" not in article.description
        assert article.laconic_url is None or "/Laconic/" in article.laconic_url


@pytest.mark.slow
@FUZZ
@given(st.data())
def test_imdb_html_parser_survives_malformed_pages(data):
    check_quotes(parses_or_refuses(parse_quotes_page, data.draw(mutated(LEGACY) | made_up_html())))


@pytest.mark.slow
@FUZZ
@given(st.data())
def test_imdb_next_data_parser_survives_malformed_json(data):
    if data.draw(st.booleans()):  # made-up JSON, embedded in a page as IMDb does
        payload = json.dumps(data.draw(json_values())).replace("</", "<\\/")
        page = f'<html><body><script id="__NEXT_DATA__" type="application/json">{payload}</script></body></html>'
        check_quotes(parses_or_refuses(parse_quotes_page, page))
    else:  # the fixture's JSON text, damaged
        check_quotes(parses_or_refuses(parse_next_data_quotes, data.draw(mutated(NEXT_DATA))))


PAGES = page_texts()
LEGACY = [(FIXTURES / "imdb" / "quotes_legacy.html").read_text(encoding="utf-8")]
NEXT_DATA = re.findall(r'<script id="__NEXT_DATA__" type="application/json">(.*?)</script>',
                       (FIXTURES / "imdb" / "quotes_next_data.html").read_text(encoding="utf-8"), re.S)
