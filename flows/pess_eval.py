"""Stage `pess_eval`: every persona extractor and reference on val, test_seen and test_unseen.

Reads the PESS corpus with its splits (paths.pess_splits), the selector (<paths.pess_dir>/
selector.pt) and the seq2seq extractors (full: <pess_dir>/model.pt, base: <pess_dir>/base/
model.pt); fits the copying references on train (pool size chosen on val among
pess.eval.pool_ks). Scores every system on the first pess.eval.max_examples speakers of each
split (0: all) with flows/lib/persona_metrics.py at pess.eval.tau, each figure with a 95%
interval over speakers (pess.eval.bootstrap resamples), into paths.pess_test_metrics: keys
`val`, `seen_pool` (test_seen) and `unseen_persona` (test_unseen, the headline), each
{system: scores}. pess.eval.samples predictions per system on test_unseen go to
paths.pess_eval_samples for reading.
"""
from __future__ import annotations

from prefect import flow

from flows.lib.config import load_params, out_path, param, write_json
from flows.lib.orchestration import task_of
from flows.lib.persona_benchmark import own_turns_predict, persona_test_table, reference_systems, seq2seq_predict
from flows.lib.persona_data import assigned_examples, examples_of_split, read_split_assignment
from flows.lib.persona_metrics import CachedScorer
from flows.lib.pess_params import corpus_settings, run_paths
from models.pess import load_extractor
from models.persona_selector import PersonaSelector


@flow(name="pess_eval")
def pess_eval_flow() -> dict:
    params = load_params()
    examples = assigned_examples(corpus_settings(params), read_split_assignment(out_path(params, "pess_splits")))
    limit, tau = param(params, "pess.eval.max_examples", int), float(param(params, "pess.eval.tau", (int, float)))
    splits = {split: examples_of_split(examples, split, limit) for split in ("val", "test_seen", "test_unseen")}
    scorer = CachedScorer(param(params, "embed.model", str))
    systems, choices = reference_systems(examples_of_split(examples, "train"), splits["val"], scorer, tau,
                                         param(params, "pess.eval.pool_ks", list))
    systems["select"] = own_turns_predict(PersonaSelector.load(out_path(params, "pess_dir") / "selector.pt", scorer))
    batch_size, num_beams = param(params, "pess.generate.batch_size", int), param(params, "pess.generate.num_beams", int)
    for name, variant in (("base", "base"), ("full", None)):
        systems[name] = seq2seq_predict(load_extractor(run_paths(params, variant)["model_path"], num_beams), batch_size)
    table, samples = task_of(persona_test_table)(systems, splits, scorer, tau, param(params, "pess.eval.bootstrap", int),
                                                 param(params, "pess.train.seed", int), param(params, "pess.eval.samples", int))
    protocol = {"tau": tau, "speakers": {split: len(examples) for split, examples in splits.items()}, **choices,
                "seeds": {"base": [param(params, "pess.train.seed", int)], "full": [param(params, "pess.train.seed", int)]},
                "steps": {"base": param(params, "pess.train.steps", int), "full": param(params, "pess.train.steps", int)},
                "second_encoder": "rouge_match_f1: content-word ROUGE-L >= 0.5 (no encoder, not the training signal)"}
    write_json({"protocol": protocol, **table}, out_path(params, "pess_test_metrics"))
    write_json(samples, out_path(params, "pess_eval_samples"))
    return table


if __name__ == "__main__":
    pess_eval_flow()
