"""The unseen-character table (issue 15) and its cost: runs the two stages' library calls as
`dvc repro` would (embed_snippets, then unseen_tropes) with params.yaml, times each, prints the
table and, with --append, adds it to benchmarks/RESULTS.md.

    python benchmarks/bench_unseen.py [--append]

The second embed_snippets call shows the cache: with unchanged text it encodes nothing and
loads no model."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.results_line import RESULTS, publish  # noqa: E402

SYSTEMS = [
    ("amn", "AMN (MiniLM snippets, attention pooling, triplet + description logits, zero-shot init)"),
    ("minilm_lr", "mean MiniLM + LR"),
    ("minilm_lr_zero_shot", "mean MiniLM + LR mixed with zero-shot (val-tuned)"),
    ("tfidf_lr", "TF-IDF + LR"),
    ("zero_shot_descriptions", "zero-shot: cosine to trope text (no labels)"),
    ("majority", "majority"),
    ("chatgpt", "ChatGPT, stored zero-shot answers"),
    ("flan_ul2", "flan-ul2, stored zero-shot answers"),
    ("flan_t5_xxl", "flan-t5-xxl, stored zero-shot answers"),
]


def _cell(row: dict, name: str) -> str:
    low, high = row[f"{name}_ci95"]
    return f"{row[name]:.3f} [{low:.3f}, {high:.3f}]"


def table(metrics: dict) -> str:
    lines = ["| system | accuracy [95% CI] | top-5 [95% CI] | macro-F1 [95% CI] | n |", "|---|---|---|---|---|"]
    for key, label in SYSTEMS:
        if key in metrics:
            row = metrics[key]
            lines.append(f"| {label} | {_cell(row, 'accuracy')} | {_cell(row, 'top5_accuracy')} | "
                         f"{_cell(row, 'macro_f1')} | {row['n']} |")
    lines.append("| GPT-4 zero-shot (paper's figure) | | | 0.449 | 114 |")
    lines += ["", "With the 30 pool characters that share a movie with a test character (second figure):", "",
              "| system | accuracy [95% CI] | top-5 [95% CI] | macro-F1 [95% CI] | n |", "|---|---|---|---|---|"]
    for key, label in SYSTEMS[:6]:
        row = metrics["with_shared_movies"].get(key)
        if row:
            lines.append(f"| {label} | {_cell(row, 'accuracy')} | {_cell(row, 'top5_accuracy')} | "
                         f"{_cell(row, 'macro_f1')} | {row['n']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--append", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args()
    from flows.embed_snippets import embed_snippets
    from flows.lib.config import load_params, param
    from flows.unseen_tropes import unseen_tropes

    params = load_params(ROOT / "params.yaml")
    threads = param(params, "unseen.amn.threads", int)
    started = time.perf_counter()
    first = embed_snippets(params)
    embed_s = time.perf_counter() - started
    started = time.perf_counter()
    again = embed_snippets(params)
    rerun_s = time.perf_counter() - started
    started = time.perf_counter()
    metrics = unseen_tropes(params)
    table_s = time.perf_counter() - started
    amn = metrics["choices"]["headline"]["amn"]
    text = table(metrics)
    print(text)
    figures = (f"embed_snippets {embed_s:.0f} s ({first['encoded']} of {first['texts']} texts encoded), "
               f"rerun {rerun_s:.1f} s ({again['encoded']} encoded); unseen_tropes {table_s:.0f} s (every system, "
               f"bootstrap included); AMN {amn['steps_per_epoch']} steps/epoch, val chose {amn['epochs']} epochs")
    publish("benchmarks/bench_unseen.py" + (" --append" if args.append else ""), threads, figures, args.append)
    if args.append:
        with open(RESULTS, "a") as handle:
            handle.write("\n" + text + "\n")


if __name__ == "__main__":
    main()
