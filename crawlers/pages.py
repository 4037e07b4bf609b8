"""What every page parser shares: strict decoding, a guarded lxml parse, and block-aware text.

Every failure is a PipelineInputError naming the page, so that a spider can log one warning
and yield nothing instead of crashing the crawl.
"""
from __future__ import annotations

from collections.abc import Callable

import lxml.etree
import lxml.html

from flows.lib.errors import PipelineInputError

# Windows code page 1252 for the C1 controls U+0080..U+009F: old pages declare iso-8859-1 yet
# write `&#146;` meaning the cp1252 apostrophe (HTML5 decodes it so; lxml does not).
_C1_AS_CP1252 = {
    code: bytes([code]).decode("cp1252")
    for code in range(0x80, 0xA0)
    if code not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)  # undefined in cp1252: left alone
}

# Elements whose start and end break a line of text.
BLOCK_TAGS = frozenset(
    "address article aside blockquote br dd div dl dt figcaption footer h1 h2 h3 h4 h5 h6 header "
    "hr li ol p pre section table tbody td th tr ul".split()
)
_UNREADABLE_TAGS = frozenset({"script", "style", "noscript", "img", "svg", "select", "button"})


def page_text(body: bytes, encoding: str | None, url: str) -> str:
    """Decode a page strictly: bytes that are not valid in the declared charset mean the page
    is damaged or mislabelled, and its text would be wrong. No encoding: not a text page."""
    if encoding is None:
        raise PipelineInputError(f"{url}: not a text page")
    if not body.strip():
        raise PipelineInputError(f"{url}: empty page")
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as error:
        # Scrapy reads a declared iso-8859-1 as cp1252, which lacks five bytes latin-1 has.
        if encoding.lower().replace("-", "") in ("cp1252", "windows1252"):
            return body.decode("latin-1")
        raise PipelineInputError(f"{url}: not valid {encoding} text at byte {error.start} (wrong charset?)") from error
    except LookupError as error:
        raise PipelineInputError(f"{url}: unknown charset {encoding!r}") from error


def html_root(html: str, url: str, *, complete: bool = True) -> lxml.html.HtmlElement:
    """Parse an HTML document; with `complete`, refuse one cut off before its `</html>`."""
    if not html.strip():
        raise PipelineInputError(f"{url}: empty page")
    if complete and "</html>" not in html[-4096:].lower():
        raise PipelineInputError(f"{url}: truncated page (no closing </html>)")
    try:
        return lxml.html.document_fromstring(html)
    except (ValueError, lxml.etree.ParserError) as error:
        raise PipelineInputError(f"{url}: not parseable as HTML ({error})") from error


def html_fragment(html: str, url: str) -> lxml.html.HtmlElement:
    """Parse a fragment (an HTML string embedded in JSON) under one wrapper element."""
    try:
        return lxml.html.fragment_fromstring(html, create_parent="div")
    except (ValueError, lxml.etree.ParserError) as error:
        raise PipelineInputError(f"{url}: embedded HTML not parseable ({error})") from error


def clean(text: str) -> str:
    """One line of display text: cp1252 fixes, whitespace collapsed."""
    return " ".join(text.translate(_C1_AS_CP1252).split())


def has_class(element: lxml.html.HtmlElement, *names: str) -> bool:
    classes = (element.get("class") or "").split()
    return any(name in classes for name in names)


def block_lines(
    element: lxml.html.HtmlElement,
    *,
    skip: Callable[[lxml.html.HtmlElement], bool] = lambda _: False,
    stop: Callable[[lxml.html.HtmlElement], bool] = lambda _: False,
) -> list[str]:
    """The text under `element`, one string per visual block (paragraph, list item, ...),
    in document order. Subtrees where `skip` holds are left out (their tail text is kept);
    reading ends at the first element where `stop` holds."""
    pieces: list[str] = []
    # Iterative walk (deep documents must not hit the recursion limit): each stack entry is
    # an element to open, or the tail text / block break left to emit after one is closed.
    stack: list[lxml.html.HtmlElement | str] = [child for child in reversed(element)]
    if element.text:
        pieces.append(element.text)
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            pieces.append(node)
            continue
        if not isinstance(node.tag, str):  # comment or processing instruction
            if node.tail:
                stack.append(node.tail)
            continue
        if stop(node):
            break
        if node.tail:
            stack.append(node.tail)
        if node.tag in _UNREADABLE_TAGS or skip(node):
            continue
        block = node.tag in BLOCK_TAGS
        if block:
            stack.append("\n")
        stack.extend(reversed(node))
        if node.text:
            stack.append(node.text)
        if block:
            pieces.append("\n")
    return [line for line in (clean(part) for part in "".join(pieces).split("\n")) if line]
