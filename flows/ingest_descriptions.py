"""Stage `ingest_descriptions`: one description per CMU trope -> paths.tropes, from a crawled
page (data.crawled_tropes, when present), else the bundled descriptions, else the title
(flows/lib/trope_descriptions.py). Params: `data.root`, `data.crawled_tropes`."""
from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows.lib.schemas import CLUSTERS
from flows.lib.config import data_path, load_params, out_path, param
from flows.lib.orchestration import task_of
from flows.lib.trope_descriptions import DESCRIPTIONS, ingest_descriptions


@flow(name="ingest_descriptions")
def ingest_descriptions_flow() -> dict:
    params = load_params()
    return task_of(ingest_descriptions)(data_path(params, *CLUSTERS), data_path(params, *DESCRIPTIONS),
                                        Path(param(params, "data.crawled_tropes", str)), out_path(params, "tropes"))


if __name__ == "__main__":
    ingest_descriptions_flow()
