"""Stage `gen_planned` (sweeps/dvc.yaml, run by name after strategy_planner): PESS-GEN with the
strategy planner in front. The generator of gen.planned.persona decodes every decoded test
turn's response with the strategy that the planner chose for it (paths.strategy_planner_metrics),
so the system's strategy is the planner's and its responses follow that plan. Scored like the
gen_eval variants (flows/lib/generator_eval.py: our and PAL's metric definitions, 95% intervals)
beside the references of gen_references on the same turns. Writes paths.gen_planned_metrics;
the decoded outputs are kept in paths.gen_planned_outputs, which a rerun with the same model,
plan and settings reads back.
"""
from __future__ import annotations

from dataclasses import asdict

from prefect import flow

from flows.lib.config import load_params, out_path, param, read_json, write_json
from flows.lib.gen_params import decoding_settings, eval_examples, generator_path, planned_source, sample_decoding
from flows.lib.generator_eval import evaluate_variant, evaluation_with_references
from flows.lib.orchestration import task_of
from flows.lib.strategy_planning import planned_strategies, with_planned_strategies
from models.generator import load_text_normaliser


@flow(name="gen_planned")
def gen_planned_flow() -> dict:
    params = load_params()
    source = planned_source(params)
    examples, model_path = eval_examples(params, source), generator_path(params, source)
    planner_path = out_path(params, "strategy_planner_metrics")
    plan = planned_strategies(examples, read_json(planner_path), str(planner_path))
    decode_limit, n_resamples = param(params, "gen.eval.decode_examples", int), param(params, "gen.eval.bootstrap", int)
    seed, decoding = param(params, "gen.train.seed", int), decoding_settings(params)
    result = task_of(evaluate_variant)(
        model_path, examples, plan, decoding, decode_limit, sample_decoding(params), param(params, "gen.eval.sample_contexts", int),
        param(params, "gen.persona_every", int), param(params, "gen.eval.batch_size", int), seed, n_resamples,
        out_path(params, "gen_planned_outputs"))
    rows = read_json(out_path(params, "gen_reference_outputs"))
    table = task_of(evaluation_with_references)({"planned": with_planned_strategies(result, plan)}, rows,
                                                load_text_normaliser(model_path), decode_limit, n_resamples, seed)
    write_json({**table, "decoding": asdict(decoding), "generator": source, "samples": result["samples"]},
               out_path(params, "gen_planned_metrics"))
    return {name: value for name, value in table["systems"]["planned"].items() if not isinstance(value, (dict, list))}


if __name__ == "__main__":
    gen_planned_flow()
