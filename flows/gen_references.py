"""Stage `gen_references`: the simple references beside the PESS-GEN generator on ESConv.

Fits on every supporter turn of the train file, chooses on valid (the strategy classifier's C
and features, the retrieval context window: gen.references) and predicts every supporter turn
of the gen.eval.split split (flows/lib/support_references.py): majority and prior strategy, a
strategy classifier (MiniLM context + logistic regression) and a retrieval reply (the training
supporter turn with the nearest context). Writes the retriever to paths.gen_retriever (the
supporter `personas chat` uses when no trained generator is named), the per-example predictions
to paths.gen_reference_outputs (scored by gen_eval with the generators' code) and the val
choices to paths.gen_references_metrics. Context vectors are cached in
paths.snippet_embeddings' folder (a rerun on unchanged text loads no model).
"""
from __future__ import annotations

from prefect import flow

from flows.lib.config import load_params, out_path, param, write_json
from flows.lib.esconv_examples import load_strategies, split_examples
from flows.lib.orchestration import task_of
from flows.lib.pess_params import esconv_dir
from flows.lib.support_references import ReferenceSettings, context_embedder, run_support_references


@flow(name="gen_references")
def gen_references_flow() -> dict:
    params = load_params()
    strategies = load_strategies(esconv_dir(params) / "strategy.json")
    context_turns, persona_every = param(params, "gen.context_turns", int), param(params, "gen.persona_every", int)
    train, val, test = (split_examples(esconv_dir(params), "", "none", split, limit, strategies, context_turns, persona_every)
                        for split, limit in (("train", param(params, "gen.conversations.train", int)), ("val", param(params, "gen.conversations.val", int)),
                                             (param(params, "gen.eval.split", str), param(params, "gen.conversations.test", int))))
    settings = ReferenceSettings(context_turns=context_turns, windows=param(params, "gen.references.windows", list),
                                 classifier_window=param(params, "gen.references.classifier_window", int),
                                 c_grid=param(params, "gen.references.c_grid", list), seed=param(params, "gen.references.seed", int))
    embed = context_embedder(out_path(params, "context_embeddings"), param(params, "embed.model", str))
    summary, rows, retriever = task_of(run_support_references)(train, val, test, strategies, embed, settings)
    retriever.save(out_path(params, "gen_retriever"))
    write_json(rows, out_path(params, "gen_reference_outputs"))
    write_json(summary, out_path(params, "gen_references_metrics"))
    return summary


if __name__ == "__main__":
    gen_references_flow()
