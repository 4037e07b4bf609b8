"""Stage `ingest_quotes`: crawled IMDb quotes (data.quotes, from `personas crawl`) -> dialogue
snippets S = (D, E, O) per CMU character (flows/lib/quote_snippets.py) -> the snippet table of
source "imdb" under paths.snippets_dir, plus counts in paths.ingest_quotes_metrics.

Reads paths.characters. Params: `ingest`, `split`, `data.quotes`.

Frozen in dvc.yaml: the default `dvc repro` builds snippets from the bundled screenplays. To use
IMDb quotes: `personas crawl --spider imdb_quotes`, `dvc unfreeze ingest_quotes`, set
`data.source: imdb` in params.yaml, then `dvc repro`."""
from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows.lib.config import load_params, out_path, param, snippets_path
from flows.lib.orchestration import task_of
from flows.lib.quote_snippets import SOURCE, ingest_quotes
from flows.lib.screenplay_snippets import ingest_settings
from flows.lib.splits import split_settings


@flow(name="ingest_quotes")
def ingest_quotes_flow() -> dict:
    params = load_params()
    return task_of(ingest_quotes)(
        out_path(params, "characters"), Path(param(params, "data.quotes", str)), snippets_path(params, SOURCE),
        out_path(params, "ingest_quotes_metrics"), ingest_settings(params), split_settings(params),
    )


if __name__ == "__main__":
    ingest_quotes_flow()
