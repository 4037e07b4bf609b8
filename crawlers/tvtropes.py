"""TVTropes pages -> trope description and Laconic one-liner.

Description: the text of `div#main-article` up to the examples: the `<hr>` just before the
examples heading ("Examples:", "Example subpages:", "Subtropes:", a work page's "X provides
examples of:") or the first example folder, whichever comes first; with neither on the page, the
first `<hr>`. Left out: headings (a page may open with an `<h2>` notice such as "X redirects
here." before the image), the page image and its caption, the page quote (`div.indent`), hidden
footnotes, comments and ads. Paragraphs and list items (bulleted lists between paragraphs
included) become lines joined by "\\n", like the bundled trope_descriptions.jsonl.

Laconic: taken from the trope's own `Laconic/<Title>` page, and only when the main page links
to it as an existing subpage (a `subpage-link` without `?action=edit`). Pages without one get
an empty laconic and cost no second request; guessing the URL would fetch many 404s.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import lxml.html

from crawlers.pages import block_lines, has_class, html_root
from flows.lib.errors import PipelineInputError

_LEFT_OUT = ("quoteright", "quoteleft", "acaptionright", "acaptionleft", "indent", "notelabel",
             "inlinefolder", "proper-ad-unit", "square_ad", "ad")
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_FOLDERS = ("folderlabel", "folder")
# A notice heading is a sentence ("X redirects here."); an examples heading is a label.
_EXAMPLES_HEADING = re.compile(
    r"^(?:(?:other|more|further)\s+)?(?:examples?|example\s+subpages|sub-?tropes)\s*:?$"  # trope pages
    r"|\b(?:examples|tropes)\b.*:$",  # work pages: "X provides examples of:", "X uses the following tropes:"
    re.IGNORECASE,
)


@dataclass(frozen=True)
class TropeArticle:
    description: str
    laconic_url: str | None  # absolute URL of the trope's Laconic page, when the page has one


def _left_out(element: lxml.html.HtmlElement) -> bool:
    return element.tag in _HEADINGS or has_class(element, *_LEFT_OUT) or element.get("isnote") == "true"


def _examples_start(element: lxml.html.HtmlElement) -> bool:
    if has_class(element, *_FOLDERS):
        return True
    return element.tag in _HEADINGS and bool(_EXAMPLES_HEADING.search(" ".join(element.text_content().split())))


def _description_end(article: lxml.html.HtmlElement) -> lxml.html.HtmlElement | None:
    """The element where the description stops: the `<hr>` before the examples when one leads
    to them, else the examples' first heading or folder; None when the article has no examples."""
    last_rule = None
    for element in article.iter():
        if not isinstance(element.tag, str) or (_left_out(element) and not _examples_start(element)):
            continue  # notices and other headings, ads: neither examples nor a rule before them
        if element.tag == "hr":
            last_rule = element
        elif _examples_start(element):
            return last_rule if last_rule is not None and _article_text(article, last_rule) else element
    return None


def _article_text(article: lxml.html.HtmlElement, end: lxml.html.HtmlElement | None) -> list[str]:
    return block_lines(article, skip=_left_out, stop=lambda element: element is end)


def _article_lines(root: lxml.html.HtmlElement, url: str) -> list[str]:
    articles = root.xpath('//div[@id="main-article"]')
    if not articles:
        raise PipelineInputError(f"{url}: no div#main-article (not a TVTropes article page)")
    article = articles[0]
    end = _description_end(article)
    if end is None:  # no examples heading or folder: the first rule after the text ends it
        end = next((rule for rule in article.iter("hr") if _article_text(article, rule)), None)
    lines = _article_text(article, end)
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
