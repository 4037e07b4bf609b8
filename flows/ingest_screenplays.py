"""Stage `ingest_screenplays`: IMSDb scripts (bundled under data.root, and crawled ones from
data.crawled_screenplays when present) -> dialogue snippets S = (D, E, O) per matched character
(flows/lib/screenplay_snippets.py) -> the snippet table of source "screenplays" under
paths.snippets_dir, plus data counts in paths.ingest_metrics.

Reads paths.characters. Params: `ingest`, `split`, `data.root`, `data.crawled_screenplays`."""
from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows.lib.config import data_path, load_params, out_path, param, snippets_path
from flows.lib.orchestration import task_of
from flows.lib.screenplay_snippets import SCRIPTS_ROOT, SOURCE, ingest_screenplays, ingest_settings
from flows.lib.splits import split_settings


@flow(name="ingest_screenplays")
def ingest_screenplays_flow() -> dict:
    params = load_params()
    return task_of(ingest_screenplays)(
        out_path(params, "characters"), data_path(params, SCRIPTS_ROOT),
        Path(param(params, "data.crawled_screenplays", str)), snippets_path(params, SOURCE),
        out_path(params, "ingest_metrics"), ingest_settings(params), split_settings(params),
    )


if __name__ == "__main__":
    ingest_screenplays_flow()
