"""Stage `strategy_planner` (sweeps/dvc.yaml, run by name): fine-tune the MiniLM strategy
planner (models/strategy_planner.py) on every supporter turn of ESConv's train file, read its
accuracy on valid (with its interval), then score it once on every turn of gen.eval.split
beside the strategy references of gen_references (flows/lib/strategy_planning.py: paired
intervals of the differences). Writes <paths.gen_planner_dir>/model.pt (resumed from
checkpoints/last.pt when the same settings, data and code wrote it) and
paths.strategy_planner_metrics, with the per-turn predictions.
"""
from __future__ import annotations

from dataclasses import asdict

from prefect import flow

from flows.lib.config import load_params, out_path, param, read_json, write_json
from flows.lib.esconv_examples import split_examples
from flows.lib.gen_params import planner_config, planner_train_settings
from flows.lib.generator_eval import strategy_scores
from flows.lib.orchestration import task_of
from flows.lib.pess_params import esconv_dir
from flows.lib.strategy_planning import planner_scores
from models.strategy_planner import StrategyPlanner, train_planner
from models.trainer import run_files


@flow(name="strategy_planner")
def strategy_planner_flow() -> dict:
    params = load_params()
    config, settings = planner_config(params), planner_train_settings(params)
    context_turns, persona_every = param(params, "gen.planner.context_turns", int), param(params, "gen.persona_every", int)
    train, val, test = (split_examples(esconv_dir(params), "", "none", split, param(params, f"gen.conversations.{limit}", int),
                                       config.strategies, context_turns, persona_every)
                        for split, limit in (("train", "train"), ("val", "val"), (param(params, "gen.eval.split", str), "test")))
    run_dir = out_path(params, "gen_planner_dir")
    summary = task_of(train_planner)(train, config, settings, run_dir)
    planner = StrategyPlanner.load(run_files(run_dir)[0], settings.device)
    val_predicted, test_predicted = planner.predict(val), planner.predict(test)
    references_path = out_path(params, "gen_reference_outputs")
    n_resamples, seed = param(params, "gen.eval.bootstrap", int), param(params, "gen.references.seed", int)
    scores = planner_scores(test, test_predicted, read_json(references_path), n_resamples, seed,
                            str(references_path))
    metrics = {
        "config": asdict(config), "settings": asdict(settings), "context_turns": context_turns, "train": summary,
        "val": {"n": len(val), **strategy_scores([e.strategy for e in val], val_predicted, n_resamples, seed)},
        "test": {"split": param(params, "gen.eval.split", str), **scores},
        "predictions": [{"conversation_id": e.conversation_id, "turn_index": e.turn_index, "gold": e.strategy, "planner": p}
                        for e, p in zip(test, test_predicted)],
    }
    write_json(metrics, out_path(params, "strategy_planner_metrics"))
    return {name: value for name, value in metrics["test"].items() if not name.endswith("_ci95")}


if __name__ == "__main__":
    strategy_planner_flow()
