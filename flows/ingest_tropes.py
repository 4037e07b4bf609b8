"""Stage `ingest_tropes`: the CMU trope list (tvtropes.clusters.txt under data.root) ->
paths.characters, one row per (character, trope) with a deterministic character-level
train/val/test split (flows/lib/cmu_tropes.py). Params: `split`, `data.root`."""
from __future__ import annotations

from prefect import flow

from flows.lib.cmu_tropes import ingest_tropes
from flows.lib.schemas import CLUSTERS
from flows.lib.config import data_path, load_params, out_path
from flows.lib.orchestration import task_of
from flows.lib.splits import split_settings


@flow(name="ingest_tropes")
def ingest_tropes_flow() -> dict:
    params = load_params()
    return task_of(ingest_tropes)(data_path(params, *CLUSTERS), out_path(params, "characters"), split_settings(params))


if __name__ == "__main__":
    ingest_tropes_flow()
