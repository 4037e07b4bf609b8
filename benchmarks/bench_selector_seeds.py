"""The grounded selector over seeds, on the persona-disjoint split of the pess_split stage.

Fits models/persona_selector.py with pess.select (params.yaml) on the train speakers of
paths.pess_splits for each --seeds value, chooses its settings on val, and scores it on
test_unseen and test_seen with flows/lib/persona_metrics.py at pess.eval.tau (test is read once
per seed). One encoder caches every sentence vector, so the seeds after the first encode nothing.
Run from a project folder where `dvc repro pess_split` has run.

    .venv/bin/python benchmarks/bench_selector_seeds.py [--seeds 13,14,15] [--out JSON]
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

from flows.lib.config import load_params, out_path, param
from flows.lib.persona_data import assigned_examples, examples_of_split, read_split_assignment
from flows.lib.persona_metrics import CachedScorer, score_personas
from flows.lib.pess_params import corpus_settings, selector_config
from models.persona_selector import fit_selector


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="13,14,15")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    params = load_params()
    assignment, corpus = read_split_assignment(out_path(params, "pess_splits")), corpus_settings(params)
    examples = assigned_examples(corpus, assignment)
    splits = {name: examples_of_split(examples, name) for name in ("train", "val", "test_unseen", "test_seen")}
    config, tau = selector_config(params), float(param(params, "pess.eval.tau", (int, float)))
    scorer = CachedScorer(config.sentence_model)
    rows = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        start = time.perf_counter()
        selector = fit_selector(splits["train"], splits["val"], scorer, replace(config, seed=seed))
        rows[seed] = {"fit_seconds": round(time.perf_counter() - start, 1), "val": selector.choice.val}
        for name in ("test_unseen", "test_seen"):
            examples = splits[name]
            scored = score_personas(selector.extract([list(e.own_turns) for e in examples]), examples, scorer, tau, 1000, 0)
            rows[seed][name] = {k: scored[k] for k in ("n", "similarity_f1", "similarity_f1_ci95", "rouge_match_f1",
                                                        "rouge_match_f1_ci95", "grounding_rate", "sentences_mean")}
        print(seed, json.dumps(rows[seed]))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
