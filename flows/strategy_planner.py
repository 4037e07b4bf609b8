"""Stage `strategy_planner` (sweeps/dvc.yaml, run by name): fine-tune one MiniLM strategy planner
(models/strategy_planner.py) per seed of gen.planner.seeds on every supporter turn of ESConv's
train file; they plan together (flows/lib/strategy_planning.py: the strategy of highest mean
probability). Read the plan's accuracy on valid (with its interval) and each seed's, then score
the plan once on every turn of gen.eval.split beside the strategy references of gen_references
(paired intervals of the differences), with each seed's test accuracy beside it. Writes
<paths.gen_planner_dir>/seed-<seed>/model.pt (each resumed from its checkpoints/last.pt when the
same settings, data and code wrote it) and paths.strategy_planner_metrics, with the per-turn
predictions.
"""
from __future__ import annotations

from dataclasses import asdict

import numpy as np
from prefect import flow

from flows.lib.config import load_params, out_path, param, read_json, write_json
from flows.lib.esconv_examples import split_examples
from flows.lib.gen_params import planner_config, planner_seeds, planner_train_settings
from flows.lib.generator_eval import strategy_scores
from flows.lib.orchestration import task_of
from flows.lib.pess_params import esconv_dir
from flows.lib.strategy_planning import mean_plan, planner_scores, seed_probabilities, train_planners


@flow(name="strategy_planner")
def strategy_planner_flow() -> dict:
    params = load_params()
    config, settings, seeds = planner_config(params), planner_train_settings(params), planner_seeds(params)
    context_turns, persona_every = param(params, "gen.planner.context_turns", int), param(params, "gen.persona_every", int)
    train, val, test = (split_examples(esconv_dir(params), "", "none", split, param(params, f"gen.conversations.{limit}", int),
                                       config.strategies, context_turns, persona_every)
                        for split, limit in (("train", "train"), ("val", "val"), (param(params, "gen.eval.split", str), "test")))
    run_dir = out_path(params, "gen_planner_dir")
    summaries = task_of(train_planners)(train, config, settings, seeds, run_dir)
    n_resamples, bootstrap_seed = param(params, "gen.eval.bootstrap", int), param(params, "gen.references.seed", int)

    def seed_accuracy(examples, probabilities):
        gold = np.array([config.strategies.index(e.strategy) for e in examples])
        return {str(s): round(100 * float(np.mean(p.argmax(-1) == gold)), 2) for s, p in probabilities.items()}

    val_probabilities = seed_probabilities(run_dir, seeds, val, settings.device)
    test_probabilities = seed_probabilities(run_dir, seeds, test, settings.device)
    val_predicted = mean_plan(val_probabilities.values(), config.strategies)
    test_predicted = mean_plan(test_probabilities.values(), config.strategies)
    references_path = out_path(params, "gen_reference_outputs")
    scores = planner_scores(test, test_predicted, read_json(references_path), n_resamples, bootstrap_seed,
                            str(references_path))
    metrics = {
        "config": asdict(config), "settings": {k: v for k, v in asdict(settings).items() if k != "seed"}, "seeds": seeds, "context_turns": context_turns,
        "train": {str(s): summary for s, summary in summaries.items()},
        "val": {"n": len(val), **strategy_scores([e.strategy for e in val], val_predicted, n_resamples, bootstrap_seed),
                "seeds_strategy_acc": seed_accuracy(val, val_probabilities)},
        "test": {"split": param(params, "gen.eval.split", str), **scores,
                 "seeds_strategy_acc": seed_accuracy(test, test_probabilities)},
        "predictions": [{"conversation_id": e.conversation_id, "turn_index": e.turn_index, "gold": e.strategy, "planner": p}
                        for e, p in zip(test, test_predicted)],
    }
    write_json(metrics, out_path(params, "strategy_planner_metrics"))
    return {name: value for name, value in metrics["test"].items() if not name.endswith("_ci95") and name != "seeds_strategy_acc"}


if __name__ == "__main__":
    strategy_planner_flow()
