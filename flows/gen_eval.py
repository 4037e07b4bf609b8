"""Stage `gen_eval`: score the PESS-GEN variants on the ESConv test subset.

Variants (gen.variants) name a persona source (none | base | pess: the model gen_train wrote
under <paths.gen_dir>/<source>/) and whether the gold strategy is forced as the decoder prefix
(the oracle). Each is scored on the first gen.eval.max_examples supporter turns of the first
gen.conversations.test test conversations, decoded with gen.decoding (metrics:
flows/lib/generator_eval.py), into paths.gen_eval_metrics; paths.gen_samples shows
gen.eval.sample_contexts test contexts with gen.eval.samples_per_variant nucleus samples per
variant. A variant's result with its output per example is kept in
<paths.gen_dir>/eval/<variant>.json; a rerun with the same model, examples and settings reads it
back.
"""
from __future__ import annotations

from dataclasses import asdict

from prefect import flow

from flows.lib.config import load_params, out_path, param, write_json
from flows.lib.esconv_examples import load_strategies, split_examples
from flows.lib.generator_eval import evaluate_variant, samples_markdown
from flows.lib.orchestration import task_of
from flows.lib.gen_params import decoding_settings, generator_path, sample_decoding, variant_settings
from flows.lib.pess_params import esconv_dir
from flows.lib.schemas import atomic_path
from models.runtime import load_sentence_model


@flow(name="gen_eval")
def gen_eval_flow(method: str | None = None) -> dict:
    params = load_params()
    decoding, samples = decoding_settings(params, method), sample_decoding(params)
    strategies = load_strategies(esconv_dir(params) / "strategy.json")
    persona_every = param(params, "gen.persona_every", int)
    sentence_model = load_sentence_model(param(params, "embed.model", str))
    variants, results = variant_settings(params), {}
    for variant, spec in variants.items():
        examples = split_examples(esconv_dir(params), out_path(params, "gen_personas"), spec["persona"], "test",
                                  param(params, "gen.conversations.test", int), strategies,
                                  param(params, "gen.context_turns", int), persona_every)
        results[variant] = task_of(evaluate_variant)(
            generator_path(params, spec["persona"]), examples[: param(params, "gen.eval.max_examples", int) or None],
            spec["oracle_strategy"], decoding, samples, param(params, "gen.eval.sample_contexts", int), persona_every,
            param(params, "gen.eval.batch_size", int), param(params, "gen.train.seed", int), sentence_model,
            out_path(params, "gen_dir") / "eval" / f"{variant}.json")
    metrics = {"variants": {v: {**variants[v], "model": r["model"], **r["metrics"]} for v, r in results.items()},
               "decoding": asdict(decoding)}
    write_json(metrics, out_path(params, "gen_eval_metrics"))
    with atomic_path(out_path(params, "gen_samples")) as tmp:
        tmp.write_text(samples_markdown(results, samples) + "\n")
    return metrics


if __name__ == "__main__":
    gen_eval_flow()
