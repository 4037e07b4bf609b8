"""Stage `report` (also `personas report`): one static HTML file that opens offline, with the
scores beside the paper's, purity, the character map and per-character attention
(flows/lib/report_page.py, drawn by flows/templates/report.html.j2).

Reads paths evaluate_metrics, confusion, per_trope, purity_metrics, narrative and
character_embeddings, and when present train_metrics, table2_metrics, baselines_metrics,
character_personas, unseen_tropes_metrics, screenplay_cv_metrics, pess_test_metrics,
gen_eval_metrics, strategy_planner_metrics and gen_planned_metrics; writes paths.report. Params: `report`."""
from __future__ import annotations

import argparse
from pathlib import Path

from prefect import flow

from flows.lib.config import choice, load_params, out_path, param
from flows.lib.errors import PipelineInputError
from flows.lib.orchestration import task_of
from flows.lib.report_page import PROJECTIONS, build_report, report_inputs, write_report


@flow(name="report")
def report_flow() -> str:
    params = load_params()
    inputs = report_inputs(params)
    for path in inputs.required():
        if not Path(path).exists():
            raise PipelineInputError(f"{path}: file not found; run the evaluate, cluster and narrative stages first")
    html = task_of(build_report)(inputs, choice(params, "report.projection", PROJECTIONS),
                                 param(params, "report.seed", int))
    return str(write_report(html, out_path(params, "report")))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options: the report reads the files of params `paths` and params `report`."""


def run(args: argparse.Namespace) -> int:
    print(f"report -> {report_flow()}")
    return 0


if __name__ == "__main__":
    report_flow()
