"""How long PAL's metrics take with intervals, on real ESConv text.

References: the first 3,000 supporter turns (test, then valid, then train file); hypothesis: the
next supporter turn (a weak but real "generator").

    .venv/bin/python benchmarks/bench_pal_metrics.py
"""
from __future__ import annotations

import json
import time

from flows.lib.config import data_path, load_params, param
from flows.lib.pal_metrics import pal_scores, pal_scores_with_intervals


def main() -> None:
    esconv = data_path(load_params(), param(load_params(), "esconv.dir", str))
    turns = []
    for name in ("test.txt", "valid.txt", "train.txt"):
        for line in open(esconv / name):
            turns += [t["text"] for t in json.loads(line)["dialog"] if t["speaker"] == "sys"]
    references, hypotheses = turns[:3000], turns[1:3001]
    print("pairs", len(references), "mean words", sum(len(r.split()) for r in references) / len(references))
    start = time.perf_counter()
    point = pal_scores(hypotheses, references)
    point_seconds = time.perf_counter() - start
    start = time.perf_counter()
    scored = pal_scores_with_intervals(hypotheses, references, n_resamples=1000, seed=0)
    interval_seconds = time.perf_counter() - start
    print(f"pal_scores {point_seconds:.2f}s; pal_scores_with_intervals(1000) {interval_seconds:.2f}s")
    for name, value in point.items():
        print(f"{name:8s} {value:8.3f}  ci95 {scored.get(name + '_ci95')}")


if __name__ == "__main__":
    main()
