"""Stage pess_eval: score the trained extractor's personas against the gold ones.

Metrics (metrics/pess_eval.json): sacreBLEU (0-100, lower-cased: the MiniLM tokenizer is
uncased), ROUGE-1/2/L F, distinct-1/2 of the generated personas, the MiniLM embedding
P/R/F1 (BERTScore-like, not BERTScore: flows/lib/text_metrics.py), and similarity P/R/F1 at
pess.eval.tau, micro-averaged over the split:

    P = sum |C| / sum k,   R = sum (m - |M|) / sum m,   F1 = 2PR / (P + R)

(k generated and m gold sentences per example, C and M as in models/pess.py). Whether the
extractor reads its input at all: history_nll_gain, the gold personas' NLL under other
examples' histories minus under their own (PersonaExtractor.history_reliance); near 0 means
one persona for everybody, whatever the other scores. A few predictions go to
reports/pess_eval_samples.json for reading.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from prefect import flow

from flows.lib.config import choice, load_params, param, write_json
from flows.lib.errors import PipelineInputError
from flows.lib.orchestration import fingerprint, run_stage, stage_task
from flows.lib.persona_data import PersonaExample, load_persona_examples
from flows.pess_train import corpus_settings, run_paths
from flows.lib.text_metrics import bleu, distinct, minilm_embedding_f1, rouge
from models.pess import PersonaExtractor, SentenceScorer, SimilaritySets, persona_sentences, similarity_sets
from models.runtime import load_checkpoint, pick_device

METRICS_PATH = "metrics/pess_eval.json"
SAMPLES_PATH = "reports/pess_eval_samples.json"


def load_extractor(model_path: str, num_beams: int | None = None, device: str = "auto") -> PersonaExtractor:
    extractor = PersonaExtractor.from_checkpoint(load_checkpoint(model_path))
    if num_beams is not None:
        extractor.config = replace(extractor.config, num_beams=num_beams)
    return extractor.to(pick_device(device)).eval()


def generate_all(extractor: PersonaExtractor, histories: list[str], batch_size: int) -> list[str]:
    return [text for start in range(0, len(histories), batch_size) for text in extractor.generate(histories[start : start + batch_size])]


def similarity_prf(gold: list[list[str]], generated: list[list[str]], sets: list[SimilaritySets]) -> dict[str, float]:
    consistent = sum(len(s.consistent) for s in sets)
    covered = sum(len(g) - len(s.missing) for g, s in zip(gold, sets))
    precision = consistent / max(1, sum(len(k) for k in generated))
    recall = covered / max(1, sum(len(g) for g in gold))
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"similarity_p": precision, "similarity_r": recall, "similarity_f1": f1}


def evaluate_extractor(
    extractor: PersonaExtractor, examples: list[PersonaExample], scorer: SentenceScorer, tau: float, batch_size: int
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """(metrics, per-example predictions) of the extractor on `examples`."""
    predictions = generate_all(extractor, [e.history for e in examples], batch_size)
    references = [e.persona for e in examples]
    gold = [persona_sentences(text) for text in references]
    generated = [persona_sentences(text) for text in predictions]
    sets = [similarity_sets(matrix, tau) for matrix in scorer.matrices(list(zip(gold, generated)))]
    metrics = {
        "examples": len(examples),
        "tau": tau,
        **similarity_prf(gold, generated, sets),
        "bleu": bleu(predictions, references, lowercase=True),
        **rouge(predictions, references),
        "distinct_1": distinct(predictions, 1),
        "distinct_2": distinct(predictions, 2),
        **minilm_embedding_f1(predictions, references, scorer.encoder),
        "generated_sentences_mean": float(np.mean([len(k) for k in generated])) if generated else 0.0,
        **extractor.history_reliance([e.history for e in examples], references, batch_size),
    }
    rows = [
        {"example_id": e.example_id, "gold": g, "generated": k, "consistent": s.consistent, "missing": s.missing}
        for e, g, k, s in zip(examples, gold, generated, sets)
    ]
    return metrics, rows


def evaluation_examples(corpus: dict[str, Any], split: str, max_examples: int) -> list[PersonaExample]:
    examples = [e for e in load_persona_examples(**corpus) if e.split == split]
    if not examples:
        raise PipelineInputError(f"params.yaml: the '{split}' split of pess.files is empty (see pess.split)")
    return examples[:max_examples] if max_examples > 0 else examples


def evaluate_pess(
    model_path: str,
    model_hash: dict[str, str],
    corpus: dict[str, Any],
    data_hashes: dict[str, str],
    split: str,
    max_examples: int,
    tau: float,
    num_beams: int,
    batch_size: int,
    n_samples: int,
    metrics_path: str,
    samples_path: str,
) -> str:
    """Pure stage body; the hashes only key the cache."""
    examples = evaluation_examples(corpus, split, max_examples)
    extractor = load_extractor(model_path, num_beams)
    scorer = SentenceScorer(extractor.config.sentence_model, extractor.device)
    metrics, rows = evaluate_extractor(extractor, examples, scorer, tau, batch_size)
    write_json({"split": split, **metrics}, metrics_path)
    write_json(rows[:n_samples], samples_path)
    return metrics_path


evaluate_pess_task = stage_task(evaluate_pess)


@flow(name="pess_eval")
def pess_eval_flow() -> str:
    params = load_params()
    model_path = run_paths()["model_path"]
    corpus = corpus_settings(params)
    return run_stage(
        evaluate_pess_task,
        outputs=[METRICS_PATH, SAMPLES_PATH],
        model_path=model_path,
        model_hash=fingerprint(model_path),
        corpus=corpus,
        data_hashes=fingerprint(*corpus["paths"]),
        split=choice(params, "pess.eval.split", ["train", "val", "test"]),
        max_examples=param(params, "pess.eval.max_examples", int),
        tau=float(param(params, "pess.eval.tau", (int, float))),
        num_beams=param(params, "pess.generate.num_beams", int),
        batch_size=param(params, "pess.generate.batch_size", int),
        n_samples=param(params, "pess.eval.samples", int),
        metrics_path=METRICS_PATH,
        samples_path=SAMPLES_PATH,
    )


if __name__ == "__main__":
    pess_eval_flow()
