"""metrics/pess_test.json: every persona extractor and reference on the same speakers of every
split, scored by one function (flows/lib/persona_metrics.py).

Systems predict from the speaker's dialogue only:
- retrieval, pool_prior (flows/lib/persona_references.py): copy training personas;
- extractive (flows/lib/persona_extractive.py): the speaker's own self-statements, as written;
- select (models/persona_selector.py): a trained selector of the speaker's own sentences;
- base, full (models/pess.py): seq2seq extractors without and with the PESS losses, reading the
  history the way they were trained (own turns, and partner turns when pess.include_partner).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from flows.lib.persona_data import PersonaExample
from flows.lib.persona_extractive import ExtractiveExtractor
from flows.lib.persona_metrics import score_personas
from flows.lib.persona_references import pool_prior_personas, retrieval_personas, tune_pool_k
from models.pess import PersonaExtractor, SentenceScorer, generate_all, persona_sentences
from models.persona_selector import PersonaSelector

Predict = Callable[[Sequence[PersonaExample]], list[list[str]]]
SPLIT_NAMES = {"val": "val", "test_seen": "seen_pool", "test_unseen": "unseen_persona"}  # split -> pess_test.json key


def seq2seq_predict(extractor: PersonaExtractor, batch_size: int) -> Predict:
    return lambda examples: [persona_sentences(text) for text in generate_all(extractor, [e.history for e in examples],
                                                                                batch_size)]


def own_turns_predict(extractor: ExtractiveExtractor | PersonaSelector) -> Predict:
    return lambda examples: extractor.extract([list(e.own_turns) for e in examples])


def reference_systems(train: Sequence[PersonaExample], val: Sequence[PersonaExample], scorer: SentenceScorer, tau: float,
                      pool_ks: Sequence[int]) -> tuple[dict[str, Predict], dict[str, Any]]:
    """The copying references and the rule, fitted on train (pool size chosen on val)."""
    k, _ = tune_pool_k(train, val, scorer, tau, pool_ks)
    systems = {
        "retrieval": lambda examples: retrieval_personas(train, examples),
        "pool_prior": lambda examples: pool_prior_personas(train, len(examples), k),
        "extractive": own_turns_predict(ExtractiveExtractor()),
    }
    return systems, {"pool_prior_k": k}


def persona_test_table(systems: dict[str, Predict], splits: dict[str, Sequence[PersonaExample]], scorer: SentenceScorer,
                       tau: float, n_resamples: int, seed: int, samples: int = 0
                       ) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """({split key: {system: scores}}, samples): every system's predictions on every split,
    scored alike, and each system's personas for the first `samples` speakers of the last split."""
    table: dict[str, dict[str, Any]] = {}
    for split, examples in splits.items():
        predictions = {name: predict(examples) for name, predict in systems.items()}
        table[SPLIT_NAMES.get(split, split)] = {name: score_personas(predicted, examples, scorer, tau, n_resamples, seed)
                                                for name, predicted in predictions.items()}
    shown = [{"example_id": e.example_id, "own_turns": list(e.own_turns), "gold": persona_sentences(e.persona),
              "systems": {name: predicted[n] for name, predicted in predictions.items()}}
             for n, e in enumerate(list(examples)[:samples])]
    return table, shown
