"""Scores of a PESS extractor's personas against the gold ones, and the sweep that trains and
scores many extractors.

Metrics: sacreBLEU (0-100, lower-cased: the MiniLM tokenizer is uncased), ROUGE-1/2/L F,
distinct-1/2 of the generated personas, the MiniLM embedding P/R/F1 (BERTScore-like, not
BERTScore: flows/lib/text_metrics.py), and similarity P/R/F1 at tau, micro-averaged:

    P = sum |C| / sum k,   R = sum (m - |M|) / sum m,   F1 = 2PR / (P + R)

(k generated and m gold sentences per example, C and M as in models/pess.py). Whether the
extractor reads its input at all: history_nll_gain, the gold personas' NLL under other
examples' histories minus under their own (PersonaExtractor.history_reliance); near 0 means
one persona for everybody, whatever the other scores.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from flows.lib.config import write_json
from flows.lib.persona_data import PersonaExample
from flows.lib.text_metrics import bleu, distinct, minilm_embedding_f1, rouge
from models.pess import (PersonaExtractor, SentenceScorer, SimilaritySets, generate_all, persona_sentences, similarity_sets,
                         train_extractor)
from models.trainer import run_files


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


def train_and_score(
    runs: dict[str, dict[str, Any]],
    train: list[PersonaExample],
    evaluation: list[PersonaExample],
    split: str,
    eval_tau: float,
    batch_size: int,
    sweep_dir: str | Path,
    metrics_path: str | Path,
) -> dict[str, Any]:
    """Train every run (name -> {variant, tau, seed, config, settings}) in <sweep_dir>/<name>/
    (resumable: models.trainer.run_files) and score it on `evaluation` at the fixed eval_tau, so that rows compare
    training settings, not scoring thresholds; the results so far go to metrics_path after
    each run, so a killed sweep loses at most the run in hand."""
    results: dict[str, Any] = {}
    scorer = None
    for name, run in runs.items():
        config, settings = run["config"], run["settings"]
        run_dir = Path(sweep_dir) / name
        summary = train_extractor(train, config, settings, run_dir)
        extractor = PersonaExtractor.load(run_files(run_dir)[0])
        scorer = scorer or SentenceScorer(config.sentence_model, extractor.device)
        metrics, _ = evaluate_extractor(extractor, evaluation, scorer, eval_tau, batch_size)
        results[name] = {
            "variant": run["variant"],
            "train_tau": run["tau"],
            "seed": run["seed"],
            "steps": settings.steps,
            "split": split,
            "parameters": summary["parameters"],
            **metrics,
        }
        write_json(results, metrics_path)
    return results
