"""Stage `pess_eval`: score the trained extractor's personas against the gold ones.

Reads <paths.pess_dir>/model.pt and the `pess.eval.split` split of the PESS corpus (its first
pess.eval.max_examples examples), decodes with pess.generate and writes the metrics of
flows/lib/extractor_eval.py (similarity P/R/F1 at pess.eval.tau, BLEU, ROUGE, distinct-n,
MiniLM embedding F1, history_nll_gain) to paths.pess_eval_metrics and pess.eval.samples
predictions to paths.pess_eval_samples for reading.
"""
from __future__ import annotations

from prefect import flow

from flows.lib.config import choice, load_params, out_path, param, write_json
from flows.lib.extractor_eval import evaluate_extractor
from flows.lib.orchestration import task_of
from flows.lib.persona_data import split_examples
from flows.lib.pess_params import corpus_settings, run_paths
from models.pess import SentenceScorer, load_extractor


@flow(name="pess_eval")
def pess_eval_flow() -> dict:
    params = load_params()
    split = choice(params, "pess.eval.split", ["train", "val", "test"])
    examples = split_examples(corpus_settings(params), split, param(params, "pess.eval.max_examples", int))
    extractor = load_extractor(run_paths(params)["model_path"], param(params, "pess.generate.num_beams", int))
    scorer = SentenceScorer(extractor.config.sentence_model, extractor.device)
    metrics, rows = task_of(evaluate_extractor)(extractor, examples, scorer, float(param(params, "pess.eval.tau", (int, float))),
                                                param(params, "pess.generate.batch_size", int))
    write_json({"split": split, **metrics}, out_path(params, "pess_eval_metrics"))
    write_json(rows[: param(params, "pess.eval.samples", int)], out_path(params, "pess_eval_samples"))
    return metrics


if __name__ == "__main__":
    pess_eval_flow()
