"""Stage `evaluate`: score the trained AMN (<paths.amn_dir>/model.pt) on the test split with the
fixed snippet draw of training (the checkpoint carries its eval_seed and max_tokens).

Reads the snippet, character and trope tables; writes paths.evaluate_metrics (accuracy;
support-weighted precision, recall, F1 as the paper's Table 2; macro-F1), paths.per_trope
(sklearn's per-trope report) and paths.confusion (one row per test character: actual and
predicted trope, for DVC's `confusion` template). Params: `inference`."""
from __future__ import annotations

from typing import Any

from prefect import flow

from flows.lib.amn_inference import evaluate_model, inference_settings, model_path
from flows.lib.config import load_params, out_path, write_json
from flows.lib.csv_files import write_csv
from flows.lib.orchestration import task_of
from flows.lib.trope_data import table_paths


@flow(name="evaluate")
def evaluate_flow() -> dict[str, Any]:
    params = load_params()
    result = task_of(evaluate_model)(model_path(params), **table_paths(params), **inference_settings(params))
    write_csv(result.pop("confusion"), out_path(params, "confusion"), ["actual", "predicted"])
    write_csv(result.pop("per_trope"), out_path(params, "per_trope"), ["trope", "precision", "recall", "f1", "support"])
    write_json(result, out_path(params, "evaluate_metrics"))
    return result


if __name__ == "__main__":
    evaluate_flow()
