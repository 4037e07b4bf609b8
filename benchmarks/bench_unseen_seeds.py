"""The headline AMN of unseen_tropes over training seeds (issue 15): the stage's library call
(flows/lib/unseen_table.py) with `unseen.amn.seed` set to each seed given, everything else as
params.yaml; val chooses the epoch count for each seed as the stage does. The references do not
depend on the seed. Writes benchmarks/unseen_seeds.json (metrics/unseen_tropes.json stays the
stage's); reads the embed_snippets cache, so run the default DAG first.

    python benchmarks/bench_unseen_seeds.py 0 1 2 3 4"""
from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flows.lib.config import data_path, load_params, out_path, param, write_json  # noqa: E402
from flows.lib.embedding_cache import cached_vectors  # noqa: E402
from flows.lib.unseen_amn import SentenceAMNSettings  # noqa: E402
from flows.lib.unseen_table import stored_answers, unseen_table  # noqa: E402
from flows.lib.unseen_task import load_unseen_task, unseen_settings  # noqa: E402

OUT = ROOT / "benchmarks" / "unseen_seeds.json"
FIGURES = ("accuracy", "top5_accuracy", "macro_f1")


def main(seeds: list[int]) -> None:
    params = load_params(ROOT / "params.yaml")
    task = load_unseen_task(data_path(params), unseen_settings(params))
    model_name, cache = param(params, "embed.model", str), out_path(params, "snippet_embeddings")
    snippet_vectors = cached_vectors([t for texts in task.snippets for t in texts], cache, model_name)
    trope_vectors = cached_vectors(task.trope_texts, cache, model_name)
    answers = stored_answers(data_path(params), task, param(params, "unseen.answers", list))
    runs = {}
    for seed in seeds:
        options = copy.deepcopy(param(params, "unseen.amn", dict))
        options["seed"] = seed
        started = time.perf_counter()
        metrics = unseen_table(task, snippet_vectors, trope_vectors, answers,
                               [float(c) for c in param(params, "unseen.logreg_cs", list)], SentenceAMNSettings(**options),
                               param(params, "unseen.bootstrap", int), param(params, "unseen.purity_ks", list))
        runs[str(seed)] = {"amn": metrics["amn"], "epochs": metrics["choices"]["headline"]["amn"]["epochs"],
                           "with_shared_movies": metrics["with_shared_movies"]["amn"],
                           "seconds": round(time.perf_counter() - started, 1)}
        row = metrics["amn"]
        print(f"seed {seed}: " + ", ".join(f"{k} {row[k]:.3f} {row[k + '_ci95']}" for k in FIGURES)
              + f"; val chose {runs[str(seed)]['epochs']} epochs; {runs[str(seed)]['seconds']} s", flush=True)
    summary = {k: {"mean": float(np.mean([r["amn"][k] for r in runs.values()])),
                   "std": float(np.std([r["amn"][k] for r in runs.values()], ddof=1)) if len(runs) > 1 else 0.0}
               for k in FIGURES}
    references = {name: {k: metrics[name][k] for k in FIGURES} for name in ("minilm_lr_zero_shot", "chatgpt")}
    write_json({"seeds": seeds, "runs": runs, "amn_over_seeds": summary, "references": references}, OUT)
    print(json.dumps(summary))


if __name__ == "__main__":
    main([int(seed) for seed in sys.argv[1:]] or [0, 1, 2])
