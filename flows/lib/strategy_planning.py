"""The fine-tuned strategy planner (models/strategy_planner.py) scored beside the strategy
references of gen_references on the same supporter turns: its accuracy with a 95% interval,
and its paired difference from each reference with the interval of that difference (the
figure that says whether it is ahead of a reference, not just beside it). Several planners,
one per training seed, plan together: the strategy of highest mean probability. And the plan as
the strategies a generator decodes with (stage gen_planned)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from flows.lib.bootstrap import bootstrap
from flows.lib.errors import PipelineInputError
from flows.lib.esconv_examples import SupportExample
from models.strategy_planner import PlannerConfig, StrategyPlanner, train_planner
from models.trainer import TrainSettings, run_files

STRATEGY_REFERENCES = ("majority", "prior", "classifier", "retrieval")  # columns of gen_references' rows


def planner_runs(run_dir: str | Path, seeds: Sequence[int]) -> dict[int, Path]:
    """seed -> the run directory of its planner, <run_dir>/seed-<seed>."""
    return {seed: Path(run_dir) / f"seed-{seed}" for seed in seeds}


def train_planners(examples: list[Any], config: PlannerConfig, settings: TrainSettings, seeds: Sequence[int],
                   run_dir: str | Path) -> dict[int, dict[str, Any]]:
    """One planner per seed (settings with that seed) in its `planner_runs` directory, each
    resumed from its own checkpoint; seed -> its training summary."""
    return {seed: train_planner(examples, config, replace(settings, seed=seed), path)
            for seed, path in planner_runs(run_dir, seeds).items()}


def seed_probabilities(run_dir: str | Path, seeds: Sequence[int], examples: Sequence[SupportExample],
                       device: str = "auto") -> dict[int, np.ndarray]:
    """seed -> p(strategy) [n, K] of its trained planner on the examples."""
    return {seed: StrategyPlanner.load(run_files(path)[0], device).probabilities(examples)
            for seed, path in planner_runs(run_dir, seeds).items()}


def mean_plan(probabilities: Sequence[np.ndarray], strategies: Sequence[str]) -> list[str]:
    """Per example, the strategy of highest mean probability over the planners [n, K] each;
    averaging seeds cancels part of what one training run's draw of batches decided."""
    return [strategies[k] for k in np.mean(np.stack(list(probabilities)), axis=0).argmax(-1)]


def planner_scores(examples: Sequence[SupportExample], predicted: Sequence[str], reference_rows: Sequence[dict[str, Any]],
                   n_resamples: int, seed: int, where: str) -> dict[str, Any]:
    """strategy_acc (%) of the planner and of each reference, and planner minus reference
    (points), each with a paired bootstrap interval over the turns. `reference_rows` must be the
    same turns in the same order (one row per example); anything else is a one-line error."""
    keys = [(e.conversation_id, e.turn_index) for e in examples]
    if [(row.get("conversation_id"), row.get("turn_index")) for row in reference_rows] != keys:
        raise PipelineInputError(f"{where}: its turns are not the planner's test turns (rerun gen_references with the same gen.eval and gen.conversations)")
    gold = np.array([e.strategy for e in examples])
    hits = {"planner": np.asarray(predicted) == gold}
    hits.update({name: np.array([row[name] for row in reference_rows]) == gold for name in STRATEGY_REFERENCES})

    def figures(rows: np.ndarray) -> dict[str, float]:
        accuracy = {name: 100 * h[rows].mean() for name, h in hits.items()}
        return {**{f"{name}_strategy_acc": a for name, a in accuracy.items()},
                **{f"planner_minus_{name}": accuracy["planner"] - accuracy[name] for name in STRATEGY_REFERENCES}}

    return bootstrap(figures, len(gold), n_resamples, seed, digits=2)


def planned_strategies(examples: Sequence[SupportExample], planner_metrics: dict[str, Any], where: str) -> list[str]:
    """The planner's strategy for each example, from the per-turn predictions of the
    strategy_planner stage's metrics; they must be the same turns in the same order, anything
    else is a one-line error."""
    predictions = planner_metrics.get("predictions") if isinstance(planner_metrics, dict) else None
    if not isinstance(predictions, list):
        raise PipelineInputError(f"{where}: no 'predictions' list (rerun strategy_planner)")
    keys = [(e.conversation_id, e.turn_index) for e in examples]
    if [(p.get("conversation_id"), p.get("turn_index")) for p in predictions] != keys:
        raise PipelineInputError(f"{where}: its turns are not the evaluated turns (rerun strategy_planner with the same gen.eval and gen.conversations)")
    return [p["planner"] for p in predictions]


def with_planned_strategies(result: dict[str, Any], plan: Sequence[str]) -> dict[str, Any]:
    """An evaluate_variant result that decoded with the `plan`'s strategies, as a system of its
    own: its strategy on each turn is the plan's."""
    return {**result, "outputs": [{**output, "strategy": strategy} for output, strategy in zip(result["outputs"], plan, strict=True)]}
