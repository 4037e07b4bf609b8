"""Stage `train` (also `personas train`): fit one AMN variant (params `amn.variant`, a preset of
`amn.variants`, with `train` settings) on the dialogue snippets, early-stop on validation
accuracy, and score the best epoch on the test split (flows/lib/amn_training.py). A killed run
resumes from its last epoch checkpoint.

Reads the snippet, character and trope tables and the description embeddings; writes
<paths.amn_dir>/model.pt and checkpoints/, paths.train_metrics and the dvclive curves in
paths.train_live."""
from __future__ import annotations

import argparse
from typing import Any

from prefect import flow

from flows.lib.amn_training import run_training_job, training_job, variant_options
from flows.lib.config import load_params, out_path, write_json
from flows.lib.orchestration import task_of


@flow(name="train")
def train_flow(variant: str | None = None, seed: int | None = None) -> dict[str, Any]:
    params = load_params()
    job = training_job(params, variant, seed)
    metrics = task_of(run_training_job)(**job, out_dir=str(out_path(params, "amn_dir")),
                                        live_dir=str(out_path(params, "train_live")))
    write_json(metrics, out_path(params, "train_metrics"))
    return metrics


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variant", help="a preset of params.yaml amn.variants (default: amn.variant)")
    parser.add_argument("--seed", type=int, help="overrides train.seed")


def run(args: argparse.Namespace) -> int:
    params = load_params()
    variant_options(params, args.variant)  # a bad name fails here, before Prefect starts
    metrics = train_flow(variant=args.variant, seed=args.seed)
    test = metrics["test"]
    print(f"{metrics['variant']} seed {metrics['seed']}: test accuracy {test['accuracy']:.3f}, "
          f"weighted F1 {test['f1']:.3f}, macro-F1 {test['f1_macro']:.3f} -> {out_path(params, 'train_metrics')}")
    return 0


if __name__ == "__main__":
    train_flow()
