"""Stage `baselines`: the non-neural references of the trope classification (majority trope,
TF-IDF + logistic regression, mean MiniLM + logistic regression; flows/lib/reference_classifiers.py)
on the same examples and split as `train`, scored on the test split.

Reads the snippet, character and trope tables; writes paths.baselines_metrics. Params:
`baselines`, shared `features`, `embed.model`."""
from __future__ import annotations

from typing import Any

from prefect import flow

from flows.lib.config import load_params, out_path, param, write_json
from flows.lib.orchestration import task_of
from flows.lib.reference_classifiers import BaselineSettings, run_baselines
from flows.lib.trope_data import load_trope_data, table_paths


@flow(name="baselines")
def baselines_flow() -> dict[str, Any]:
    params = load_params()
    settings = BaselineSettings(
        tfidf_max_features=param(params, "features.tfidf_max_features", int),
        logreg_c=float(param(params, "baselines.logreg_c", (int, float))),
        embed_batch_size=param(params, "features.embed_batch_size", int),
    )
    data = load_trope_data(**table_paths(params))
    results = task_of(run_baselines)(data, param(params, "embed.model", str), settings)
    write_json(results, out_path(params, "baselines_metrics"))
    return results


if __name__ == "__main__":
    baselines_flow()
