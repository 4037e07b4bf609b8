"""Crash-safe resume: part files, merge with dedup, and a crawl killed with SIGKILL and rerun."""
import os
import signal
import subprocess
import time

import pyarrow.parquet as pq
import pytest

from crawlers.resume import CLEAN_EXIT, done_units, merge_parts, part_files, start_job, write_part
from flows.crawl import SETTINGS_MODULE, scrapy_command, scrapy_settings
from flows.lib.config import load_params
from flows.lib.schemas import SCREENPLAY_PAGES, TROPE_PAGES, read_table
from loopback_site import LoopbackSite, Page, crawl_params


def trope_row(trope: str, description: str) -> dict:
    return {"trope": trope, "title": trope, "url": f"u/{trope}", "description": description, "laconic": ""}


def test_parts_record_their_units_and_merge_keeps_first_row_per_key(tmp_path):
    parts = tmp_path / "parts"
    write_part(parts, "trope_pages", ["a", "b"], [trope_row("a", "first"), trope_row("b", "b")])
    time.sleep(0.001)
    write_part(parts, "trope_pages", ["a2"], [trope_row("a", "second"), trope_row("c", "c")])
    assert done_units(parts) == {"a", "b", "a2"}
    assert not list(parts.glob(".*.tmp"))  # written through a temporary file, then renamed
    out = tmp_path / "trope_pages.parquet"
    assert merge_parts(parts, out, "trope_pages") == 3
    rows = read_table(out, TROPE_PAGES).to_pylist()
    assert [(row["trope"], row["description"]) for row in rows] == [("a", "first"), ("b", "b"), ("c", "c")]


def test_merge_of_no_parts_writes_an_empty_table(tmp_path):
    out = tmp_path / "screenplay_pages.parquet"
    assert merge_parts(tmp_path / "none", out, "screenplay_pages") == 0
    assert read_table(out, SCREENPLAY_PAGES).num_rows == 0


def test_a_job_not_closed_cleanly_loses_its_request_queue_only(tmp_path):
    queue = tmp_path / "requests.queue"
    queue.mkdir()
    (tmp_path / "spider.state").write_bytes(b"state")
    assert start_job(tmp_path) and not queue.exists() and (tmp_path / "spider.state").exists()
    queue.mkdir()
    (tmp_path / CLEAN_EXIT).touch()
    assert not start_job(tmp_path) and queue.exists()
    assert not (tmp_path / CLEAN_EXIT).exists()  # this run must close cleanly to keep its queue


@pytest.mark.slow
def test_crawl_killed_midway_and_rerun_yields_every_item_exactly_once(tmp_path, shared_data):
    movies = [f"Film {number}" for number in range(24)]
    pages = {
        f"/scripts/Film-{number}.html": Page(f"<html><body><td class='scrtext'><pre>{'INT. LAB - NIGHT ' * 20}{number}</pre></td></body></html>".encode())
        for number in range(24)
    }
    parts = tmp_path / "crawls" / "parts" / "imsdb"
    with LoopbackSite(pages, delay=0.1) as site:
        env = {**os.environ, "SCRAPY_SETTINGS_MODULE": SETTINGS_MODULE}
        settings = scrapy_settings(load_params(crawl_params(tmp_path, shared_data, site.url, batch_size=2)))
        command = scrapy_command("imsdb", {"movies": ";".join(movies)}, settings)
        first = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(part_files(parts)) < 2 and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait()
        finished_before = done_units(parts)
        assert 0 < len(finished_before) < len(movies), "the kill must land mid-crawl"
        requests_before = len(site.requests)
        second = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr[-2000:]
    assert f"resuming: {len(finished_before)} of {len(movies)} units already crawled" in second.stderr
    assert "the last run was killed: its request queue is dropped" in second.stderr
    crawled = pq.read_table(tmp_path / "crawls" / "screenplay_pages.parquet").column("movie").to_pylist()
    assert sorted(crawled) == sorted(movies)  # every movie, exactly once
    in_parts = [movie for path in part_files(parts) for movie in pq.read_table(path).column("movie").to_pylist()]
    assert sorted(in_parts) == sorted(movies)  # no unit written twice, even before the merge
    refetched = [path for _, path in site.requests[requests_before:] if path.startswith("/scripts/")]
    assert not {path.split("/")[-1][:-5].replace("-", " ") for path in refetched} & finished_before
