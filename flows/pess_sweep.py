"""Stage `pess_sweep` (frozen: out of the default DAG): the PESS ablations and the tau sweep.

For every seed in pess.sweep.seeds, trains for pess.sweep.steps on the train speakers of
paths.pess_splits: every
variant in pess.sweep.variants at pess.loss.tau, then the full model at every tau in
pess.sweep.taus (a run equal to an ablation's is trained once). Each run is scored on
pess.sweep.split at the fixed pess.eval.tau. Results accumulate in paths.pess_sweep_metrics
after each run; models and resumable checkpoints live in <paths.pess_dir>/sweep/<run>/, so a
killed sweep picks up where it stopped.

Run with `python -m flows.pess_sweep` (or `dvc unfreeze pess_sweep && dvc repro pess_sweep`).
"""
from __future__ import annotations

from prefect import flow

from flows.lib.config import choice, load_params, out_path, param
from flows.lib.extractor_eval import train_and_score
from flows.lib.orchestration import task_of
from flows.lib.persona_data import assigned_examples, examples_of_split, read_split_assignment
from flows.lib.pess_params import corpus_settings, sweep_runs


@flow(name="pess_sweep")
def pess_sweep_flow() -> dict:
    params = load_params()
    examples = assigned_examples(corpus_settings(params), read_split_assignment(out_path(params, "pess_splits")))
    split = choice(params, "pess.sweep.split", ["val", "test_seen", "test_unseen"])
    return task_of(train_and_score)(
        sweep_runs(params),
        examples_of_split(examples, "train"),
        examples_of_split(examples, split, param(params, "pess.eval.max_examples", int)),
        split,
        float(param(params, "pess.eval.tau", (int, float))),
        param(params, "pess.generate.batch_size", int),
        out_path(params, "pess_dir") / "sweep",
        out_path(params, "pess_sweep_metrics"),
    )


if __name__ == "__main__":
    pess_sweep_flow()
