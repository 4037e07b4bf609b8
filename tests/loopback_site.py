"""A web site on 127.0.0.1 for crawl tests: http.server in a thread, on a free port, serving
fixed pages and logging every request it gets. Nothing here contacts any other address."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml

from flows import PROJECT_ROOT


@dataclass
class Page:
    body: bytes = b""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


class LoopbackSite:
    """`pages` maps a path to a Page, or to a function of the query ({name: value}) that
    returns one. Unknown paths are 404; every response waits `delay` seconds first."""

    def __init__(self, pages: dict[str, Page | Callable[[dict[str, str]], Page]], delay: float = 0.0, robots: str = "User-agent: *\nDisallow: /private/\n"):
        self.pages = {"/robots.txt": Page(robots.encode(), content_type="text/plain"), **pages}
        self.delay = delay
        self.requests: list[tuple[str, str]] = []  # (Host header, path with query)
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                site.requests.append((self.headers.get("Host", ""), self.path))
                time.sleep(site.delay)
                url = urlsplit(self.path)
                page = site.pages.get(url.path, Page(b"not found", 404))
                if callable(page):
                    page = page({name: values[0] for name, values in parse_qs(url.query).items()})
                self.send_response(page.status)
                self.send_header("Content-Type", page.content_type)
                self.send_header("Content-Length", str(len(page.body)))
                for name, value in page.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                try:
                    self.wfile.write(page.body)
                except (BrokenPipeError, ConnectionResetError):  # the crawler was killed meanwhile
                    pass

            def log_message(self, *args):  # keep test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LoopbackSite:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def paths(self) -> list[str]:
        return [path for _, path in self.requests]


def crawl_params(tmp_path: Path, shared_data: Path, base_url: str, **crawl) -> Path:
    """A params.yaml for a crawl into tmp_path against `base_url`: no delays, no throttle."""
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["data"].update(
        root=str(shared_data),
        quotes=str(tmp_path / "crawls" / "quotes.parquet"),
        crawled_tropes=str(tmp_path / "crawls" / "trope_pages.parquet"),
        crawled_screenplays=str(tmp_path / "crawls" / "screenplay_pages.parquet"),
    )
    params["crawl"].update(
        work_dir=str(tmp_path / "crawls"),
        base_urls={name: base_url for name in params["crawl"]["base_urls"]},
        download_delay=0,
        autothrottle=False,
        concurrent_requests_per_domain=4,
        retry_times=0,
        **crawl,
    )
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path
