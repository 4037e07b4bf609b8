"""PESS's own question on the persona-disjoint split: does full PESS beat its base, on the same
backbone, over seeds? (issue 16)

For each --variants x --seeds, trains the seq2seq extractor (models/pess.py, params.yaml `pess`
with pess.sweep.steps or --steps) on the train speakers of paths.pess_splits into
<--run-dir>/<variant>-seed<seed>/ (resumable: a finished run is loaded, not retrained), then scores
it on val and test_unseen with flows/lib/persona_metrics.py at pess.eval.tau, as stage pess_eval
scores its rows (95% intervals over speakers). Test is read once per run. Run from a project
folder where `dvc repro pess_split` has run; two processes with one variant each use both cores.

    .venv/bin/python benchmarks/bench_pess_seeds.py --variants full --seeds 13,14,15 --out benchmarks/pess_seeds_full.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from flows.lib.config import load_params, out_path, param
from flows.lib.persona_benchmark import seq2seq_predict
from flows.lib.persona_data import assigned_examples, examples_of_split, read_split_assignment
from flows.lib.persona_metrics import CachedScorer, score_personas
from flows.lib.pess_params import corpus_settings, pess_config, train_settings
from models.pess import load_extractor, train_extractor
from models.trainer import run_files

KEPT = ("n", "similarity_f1", "similarity_f1_ci95", "rouge_match_f1", "rouge_match_f1_ci95", "exact_f1",
        "grounding_rate", "grounding_rate_ci95", "sentences_mean")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="base,full")
    parser.add_argument("--seeds", default="13,14,15")
    parser.add_argument("--steps", type=int, default=0, help="0: pess.sweep.steps")
    parser.add_argument("--run-dir", default="artifacts/pess/seeds")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--limit", type=int, default=0, help="first N speakers of val and test_unseen (0: all)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    params = load_params()
    examples = assigned_examples(corpus_settings(params), read_split_assignment(out_path(params, "pess_splits")))
    splits = {name: examples_of_split(examples, name, 0 if name == "train" else args.limit)
              for name in ("train", "val", "test_unseen")}
    steps = args.steps or param(params, "pess.sweep.steps", int)
    tau = float(param(params, "pess.eval.tau", (int, float)))
    batch_size, num_beams = param(params, "pess.generate.batch_size", int), param(params, "pess.generate.num_beams", int)
    scorer = CachedScorer(param(params, "embed.model", str))
    rows = {}
    for variant in args.variants.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            run_dir = Path(args.run_dir) / f"{variant}-seed{seed}"
            start = time.perf_counter()
            settings = train_settings(params, seed, steps)
            settings.threads = args.threads
            summary = train_extractor(splits["train"], pess_config(params, variant), settings, run_dir)
            trained = time.perf_counter() - start
            predict = seq2seq_predict(load_extractor(run_files(run_dir)[0], num_beams), batch_size)
            row = {"variant": variant, "seed": seed, "steps": steps, "train_seconds": round(trained, 1),
                   "parameters": summary.get("parameters")}
            for split in ("val", "test_unseen"):
                scored = score_personas(predict(splits[split]), splits[split], scorer, tau, 1000, 0)
                row[split] = {key: scored[key] for key in KEPT if key in scored}
            row["total_seconds"] = round(time.perf_counter() - start, 1)
            rows[f"{variant}-seed{seed}"] = row
            print(json.dumps(row), flush=True)
            Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
