"""IMDb pages -> title ids and quotes.

Title search (`/search/title/?title=...`): the result list markup of the advanced search page
(`li.ipc-metadata-list-summary-item`, see shared/data/html/imdb/). `choose_title` keeps the
first hit, in IMDb's popularity order, whose title and year fit the CMU movie.

Quotes (`/title/<tt>/quotes/`), two layouts:
- the current Next.js page: its `<script id="__NEXT_DATA__">` JSON holds the quotes as objects
  with a `qt` id and either structured `lines` (`characters[].character`, `text`,
  `stageDirection`) or an HTML body (`displayableArticle.body.plaidHtml`, `<li>` per line);
  found wherever they sit in the JSON, in document order, so a moved subtree still parses;
- the older HTML list: `div.quote` > `div.sodatext` > one `<p>` per line, the speaker in
  `span.character` (or a `/name/` link), directions in `span.fine`; the rendered
  `div.ipc-html-content-inner-div` bodies of later pages read the same way.
A line is `Speaker: text [direction] text`; every bracketed part becomes a direction.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field

import lxml.html

from crawlers.pages import clean, has_class, html_fragment, html_root
from flows.lib.errors import PipelineInputError

_QUOTE_ID = re.compile(r"qt\d{5,}")
_TITLE_ID = re.compile(r"/title/(tt\d{5,})")
_BRACKETED = re.compile(r"\[([^\[\]]*)\]")
_SPEAKER_PREFIX = re.compile(r"^([^:\[\]]{1,60}?):\s*(.*)$", re.S)
_RANK_PREFIX = re.compile(r"^\d+\.\s+")
_YEAR = re.compile(r"\b(\d{4})\b")
_NEXT_DATA = '//script[@id="__NEXT_DATA__"]/text()'


@dataclass(frozen=True)
class TitleHit:
    imdb_id: str
    title: str
    year: int | None


@dataclass(frozen=True)
class QuoteLine:
    speaker: str  # empty for a pure stage direction
    text: str
    directions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Quote:
    quote_id: str
    lines: list[QuoteLine]


# --- title search -------------------------------------------------------------------------


def parse_title_search(html: str, url: str) -> list[TitleHit]:
    """An advanced title search result page -> its hits in page order."""
    root = html_root(html, url)
    hits = []
    for item in root.xpath('//li[contains(@class, "ipc-metadata-list-summary-item")]'):
        hrefs = item.xpath('.//a[contains(@class, "ipc-title-link-wrapper")]/@href')
        match = _TITLE_ID.search(hrefs[0]) if hrefs else None
        if not match:
            continue
        title = clean("".join(item.xpath('.//*[contains(@class, "ipc-title__text")][1]//text()')))
        years = item.xpath('.//*[contains(@class, "dli-title-metadata-item")][1]//text()')
        year = _YEAR.search(" ".join(years))
        hits.append(TitleHit(match.group(1), _RANK_PREFIX.sub("", title), int(year.group(1)) if year else None))
    if not hits:
        raise PipelineInputError(f"{url}: no title results")
    return hits


def normalize_title(title: str) -> str:
    words = re.sub(r"[^\w\s]", " ", title.lower().replace("&", " and ")).split()
    if words and words[0] in ("the", "a", "an"):
        words = words[1:]
    return " ".join(words)


def choose_title(hits: list[TitleHit], title: str, years: list[int]) -> TitleHit | None:
    """The first (most popular) hit with the same title released in one of `years` (±1: the
    CMU date is often the festival or foreign release); failing that, the first hit from one of
    those years, since IMDb may list the film under another title (a German one, say)."""
    def year_fits(hit: TitleHit) -> bool:
        return not years or (hit.year is not None and any(abs(hit.year - year) <= 1 for year in years))

    wanted = normalize_title(title)
    fitting = [hit for hit in hits if year_fits(hit)]
    same_title = [hit for hit in fitting if normalize_title(hit.title) == wanted]
    return (same_title or fitting or [None])[0]


# --- quotes ---------------------------------------------------------------------------------


def parse_quote_text(raw: str, speaker: str = "") -> QuoteLine | None:
    """One displayed line -> speaker, text and bracketed directions; None if it says nothing.
    `speaker` is the name the markup marks as such (a link); without one, a short `Name:`
    prefix is taken as the speaker."""
    raw = clean(raw)
    if speaker and raw.startswith(speaker) and raw[len(speaker):].lstrip().startswith(":"):
        rest = raw[len(speaker):].lstrip()[1:]
    else:
        match = _SPEAKER_PREFIX.match(raw)
        speaker, rest = (match.group(1).strip(), match.group(2)) if match else ("", raw)
    directions = [clean(part) for part in _BRACKETED.findall(rest) if clean(part)]
    text = clean(_BRACKETED.sub(" ", rest))
    if not (text or directions):
        return None
    return QuoteLine(speaker, text, directions)


def _speaker_mark(line: lxml.html.HtmlElement) -> str:
    marked = line.xpath('.//*[contains(@class, "character")]//text()') or line.xpath(
        './/a[contains(@href, "/name/") or contains(@href, "/character/")][1]//text()'
    )
    return clean("".join(marked))


def _quote_lines(container: lxml.html.HtmlElement) -> list[QuoteLine]:
    """A quote body: one `<li>` (current) or `<p>` (older pages) per line."""
    elements = container.xpath(".//li") or container.xpath(".//p") or [container]
    lines = [parse_quote_text(element.text_content(), _speaker_mark(element)) for element in elements]
    return [line for line in lines if line is not None]


def _content_id(lines: list[QuoteLine]) -> str:
    """A stable id for a quote shown without one: a hash of what it says."""
    text = "\n".join(f"{line.speaker}: {line.text} {line.directions}" for line in lines)
    return "qh" + hashlib.sha1(text.encode()).hexdigest()[:12]


def _structured_lines(lines: list) -> list[QuoteLine]:
    parsed = []
    for line in lines:
        if not isinstance(line, dict):
            continue
        characters = line.get("characters") if isinstance(line.get("characters"), list) else []
        names = [c.get("character") for c in characters if isinstance(c, dict)]
        speaker = " and ".join(clean(name) for name in names if isinstance(name, str) and clean(name))
        text = line.get("text") if isinstance(line.get("text"), str) else ""
        quote_line = parse_quote_text(text) if text else None
        direction = line.get("stageDirection")
        directions = ([clean(direction)] if isinstance(direction, str) and clean(direction) else [])
        directions += quote_line.directions if quote_line else []
        said = quote_line.text if quote_line else ""
        if said or directions:
            parsed.append(QuoteLine(speaker, said, directions))
    return parsed


def _embedded_html(node: dict) -> str | None:
    article = node.get("displayableArticle")
    body = article.get("body") if isinstance(article, dict) else None
    html = body.get("plaidHtml") if isinstance(body, dict) else node.get("htmlContent")
    return html if isinstance(html, str) else None


def parse_next_data_quotes(payload: str, url: str) -> list[Quote]:
    """The `__NEXT_DATA__` JSON of a quotes page -> its quotes in page order."""
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError) as error:
        raise PipelineInputError(f"{url}: __NEXT_DATA__ is not valid JSON ({type(error).__name__})") from error
    quotes: dict[str, Quote] = {}
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(reversed(node))
            continue
        if not isinstance(node, dict):
            continue
        quote_id = node.get("id")
        html = _embedded_html(node)
        if isinstance(quote_id, str) and _QUOTE_ID.fullmatch(quote_id) and (isinstance(node.get("lines"), list) or html):
            if isinstance(node.get("lines"), list):
                lines = _structured_lines(node["lines"])
            else:
                lines = _quote_lines(html_fragment(html, url))
            if lines and quote_id not in quotes:
                quotes[quote_id] = Quote(quote_id, lines)
            continue
        stack.extend(reversed(list(node.values())))
    return list(quotes.values())


def parse_quote_list_html(root: lxml.html.HtmlElement, url: str) -> list[Quote]:
    """Quotes in HTML markup (older list pages, or rendered quote bodies) in page order."""
    quotes: dict[str, Quote] = {}
    for body in root.xpath('//div[contains(@class, "sodatext") or contains(@class, "ipc-html-content-inner-div")]'):
        if not has_class(body, "sodatext", "ipc-html-content-inner-div"):
            continue
        lines = _quote_lines(body)
        if not lines:
            continue
        # The nearest element carrying a qt id (div.quote has it as id and data-item-id).
        ids = (value for element in (body, *body.iterancestors()) for value in (element.get("id"), element.get("data-item-id")))
        quote_id = next((value for value in ids if value and _QUOTE_ID.fullmatch(value)), None) or _content_id(lines)
        quotes.setdefault(quote_id, Quote(quote_id, lines))
    return list(quotes.values())


def quote_rows(quotes: list[Quote], imdb_id: str, movie: str, url: str) -> list[dict]:
    """Quotes of one page -> rows of the QUOTES table, in page order."""
    return [{"quote_id": quote.quote_id, "imdb_id": imdb_id, "movie": movie, "position": position,
             "lines": [asdict(line) for line in quote.lines], "url": url} for position, quote in enumerate(quotes)]


def parse_quotes_page(html: str, url: str) -> list[Quote]:
    """A `/title/<tt>/quotes/` page, either layout -> its quotes in page order."""
    root = html_root(html, url)
    payload = root.xpath(_NEXT_DATA)
    quotes = parse_next_data_quotes("".join(payload), url) if payload else []
    quotes = quotes or parse_quote_list_html(root, url)
    if not quotes:
        raise PipelineInputError(f"{url}: no quotes on the page")
    return quotes
