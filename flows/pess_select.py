"""Stage `pess_select`: fit the grounded persona extractor, a selector of the speaker's own sentences.

Reads the PESS corpus and its splits (paths.pess_splits), fits the selector of
models/persona_selector.py on the train speakers and chooses its settings on val by
similarity-F1 at pess.select.tau (grids under pess.select). Writes <paths.pess_dir>/selector.pt
(what pess_apply, gen_personas and `personas chat` use by default) and the val choice to
paths.pess_select_metrics.
"""
from __future__ import annotations

from dataclasses import asdict

from prefect import flow

from flows.lib.config import load_params, out_path, write_json
from flows.lib.orchestration import task_of
from flows.lib.persona_data import assigned_examples, examples_of_split, read_split_assignment
from flows.lib.pess_params import corpus_settings, selector_config
from models.persona_selector import fit_selector
from models.pess import SentenceScorer


@flow(name="pess_select")
def pess_select_flow() -> dict:
    params = load_params()
    assignment = read_split_assignment(out_path(params, "pess_splits"))
    examples = assigned_examples(corpus_settings(params), assignment)
    train, val = (examples_of_split(examples, split) for split in ("train", "val"))
    config = selector_config(params)
    selector = task_of(fit_selector)(train, val, SentenceScorer(config.sentence_model), config)
    selector.save(out_path(params, "pess_dir") / "selector.pt")
    summary = {"train_speakers": len(train), "val_speakers": len(val), "choice": asdict(selector.choice)}
    write_json(summary, out_path(params, "pess_select_metrics"))
    return summary


if __name__ == "__main__":
    pess_select_flow()
