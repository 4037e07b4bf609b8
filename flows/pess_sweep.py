"""Stage pess_sweep (frozen: out of the default DAG): the PESS ablations and the tau sweep.

Runs, each trained for pess.sweep.steps on the same split, for every seed in pess.sweep.seeds:
- ablations: every variant in pess.sweep.variants (base | completeness | consistency | full)
  at pess.loss.tau;
- tau sweep: the full model at every tau in pess.sweep.taus (the run equal to an ablation's
  is trained once).
Every run is scored by flows.pess_eval on pess.sweep.split at the fixed pess.eval.tau, so the
rows compare training settings, not scoring thresholds. Results accumulate in
metrics/pess_sweep.json after each run; models and resumable checkpoints live in
artifacts/pess/sweep/<run>/, so a killed sweep picks up where it stopped.

Run with `python -m flows.pess_sweep` (or `dvc unfreeze pess_sweep && dvc repro pess_sweep`).
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import flow

from flows.lib.config import choice, load_params, param, write_json
from flows.lib.orchestration import fingerprint, run_stage, stage_task
from flows.lib.persona_data import load_persona_examples
from flows.pess_eval import evaluate_extractor, evaluation_examples
from flows.pess_train import TrainSettings, corpus_settings, pess_config, train_extractor, train_settings
from models.pess import PersonaExtractor, PessConfig, SentenceScorer
from models.runtime import load_checkpoint

SWEEP_DIR = "artifacts/pess/sweep"
METRICS_PATH = "metrics/pess_sweep.json"


def sweep_runs(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """run name -> {variant, tau, seed, config, settings} (plain dicts), ablations first."""
    default_tau = float(param(params, "pess.loss.tau", (int, float)))
    steps = param(params, "pess.sweep.steps", int)
    grid = [(variant, default_tau) for variant in param(params, "pess.sweep.variants", list)]
    grid += [("full", float(tau)) for tau in param(params, "pess.sweep.taus", list)]
    runs: dict[str, dict[str, Any]] = {}
    for seed in param(params, "pess.sweep.seeds", list):
        for variant, tau in grid:
            name = f"{variant}-tau{tau:g}-seed{seed}"
            runs.setdefault(name, {
                "variant": variant,
                "tau": tau,
                "seed": int(seed),
                "config": asdict(pess_config(params, variant, tau)),
                "settings": asdict(train_settings(params, seed=int(seed), steps=steps)),
            })
    return runs


def run_sweep(
    runs: dict[str, dict[str, Any]],
    corpus: dict[str, Any],
    data_hashes: dict[str, str],
    split: str,
    max_examples: int,
    eval_tau: float,
    batch_size: int,
    sweep_dir: str,
    metrics_path: str,
) -> str:
    """Pure stage body: train + evaluate every run; results written after each one."""
    train = [e for e in load_persona_examples(**corpus) if e.split == "train"]
    evaluation = evaluation_examples(corpus, split, max_examples)
    results: dict[str, Any] = {}
    scorer = None
    for name, run in runs.items():
        config, settings = PessConfig(**run["config"]), TrainSettings(**run["settings"])
        folder = Path(sweep_dir) / name
        summary = train_extractor(train, config, settings, folder / "model.pt", folder / "checkpoint.pt")
        extractor = PersonaExtractor.from_checkpoint(load_checkpoint(folder / "model.pt")).eval()
        scorer = scorer or SentenceScorer(config.sentence_model, extractor.device)
        metrics, _ = evaluate_extractor(extractor, evaluation, scorer, eval_tau, batch_size)
        results[name] = {
            "variant": run["variant"],
            "train_tau": run["tau"],
            "seed": run["seed"],
            "steps": settings.steps,
            "split": split,
            "seconds_per_step": summary["seconds_per_step"],
            "parameters": summary["parameters"],
            **metrics,
        }
        write_json(results, metrics_path)
    return metrics_path


run_sweep_task = stage_task(run_sweep)


@flow(name="pess_sweep")
def pess_sweep_flow() -> str:
    params = load_params()
    corpus = corpus_settings(params)
    return run_stage(
        run_sweep_task,
        outputs=[METRICS_PATH],
        runs=sweep_runs(params),
        corpus=corpus,
        data_hashes=fingerprint(*corpus["paths"]),
        split=choice(params, "pess.sweep.split", ["train", "val", "test"]),
        max_examples=param(params, "pess.eval.max_examples", int),
        eval_tau=float(param(params, "pess.eval.tau", (int, float))),
        batch_size=param(params, "pess.generate.batch_size", int),
        sweep_dir=SWEEP_DIR,
        metrics_path=METRICS_PATH,
    )


if __name__ == "__main__":
    pess_sweep_flow()
