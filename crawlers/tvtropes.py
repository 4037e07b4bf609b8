"""TVTropes pages -> trope description and Laconic one-liner.

Description: the text of `div#main-article` up to the first example folder, `<hr>` or `<h2>`
(TVTropes puts "Examples:" behind one of those), without the page image and its caption, the
page quote (`div.indent`), footnotes and ads; paragraphs and list items become lines joined by
"\\n", like the bundled trope_descriptions.jsonl.

Laconic: taken from the trope's own `Laconic/<Title>` page, and only when the main page links
to it as an existing subpage (a `subpage-link` without `?action=edit`). Pages without one get
an empty laconic and cost no second request; guessing the URL would fetch many 404s.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import lxml.html

from crawlers.pages import block_lines, has_class, html_root
from flows.lib.errors import PipelineInputError

_LEFT_OUT = ("quoteright", "quoteleft", "acaptionright", "acaptionleft", "indent", "notelabel",
             "inlinefolder", "proper-ad-unit", "square_ad", "ad")
_EXAMPLES_START = ("folderlabel", "folder")


@dataclass(frozen=True)
class TropeArticle:
    description: str
    laconic_url: str | None  # absolute URL of the trope's Laconic page, when the page has one


def _left_out(element: lxml.html.HtmlElement) -> bool:
    return has_class(element, *_LEFT_OUT) or element.get("isnote") == "true"


def _examples_start(element: lxml.html.HtmlElement) -> bool:
    return element.tag in ("hr", "h2") or has_class(element, *_EXAMPLES_START)


def _article_lines(root: lxml.html.HtmlElement, url: str) -> list[str]:
    articles = root.xpath('//div[@id="main-article"]')
    if not articles:
        raise PipelineInputError(f"{url}: no div#main-article (not a TVTropes article page)")
    lines = block_lines(articles[0], skip=_left_out, stop=_examples_start)
    if not lines:
        raise PipelineInputError(f"{url}: main article has no text before the examples")
    return lines


def laconic_url(root: lxml.html.HtmlElement, url: str) -> str | None:
    for href in root.xpath('//a[contains(concat(" ", @class, " "), " subpage-link ")]/@href'):
        try:
            absolute = urljoin(url, href)
            parts = urlsplit(absolute)
        except ValueError:  # e.g. an unclosed IPv6 host: not a link to follow
            continue
        if "/Laconic/" in parts.path and "action=edit" not in parts.query:
            return absolute
    return None


def parse_trope_page(html: str, url: str) -> TropeArticle:
    """A trope's main page -> its description and the URL of its Laconic page (if any)."""
    root = html_root(html, url)
    return TropeArticle("\n".join(_article_lines(root, url)), laconic_url(root, url))


def parse_laconic_page(html: str, url: str) -> str:
    """A `Laconic/<Title>` page -> its one-line summary."""
    return " ".join(_article_lines(html_root(html, url), url))
