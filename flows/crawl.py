"""`personas crawl`: run the spiders, each as its own `scrapy crawl` subprocess (Twisted's
reactor cannot start twice in one process), then merge what each wrote into its crawls/ table.

Not a DVC stage: it needs the internet, and the web is no versioned input. It is resumable
instead: rerun it after any interruption and it fetches only the units (tropes, movies) not yet
on disk, replaying already fetched pages from the HTTP cache (crawlers/resume.py).

    personas crawl                          # every spider of crawl.spiders
    personas crawl --spider imdb_quotes     # one spider
    personas crawl --spider imsdb --arg "movies=Alien;The Departed"
    personas crawl --fresh                  # forget finished units (the HTTP cache stays)

The subprocess gets its fixed settings through SCRAPY_SETTINGS_MODULE=crawlers.settings (no
scrapy.cfg) and the tunable ones, from params.yaml `crawl:` and `data:`, as `-s NAME=value`
(`scrapy_settings`).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from crawlers.resume import job_dir, merge_parts, parts_dir
from flows.lib.config import data_path, file_sha256, load_params, param
from flows.lib.errors import PipelineInputError

# spider -> (its table in flows.lib.schemas.SCHEMAS, the param naming its output file)
SPIDERS = {
    "tvtropes": ("trope_pages", "data.crawled_tropes"),
    "imdb_quotes": ("quotes", "data.quotes"),
    "imsdb": ("screenplay_pages", "data.crawled_screenplays"),
}
SETTINGS_MODULE = "crawlers.settings"


def scrapy_settings(params: dict[str, Any]) -> dict[str, Any]:
    """The Scrapy settings that params.yaml decides (crawlers/settings.py holds the fixed ones)."""
    work_dir = Path(param(params, "crawl.work_dir", str)).resolve()
    delay = float(param(params, "crawl.download_delay", (int, float)))
    return {
        "USER_AGENT": param(params, "crawl.user_agent", str),
        "CONCURRENT_REQUESTS_PER_DOMAIN": param(params, "crawl.concurrent_requests_per_domain", int),
        "DOWNLOAD_DELAY": delay,
        "DOWNLOAD_TIMEOUT": param(params, "crawl.timeout_s", int),
        "AUTOTHROTTLE_ENABLED": param(params, "crawl.autothrottle", bool),
        "AUTOTHROTTLE_START_DELAY": max(delay, 1.0),
        "AUTOTHROTTLE_TARGET_CONCURRENCY": float(param(params, "crawl.autothrottle_target_concurrency", (int, float))),
        "RETRY_TIMES": param(params, "crawl.retry_times", int),
        "HTTPCACHE_DIR": str(work_dir / "httpcache"),
        "HTTPCACHE_IGNORE_MISSING": param(params, "crawl.offline", bool),  # offline: cache hits only
        "CRAWL_WORK_DIR": str(work_dir),
        "CRAWL_BATCH_SIZE": param(params, "crawl.batch_size", int),
        "CRAWL_BASE_URLS": param(params, "crawl.base_urls", dict),
        "CRAWL_DATA_ROOT": str(data_path(params)),
        "CRAWL_OUTPUTS": {spider: str(Path(param(params, output, str)).resolve()) for spider, (_, output) in SPIDERS.items()},
    }


def scrapy_command(spider: str, spider_args: dict[str, str], settings: dict[str, Any]) -> list[str]:
    command = [sys.executable, "-m", "scrapy", "crawl", spider]
    for name, value in settings.items():  # dicts as JSON, which Settings.getdict reads back
        command += ["-s", f"{name}={json.dumps(value) if isinstance(value, dict) else int(value) if isinstance(value, bool) else value}"]
    for name, value in spider_args.items():
        command += ["-a", f"{name}={value}"]
    return command


def run_spider(spider: str, spider_args: dict[str, str] | None = None, log_file: Path | None = None) -> Path:
    """Run one spider to its end in a subprocess; merge its part files (again: the run may have
    been killed before its own merge); return the merged table's path."""
    params = load_params()
    table, output_param = SPIDERS[spider]
    env = {**os.environ, "SCRAPY_SETTINGS_MODULE": SETTINGS_MODULE}
    with open(log_file, "w") if log_file else nullcontext() as log:  # no file: the terminal
        done = subprocess.run(scrapy_command(spider, spider_args or {}, scrapy_settings(params)), env=env, stdout=log,
                              stderr=subprocess.STDOUT if log else None)
    if done.returncode != 0:
        where = f"; log: {log_file}" if log_file else ""
        raise PipelineInputError(f"scrapy crawl {spider}: exit status {done.returncode}{where}")
    output = Path(param(params, output_param, str))
    merge_parts(parts_dir(param(params, "crawl.work_dir", str), spider), output, table)
    return output


def forget_progress(spider: str) -> None:
    """Delete a spider's part files and job directory: its next run starts over."""
    work_dir = param(load_params(), "crawl.work_dir", str)
    for path in (parts_dir(work_dir, spider), job_dir(work_dir, spider)):
        shutil.rmtree(path, ignore_errors=True)


@task(name="crawl_spider", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def crawl_spider(spider: str, spider_args: dict[str, str]) -> dict[str, str]:
    # Never cached: a crawl's input is the web; its own resume makes a rerun cheap.
    output = run_spider(spider, spider_args)
    return {"spider": spider, "output": str(output), "sha256": file_sha256(output)}


@flow(name="crawl_flow")
def crawl_flow(spiders: list[str] | None = None, spider_args: dict[str, str] | None = None) -> list[dict[str, str]]:
    """Crawl with each spider in turn (None: params crawl.spiders); returns, per spider, the
    crawl table it wrote and its content hash."""
    if spiders is None:
        spiders = param(load_params(), "crawl.spiders", list)
    unknown = [name for name in spiders if name not in SPIDERS]
    if unknown:
        raise PipelineInputError(f"params.yaml: crawl.spiders names unknown spider(s) {unknown}; valid: {', '.join(SPIDERS)}")
    return [crawl_spider(name, spider_args or {}) for name in spiders]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spider", action="append", choices=list(SPIDERS),
                        help="run this spider (repeatable; default: params crawl.spiders)")
    parser.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE",
                        help="spider argument passed to every spider run, e.g. 'movies=Alien;Heat (1995)'")
    parser.add_argument("--fresh", action="store_true",
                        help="forget finished units first and crawl everything again (the HTTP cache stays)")


def run(args: argparse.Namespace) -> int:
    spider_args = {}
    for pair in args.arg:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise PipelineInputError(f"--arg {pair!r}: expected NAME=VALUE")
        spider_args[name] = value
    spiders = args.spider or param(load_params(), "crawl.spiders", list)
    if args.fresh:
        for spider in spiders:
            forget_progress(spider)
    for result in crawl_flow(spiders, spider_args):
        print(f"{result['spider']}: {result['output']}")
    return 0


if __name__ == "__main__":
    crawl_flow()
