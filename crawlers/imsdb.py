"""IMSDb pages -> screenplay text, and CMU movie titles -> IMSDb page names.

A script page (`/scripts/<Name>.html`) holds the screenplay in `td.scrtext` > `<pre>`; the
text is kept as laid out (indentation tells cues from action lines downstream), with only
line ends normalized. A page whose `<pre>` is missing or nearly empty has no script.
"""
from __future__ import annotations

from crawlers.pages import html_root
from flows.lib.errors import PipelineInputError

MIN_SCRIPT_CHARS = 200  # below this a <pre> is a placeholder, not a screenplay
_ARTICLES = ("The", "A", "An")


def parse_script_page(html: str, url: str) -> str:
    root = html_root(html, url)
    blocks = root.xpath('//td[contains(@class, "scrtext")]//pre') or root.xpath("//pre")
    texts = ["".join(block.itertext()) for block in blocks]
    text = max(texts, key=len, default="").replace("\r\n", "\n").replace("\r", "\n")
    if len(text.strip()) < MIN_SCRIPT_CHARS:
        raise PipelineInputError(f"{url}: no screenplay text in a <pre> block")
    return text


def page_name(title: str) -> str:
    """IMSDb's page name for a title: words joined by '-', '&' spelled 'and', colons and a
    final '.' dropped, a leading article moved to the end ('The Departed' -> 'Departed,-The'),
    as in most shared/data/imsdb_scripts file names."""
    words = title.replace("&", "and").replace(":", " ").replace("?", "%3f").rstrip(".").split()
    if len(words) > 1 and words[0] in _ARTICLES:
        words = [*words[1:-1], words[-1] + ",", words[0]]
    return "-".join(words)
