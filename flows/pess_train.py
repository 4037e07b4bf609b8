"""Stage `pess_train`: train the PESS persona extractor on Persona-Chat-style data.

Reads the corpus of `pess.corpus` (files under data.root) and trains on the train speakers of
paths.pess_splits (stage pess_split) with the PESS objective of `pess.variant` (models/pess.py; the loop is
models/trainer.py). Writes <paths.pess_dir>/model.pt, paths.pess_train_metrics and the dvclive
folder paths.pess_train_live. `python -m flows.pess_train base` trains the `base` ablation into
<pess_dir>/base/ with metrics and curves suffixed _base. A run resumes from <run
folder>/checkpoints/last.pt when the same settings, data and code wrote it.
"""
from __future__ import annotations

import sys

from prefect import flow

from flows.lib.config import load_params, out_path, write_json
from flows.lib.live import TrainingCurves
from flows.lib.orchestration import task_of
from flows.lib.persona_data import read_split_assignment, split_examples
from flows.lib.pess_params import corpus_settings, pess_config, run_paths, train_settings
from models.pess import train_extractor


@flow(name="pess_train")
def pess_train_flow(variant: str | None = None, seed: int | None = None) -> dict:
    params = load_params()
    paths = run_paths(params, variant, seed)
    examples = split_examples(corpus_settings(params), "train", 0, read_split_assignment(out_path(params, "pess_splits")))
    summary = task_of(train_extractor)(examples, pess_config(params, variant), train_settings(params, seed),
                                       paths["run_dir"], TrainingCurves(paths["live_dir"]))
    write_json(summary, paths["metrics_path"])
    return summary


if __name__ == "__main__":
    pess_train_flow(*sys.argv[1:2])
