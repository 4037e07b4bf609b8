"""Parsing speed of the spiders' page parsers, against a bare lxml parse of the same pages.

    .venv/bin/python benchmarks/bench_spiders.py [--seconds 1] [--repeats 3] [--no-append]

For each site: pages/s of decode + parse (crawlers.pages.page_text, then the site's parser, as a
spider runs them) and of decode + `lxml.html.document_fromstring` alone; the ratio says what the
extraction costs on top of building the tree. Pages: the three real TVTropes pages and the IMDb
search snapshot (shared data), the hand-built IMDb quote pages (tests/fixtures/imdb), and five
real IMSDb scripts wrapped in IMSDb's page markup. Appends one line per site to
benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import html
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import lxml.html

from crawlers.imdb import parse_quotes_page, parse_title_search
from crawlers.imsdb import parse_script_page
from crawlers.pages import page_text
from crawlers.tvtropes import parse_trope_page
from flows import PROJECT_ROOT
from flows.lib.config import data_path, load_params

RESULTS = PROJECT_ROOT / "benchmarks" / "RESULTS.md"
SCRIPTS = ("Alien.txt", "Casino.txt", "Chinatown.txt", "Blade-Runner.txt", "Big-Fish.txt")


def pages(data: Path) -> dict[str, tuple[Callable, list[tuple[bytes, str]]]]:
    """site -> (parser, [(page bytes, encoding)])"""
    fixtures = PROJECT_ROOT / "tests" / "fixtures" / "imdb"
    def script_page(name: str) -> bytes:
        text = (data / "imsdb_scripts" / "scripts" / name).read_text(encoding="utf-8")
        return f"<html><body><table><tr><td class='scrtext'><pre>{html.escape(text)}</pre></td></tr></table></body></html>".encode()
    return {
        "tvtropes": (parse_trope_page, [(p.read_bytes(), "cp1252") for p in sorted((data / "html" / "tvtropes").glob("*.html"))]),
        "imdb quotes": (parse_quotes_page, [((fixtures / n).read_bytes(), "utf-8") for n in ("quotes_next_data.html", "quotes_legacy.html")]),
        "imdb search": (parse_title_search, [((data / "html" / "imdb" / "imdb_advanced_search_dom_snapshot_2025.html").read_bytes(), "utf-8")]),
        "imsdb": (parse_script_page, [(script_page(name), "utf-8") for name in SCRIPTS]),
    }


def rate(work, batch: list[tuple[bytes, str]], seconds: float, repeats: int) -> float:
    """Pages per second of `work(body, encoding)` over `batch`: the best of `repeats` windows of
    about `seconds` each (the machine is shared; the best window is the least disturbed)."""
    best = 0.0
    for _ in range(repeats):
        done, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds or done == 0:
            for body, encoding in batch:
                work(body, encoding)
            done += len(batch)
        best = max(best, done / elapsed)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one timing window")
    parser.add_argument("--repeats", type=int, default=3, help="windows per site and method; the best counts")
    parser.add_argument("--no-append", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    stamp = subprocess.run(["date", "-u", "+%Y-%m-%d %H:%M UTC"], capture_output=True, text=True).stdout.strip()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    where = (f"{os.cpu_count()}-core {platform.machine()} CPU, {memory:.0f} GiB, Python {platform.python_version()}, "
             f"lxml {lxml.etree.__version__}, load {os.getloadavg()[0]:.1f}, shared with other jobs")
    command = "`.venv/bin/python benchmarks/bench_spiders.py" + "".join(
        f" --{name} {value}" for name, value, default in (("seconds", args.seconds, 1.0), ("repeats", args.repeats, 3))
        if value != default) + "`"
    lines = []
    for site, (parse, batch) in pages(data_path(load_params())).items():
        full = rate(lambda body, enc: parse(page_text(body, enc, site), site), batch, args.seconds, args.repeats)
        bare = rate(lambda body, enc: lxml.html.document_fromstring(page_text(body, enc, site)), batch,
                    args.seconds, args.repeats)
        kib = sum(len(body) for body, _ in batch) / len(batch) / 1024
        lines.append(f"- {stamp} | {where} | {command} | spider parsing, {site} ({len(batch)} pages, {kib:.0f} KiB "
                     f"each on average): {full:.0f} pages/s decode + parse vs {bare:.0f} pages/s decode + bare lxml "
                     f"parse; the parser takes {bare / full:.2f}x the bare parse's time")
    print("\n".join(lines))
    if not args.no_append:
        if not RESULTS.exists():
            RESULTS.write_text("# Benchmark results\n\nMeasured by the scripts in benchmarks/; each line says when, where and how.\n\n")
        with open(RESULTS, "a") as handle:
            handle.write("".join(line + "\n" for line in lines))


if __name__ == "__main__":
    sys.exit(main())
