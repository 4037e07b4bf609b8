"""Persona conditioning over seeds (issue 17): for each seed, the no-persona and the
selector-persona generators trained longer than the default DAG's smoke size, side by side (one
torch thread each), then gen_eval on every test supporter turn. Reports per seed and system the
strategy accuracy, perplexity, the persona NLL gain (the seeker's own persona against another
seeker's) and PAL's ROUGE-L / BLEU-2 / Dist-2, each with gen_eval's 95% intervals.
`--evaluate gen_planned` (after `dvc repro sweeps/dvc.yaml:strategy_planner`) scores the selector
generator decoding with the strategy planner's strategies instead (flows/gen_planned.py); with
`--sources select` only that generator trains.

The stages run as they are (`python -m flows.gen_train`, `python -m flows.gen_eval`) on params.yaml
with these overrides, written to <run-dir>/seed<k>/params_*.yaml: gen.train steps, lr, warm-up,
seed, one persona source per process, encoder_lr_scale 0 (the frozen encoder of the 400-step runs
in RESULTS), and paths.gen_dir = <run-dir>/seed<k>. Resumable: a finished generator is loaded and
gen_eval reads back what it kept for the same model, examples and settings. Run from a project
folder where `dvc repro gen_eval` has run (personas, references).

    .venv/bin/python benchmarks/bench_gen_seeds.py --seeds 13,14,15 --out benchmarks/gen_seeds.json
    .venv/bin/python benchmarks/bench_gen_seeds.py --seeds 13 --sources select --evaluate gen_planned \
        --out benchmarks/gen_planned_seeds.json
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from flows.lib.config import PARAMS_FILE, load_params

KEPT = ("strategy_acc", "strategy_acc_ci95", "ppl", "ppl_ci95", "persona_nll_gain", "persona_nll_gain_ci95")
KEPT_PAL = ("rouge_l", "rouge_l_ci95", "bleu_2", "bleu_2_ci95", "dist_2", "dist_2_ci95", "n")


def train_threads(args: argparse.Namespace) -> int:
    """One torch thread per generator when several train side by side; else torch's default."""
    return 1 if len(args.sources.split(",")) > 1 else 0


def seed_params(base: dict, seed: int, run_dir: Path, args: argparse.Namespace, source: str | None) -> Path:
    """A params file for one process: `source` trains that generator, None evaluates the seed."""
    params = copy.deepcopy(base)
    train = params["gen"]["train"]
    train.update(steps=args.steps, lr=args.lr, warmup_steps=args.warmup, checkpoint_every=args.steps // 2,
                 log_every=50, threads=train_threads(args), encoder_lr_scale=0.0, seed=seed)
    params["paths"]["gen_dir"] = str(run_dir)
    name = f"train_{source}" if source else "eval"
    if source:
        train["persona_sources"] = [source]
        params["paths"]["gen_train_metrics"] = str(run_dir / f"{name}.json")
        params["paths"]["gen_train_plot"] = str(run_dir / f"{name}.csv")
    else:
        params["paths"]["gen_eval_metrics"] = str(run_dir / "gen_eval.json")
        params["paths"]["gen_samples"] = str(run_dir / "gen_samples.md")
        params["paths"]["gen_planned_metrics"] = str(run_dir / "gen_planned.json")
        params["paths"]["gen_planned_outputs"] = str(run_dir / "planned_outputs.json")
    path = run_dir / f"params_{name}.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def run_stage(module: str, params_path: Path, log_path: Path) -> subprocess.Popen:
    env = {**os.environ, "PERSONAS_PARAMS": str(params_path)}
    return subprocess.Popen([sys.executable, "-m", module], env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT)


def finish(processes: list[subprocess.Popen], what: str) -> None:
    for process in processes:
        if process.wait():
            raise SystemExit(f"{what}: a process exited with {process.returncode}; see its log beside the params")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="13,14,15")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--run-dir", default="artifacts/gen400")
    parser.add_argument("--sources", default="none,select", help="generators to train, one process each")
    parser.add_argument("--evaluate", default="gen_eval", choices=("gen_eval", "gen_planned"))
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    base = load_params(PARAMS_FILE)
    rows = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        run_dir = Path(args.run_dir) / f"seed{seed}"
        run_dir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        finish([run_stage("flows.gen_train", seed_params(base, seed, run_dir, args, source), run_dir / f"train_{source}.log")
                for source in args.sources.split(",")], f"gen_train seed {seed}")
        trained = time.perf_counter()
        finish([run_stage(f"flows.{args.evaluate}", seed_params(base, seed, run_dir, args, None), run_dir / "eval.log")],
               f"{args.evaluate} seed {seed}")
        metrics = json.loads((run_dir / f"{args.evaluate}.json").read_text())["systems"]
        systems = ("none", "select", "oracle") if args.evaluate == "gen_eval" else ("planned",)
        rows[str(seed)] = {
            "train_s": round(trained - started, 1), "eval_s": round(time.perf_counter() - trained, 1),
            **{system: {**{k: metrics[system][k] for k in KEPT if k in metrics[system]},
                        "pal": {k: metrics[system]["pal"][k] for k in KEPT_PAL}}
               for system in systems},
        }
        print(f"seed {seed}: {json.dumps(rows[str(seed)])}", flush=True)
    settings = {"steps": args.steps, "lr": args.lr, "warmup_steps": args.warmup, "encoder_lr_scale": 0.0,
                "threads": train_threads(args),
                "sources": args.sources, "evaluate": args.evaluate}
    summary = {}
    if args.evaluate == "gen_eval":
        gains = np.array([row["select"]["persona_nll_gain"] for row in rows.values()])
        summary = {"persona_nll_gain_mean": round(float(gains.mean()), 4),
                   "persona_nll_gain_std": round(float(gains.std(ddof=1)), 4) if len(gains) > 1 else 0.0,
                   "seeds_with_interval_above_zero": sum(row["select"]["persona_nll_gain_ci95"][0] > 0 for row in rows.values())}
    Path(args.out).write_text(json.dumps({"settings": settings, "seeds": rows, "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
