"""Stage `gen_eval`: score the PESS-GEN variants and their references on ESConv supporter turns.

Variants (gen.variants) name a persona source (none | select | …: the model gen_train wrote
under <paths.gen_dir>/<source>/) and whether the gold strategy is forced as the decoder prefix
(the oracle). Every variant and every reference of gen_references (paths.gen_reference_outputs)
is scored on all supporter turns of the gen.eval.split conversations (gen.conversations.test
limits them); responses are decoded with gen.decoding (PAL's sampling) for gen.eval.decode_examples
of them, evenly spaced. Metrics with 95% intervals, on our and on PAL's definitions
(flows/lib/generator_eval.py), and each system's strategy per example go to
paths.gen_eval_metrics; paths.gen_samples shows gen.eval.sample_contexts contexts with
gen.eval.samples_per_variant samples per variant. A variant's outputs are kept in
<paths.gen_dir>/eval/<variant>.json; a rerun with the same model, examples and settings reads them back.
"""
from __future__ import annotations

from dataclasses import asdict

from prefect import flow

from flows.lib.config import load_params, out_path, param, read_json, write_json
from flows.lib.gen_params import decoding_settings, eval_examples, generator_path, sample_decoding, variant_settings
from flows.lib.generator_eval import evaluate_variant, evaluation_with_references, samples_markdown
from flows.lib.orchestration import task_of
from flows.lib.schemas import atomic_path
from models.generator import load_text_normaliser


@flow(name="gen_eval")
def gen_eval_flow(method: str | None = None) -> dict:
    params = load_params()
    decoding, samples = decoding_settings(params, method), sample_decoding(params)
    persona_every, seed = param(params, "gen.persona_every", int), param(params, "gen.train.seed", int)
    decode_limit, n_resamples = param(params, "gen.eval.decode_examples", int), param(params, "gen.eval.bootstrap", int)
    variants, results = variant_settings(params), {}
    for variant, spec in variants.items():
        examples = eval_examples(params, spec["persona"])
        forced = [e.strategy for e in examples] if spec["oracle_strategy"] else None
        results[variant] = task_of(evaluate_variant)(
            generator_path(params, spec["persona"]), examples, forced, decoding, decode_limit, samples,
            param(params, "gen.eval.sample_contexts", int), persona_every, param(params, "gen.eval.batch_size", int), seed,
            n_resamples, out_path(params, "gen_dir") / "eval" / f"{variant}.json")
    rows = read_json(out_path(params, "gen_reference_outputs"))
    normalise = load_text_normaliser(generator_path(params, next(iter(variants.values()))["persona"]))
    metrics = {**task_of(evaluation_with_references)(results, rows, normalise, decode_limit, n_resamples, seed),
               "decoding": asdict(decoding), "variants": variants}
    write_json(metrics, out_path(params, "gen_eval_metrics"))
    with atomic_path(out_path(params, "gen_samples")) as tmp:
        tmp.write_text(samples_markdown(results, samples) + "\n")
    return metrics


if __name__ == "__main__":
    gen_eval_flow()
