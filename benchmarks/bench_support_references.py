"""The simple references of PESS-GEN on all ESConv supporter turns: fit on train, choose on val,
score once on test (flows/lib/support_references.py). Context vectors go through an embedding
cache, so a rerun on unchanged text loads no model. Writes summary.json, test_rows.jsonl and
retriever.npz under --out and prints the summary with the wall time.

    python benchmarks/bench_support_references.py [--esconv ../shared/data/esconv] [--out data/support_references]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--esconv", default=str(ROOT.parent / "shared" / "data" / "esconv"))
    parser.add_argument("--cache", default=str(ROOT / "data" / "embeddings" / "esconv_contexts.parquet"))
    parser.add_argument("--out", default=str(ROOT / "data" / "support_references"))
    parser.add_argument("--context-turns", type=int, default=6, help="gen.context_turns")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from flows.lib.config import write_json
    from flows.lib.esconv_examples import build_examples, load_split, load_strategies
    from flows.lib.schemas import atomic_path
    from flows.lib.support_references import ReferenceSettings, context_embedder, run_support_references

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    strategies = load_strategies(Path(args.esconv) / "strategy.json")
    train, val, test = (build_examples(load_split(args.esconv, split, strategies), None, args.context_turns, 1)
                        for split in ("train", "val", "test"))
    settings = ReferenceSettings(context_turns=args.context_turns)
    summary, rows, retriever = run_support_references(train, val, test, strategies, context_embedder(args.cache),
                                                      settings)
    summary["wall_s"] = round(time.perf_counter() - started, 1)
    out = Path(args.out)
    write_json(summary, out / "summary.json")
    with atomic_path(out / "test_rows.jsonl") as tmp:
        tmp.write_text("".join(json.dumps(row) + "\n" for row in rows))
    retriever.save(out / "retriever.npz")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
