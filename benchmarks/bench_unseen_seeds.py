"""The headline AMN of unseen_tropes over training seeds (issue 15): the stage's own call
(flows/unseen_tropes.py) with `unseen.amn.seed` set to each seed given, everything else as
params.yaml; val chooses the epoch count for each seed as the stage does. The references do not
depend on the seed. Writes benchmarks/unseen_seeds.json (each seed's full table goes to a
temporary file; metrics/unseen_tropes.json stays the stage's); reads the embed_snippets cache,
so run the default DAG first.

    python benchmarks/bench_unseen_seeds.py 0 1 2 3 4"""
from __future__ import annotations

import copy
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flows.lib.config import load_params, write_json  # noqa: E402
from flows.unseen_tropes import unseen_tropes  # noqa: E402

OUT = ROOT / "benchmarks" / "unseen_seeds.json"
FIGURES = ("accuracy", "top5_accuracy", "macro_f1")


def main(seeds: list[int]) -> None:
    params = load_params(ROOT / "params.yaml")
    runs = {}
    with tempfile.TemporaryDirectory() as scratch:
        for seed in seeds:
            seeded = copy.deepcopy(params)
            seeded["unseen"]["amn"]["seed"] = seed
            seeded["paths"]["unseen_tropes_metrics"] = str(Path(scratch) / f"unseen_tropes_seed{seed}.json")
            started = time.perf_counter()
            metrics = unseen_tropes(seeded)
            run = runs[str(seed)] = {"amn": metrics["amn"], "epochs": metrics["choices"]["headline"]["amn"]["epochs"],
                                     "with_shared_movies": metrics["with_shared_movies"]["amn"],
                                     "seconds": round(time.perf_counter() - started, 1)}
            print(f"seed {seed}: " + ", ".join(f"{k} {run['amn'][k]:.3f} {run['amn'][k + '_ci95']}" for k in FIGURES)
                  + f"; val chose {run['epochs']} epochs; {run['seconds']} s", flush=True)
    summary = {k: {"mean": float(np.mean([r["amn"][k] for r in runs.values()])),
                   "std": float(np.std([r["amn"][k] for r in runs.values()], ddof=1)) if len(runs) > 1 else 0.0}
               for k in FIGURES}
    references = {name: {k: metrics[name][k] for k in FIGURES} for name in ("minilm_lr_zero_shot", "chatgpt")}
    write_json({"seeds": seeds, "runs": runs, "amn_over_seeds": summary, "references": references}, OUT)
    print(json.dumps(summary))


if __name__ == "__main__":
    main([int(seed) for seed in sys.argv[1:]] or [0, 1, 2])
