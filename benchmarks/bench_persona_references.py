"""Do the copy-the-training-pool references still score on persona-disjoint splits? (issue 16)

On the PESS corpus of params.yaml (pess.corpus, pess.files): the splits of
flows/lib/persona_splits.py (seed pess.split.seed, tau pess.loss.tau), their leakage report, and
every figure of flows/lib/persona_metrics.py for the retrieval and pool-prior references
(flows/lib/persona_references.py; k tuned on val) on val, test_seen and test_unseen; the
grounding rate of the gold personas (the ceiling of an extractor that only states what the
speaker said); and, for comparison, retrieval on the old random split's test.

    python benchmarks/bench_persona_references.py [--val-share 0.06] [--test-share 0.06] [--out x.json]

Prints JSON (and writes it to --out)."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flows.lib.config import load_params, param, write_json  # noqa: E402
from flows.lib.persona_data import load_persona_examples, speaker_sentences  # noqa: E402
from flows.lib.persona_metrics import CachedScorer, grounding_rate, score_personas  # noqa: E402
from flows.lib.persona_references import pool_prior_personas, retrieval_personas, tune_pool_k  # noqa: E402
from flows.lib.persona_splits import leakage_report, persona_splits  # noqa: E402
from flows.lib.pess_params import corpus_settings  # noqa: E402
from models.pess import persona_sentences  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--val-share", type=float, default=0.06)
    parser.add_argument("--test-share", type=float, default=0.06)
    parser.add_argument("--ks", default="1,2,3,4,5,6,8,10,15,20")
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    params = load_params(ROOT / "params.yaml")
    corpus = corpus_settings(params)
    tau = float(param(params, "pess.loss.tau", (int, float)))
    seed = corpus["seed"]
    started = time.time()
    examples = load_persona_examples(**corpus)
    scorer = CachedScorer()
    splits = persona_splits(examples, scorer, tau, seed, args.val_share, args.test_share)
    result = {"tau": tau, "seed": seed, "val_share": args.val_share, "test_share": args.test_share,
              "leakage": leakage_report(splits, examples, scorer, tau)}
    by_split = {name: [e for e in examples if splits[e.example_id] == name] for name in ("train", "val", "test_seen", "test_unseen")}
    train = by_split["train"]
    k, tuning = tune_pool_k(train, by_split["val"], scorer, tau, [int(k) for k in args.ks.split(",")])
    result["pool_prior_k"] = k
    result["pool_prior_val_by_k"] = {k: {name: s[name] for name in ("similarity_f1", "rouge_match_f1", "exact_f1")}
                                     for k, s in tuning.items()}
    for name in ("val", "test_seen", "test_unseen"):
        queries = by_split[name]
        result[name] = {
            "retrieval": score_personas(retrieval_personas(train, queries), queries, scorer, tau, args.resamples, seed),
            "pool_prior": score_personas(pool_prior_personas(train, len(queries), k), queries, scorer, tau,
                                         args.resamples, seed),
            "gold_grounding": grounding_rate([persona_sentences(e.persona) for e in queries],
                                             [speaker_sentences(e.own_turns) for e in queries], scorer, tau,
                                             args.resamples, seed),
        }
    old_train = [e for e in examples if e.split == "train"]
    old_test = [e for e in examples if e.split == "test"]
    result["old_random_split_test"] = {"retrieval": score_personas(retrieval_personas(old_train, old_test), old_test,
                                                                   scorer, tau, args.resamples, seed)}
    result["seconds"] = round(time.time() - started, 1)
    print(json.dumps(result, indent=1))
    if args.out:
        write_json(result, args.out)


if __name__ == "__main__":
    main()
