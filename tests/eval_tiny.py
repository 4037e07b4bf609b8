"""A tiny project folder with a trained AMN and the outputs of the evaluate, cluster, narrative
and report flows on it, laid out as the pipeline lays them out (data/, artifacts/, metrics/,
plots/, reports/, params.yaml). Built once per test session: training, MiniLM and the Prefect
flow runs cost seconds, and every analysis test reads the same outputs."""
from __future__ import annotations

import os
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
import yaml
from amn_tiny import TINY_MODEL, random_descriptions, tiny_settings, write_tiny_dataset
from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

from flows.lib.amn_training import train_amn
from flows.lib.config import load_params, write_json
from flows.lib.trope_data import load_trope_data
from flows.lib.schemas import CHARACTERS, SNIPPETS, write_table

VARIANT = "attn3_tropetrip500_ksmem"  # a preset name, so the report finds the paper's row
MODEL_OPTIONS = {**TINY_MODEL, "encoder": "attn", "inputs": "3", "triplet": "tropetrip500", "memory": "ks", "n_diag": 4}
SETTINGS = tiny_settings()
KS = [2, 4, 8]
SHARED_MOVIE = ("Movie 0", "/m/30|loveable_rogue")  # this character moves into Movie 0: two tropes share it
_BUILT: dict[str, Path] = {}


def tiny_params() -> dict:
    params = load_params()
    params["data"]["source"] = "screenplays"
    params["inference"] = {"batch_size": 4, "device": "cpu"}
    params["cluster"] = {**params["cluster"], "ks": KS, "random_repeats": 5}
    params["narrative"] = {**params["narrative"], "movie_clusters": 3}
    return params


def _move_character_into_movie(paths: dict[str, Path]) -> None:
    movie, char_id = SHARED_MOVIE
    for key, schema in (("characters", CHARACTERS), ("snippets", SNIPPETS)):
        table = pq.read_table(paths[key])
        moved = pc.if_else(pc.equal(table["char_id"], char_id), movie, table["movie"])
        write_table(table.set_column(table.schema.get_field_index("movie"), "movie", moved), paths[key], schema)


def tiny_project(tmp_path_factory) -> Path:
    """The folder (built on first use): tables, model, metrics/train.json and every stage output."""
    if "root" in _BUILT:
        return _BUILT["root"]
    root = tmp_path_factory.mktemp("eval_tiny")
    paths = write_tiny_dataset(root / "data", chars_per_trope=3)
    paths["snippets"] = paths["snippets"].rename(root / "data" / "snippets_screenplays.parquet")
    _move_character_into_movie(paths)
    data = load_trope_data(paths["snippets"], paths["characters"], paths["tropes"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        metrics = train_amn(data, random_descriptions(), MODEL_OPTIONS, SETTINGS, root / "artifacts" / "amn",
                            variant=VARIANT, progress=False)
        write_json(metrics, root / "metrics" / "train.json")
        (root / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
        _run_flows(root)
    finally:
        torch.set_num_threads(threads)
    _BUILT["root"] = root
    return root


def _run_flows(root: Path) -> None:
    from flows.cluster import cluster_flow
    from flows.evaluate import evaluate_flow
    from flows.narrative import narrative_flow
    from flows.report import report_flow

    before, params_env = Path.cwd(), os.environ.pop("PERSONAS_PARAMS", None)
    os.chdir(root)  # stages run with cwd = project root and read ./params.yaml
    try:
        with temporary_settings(updates={PREFECT_LOCAL_STORAGE_PATH: root / ".prefect-results"}):
            evaluate_flow()
            cluster_flow()
            narrative_flow()
            report_flow()
    finally:
        os.chdir(before)
        if params_env is not None:
            os.environ["PERSONAS_PARAMS"] = params_env
