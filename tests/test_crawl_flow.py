"""flows/crawl.py: the Prefect flow over real `scrapy crawl` subprocesses, and `personas crawl`."""
import argparse

import pytest

from crawlers.resume import job_dir, parts_dir
from flows.crawl import add_arguments, crawl_flow, forget_progress, run
from flows.lib.errors import PipelineInputError
from flows.lib.schemas import TROPE_PAGES, read_table
from loopback_site import LoopbackSite, Page, crawl_params


@pytest.fixture
def params_at(tmp_path, shared_data, monkeypatch):
    def point_at(base_url: str):
        monkeypatch.setenv("PERSONAS_PARAMS", str(crawl_params(tmp_path, shared_data, base_url)))
        monkeypatch.chdir(tmp_path)
    return point_at


@pytest.mark.slow
def test_crawl_flow_runs_each_spider_and_reports_its_table(tmp_path, shared_data, params_at):
    page = (shared_data / "html" / "tvtropes" / "tvtropes_Literature_AkataWitch.html").read_bytes()
    with LoopbackSite({"/pmwiki/pmwiki.php/Main/AkataWitch": Page(page, content_type="text/html")}) as site:
        params_at(site.url)
        (result,) = crawl_flow(["tvtropes"], {"titles": "AkataWitch"})
    assert result["spider"] == "tvtropes" and len(result["sha256"]) == 64
    (row,) = read_table(result["output"], TROPE_PAGES).to_pylist()
    assert row["trope"] == "AkataWitch" and row["description"].startswith("2011 book by Nnedi Okorafor.")


def test_unknown_spider_is_a_one_line_error(tmp_path, params_at):
    params_at("http://127.0.0.1:9")
    with pytest.raises(PipelineInputError, match=r"crawl.spiders names unknown spider\(s\) \['nope'\]"):
        crawl_flow.fn(["nope"])


def test_cli_rejects_a_malformed_spider_argument(tmp_path, params_at):
    params_at("http://127.0.0.1:9")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(PipelineInputError, match="--arg 'movies': expected NAME=VALUE"):
        run(parser.parse_args(["--spider", "imsdb", "--arg", "movies"]))


def test_fresh_forgets_finished_units_but_keeps_the_cache(tmp_path, params_at):
    params_at("http://127.0.0.1:9")
    work = tmp_path / "crawls"
    for folder in (parts_dir(work, "imsdb"), job_dir(work, "imsdb"), work / "httpcache" / "imsdb"):
        folder.mkdir(parents=True)
    forget_progress("imsdb")
    assert not parts_dir(work, "imsdb").exists() and not job_dir(work, "imsdb").exists()
    assert (work / "httpcache" / "imsdb").exists()
