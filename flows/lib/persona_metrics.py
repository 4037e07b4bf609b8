"""Scores of predicted personas (lists of sentences) against the gold ones, and how far a
prediction is grounded in what the speaker said.

Three matchings of predicted to gold sentences, all scored with the one micro-averaged
definition of flows/lib/extractor_eval.similarity_prf (P = matched predicted / all predicted,
R = gold sentences with a match / all gold, both summed over examples; F1 = 2PR / (P + R)):

- similarity_f1: MiniLM cosine >= tau (models.pess.similarity_sets), the PESS training signal.
- rouge_match_f1: a pair matches when the ROUGE-L F of their content words (stemmed; English
  stop words removed but negations kept) is >= 0.5. It shares nothing with MiniLM, so a model
  trained on MiniLM similarity cannot game it. Content words, because persona sentences share
  templates: on 20,000 random pairs of distinct Synthetic-Persona-Chat persona sentences plain
  ROUGE-L >= 0.5 matches 2.0% ("i am a student" / "i am a doctor"), content-word ROUGE-L 0.33%
  (MiniLM >= 0.7: 0.16%); it still matches 58% of the MiniLM >= 0.7 pairs. No threshold to
  calibrate, unlike GloVe mean vectors, for which no labelled paraphrase pairs exist here.
- exact_f1: equal normalised sentences (models.pess.normalise_sentence).

grounding_rate: the share of predicted sentences (pooled over examples) with MiniLM cosine >=
tau to some sentence of the speaker's own turns (flows.lib.persona_data.speaker_sentences);
it needs no gold, so it also scores ESConv seekers and movie characters.

Every figure comes with a 95% bootstrap interval over examples (flows/lib/bootstrap.py).
Predicted sentences are deduplicated on normalised text first, as persona_sentences does.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from flows.lib.bootstrap import bootstrap
from flows.lib.extractor_eval import similarity_prf
from flows.lib.persona_data import PersonaExample, speaker_sentences
from models.pess import SentenceScorer, SimilaritySets, normalise_sentence, persona_sentences, similarity_sets

ROUGE_MATCH = 0.5
_NEGATIONS = {"no", "not", "never", "nor", "none", "nothing", "nobody", "nowhere", "neither"}


class CachedScorer(SentenceScorer):
    """A SentenceScorer that encodes each distinct sentence once: scoring several predictions of
    the same speakers (references, a k sweep) then encodes their own turns and gold only once."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._vectors: dict[str, np.ndarray] = {}

    def embed(self, sentences: list[str]) -> np.ndarray:
        missing = [s for s in dict.fromkeys(sentences) if s not in self._vectors]
        if missing:
            self._vectors.update(zip(missing, super().embed(missing)))
        return np.stack([self._vectors[s] for s in sentences]) if sentences else super().embed([])


def _distinct(sentences: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    kept = []
    for sentence in sentences:
        key = normalise_sentence(sentence)
        if key and key not in seen:
            seen.add(key)
            kept.append(sentence)
    return kept


@lru_cache(maxsize=1)
def _rouge():
    from rouge_score import rouge_scorer
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True), frozenset(ENGLISH_STOP_WORDS - _NEGATIONS)


@lru_cache(maxsize=100_000)
def _content_words(sentence: str) -> str:
    stop_words = _rouge()[1]
    return " ".join(word for word in re.findall(r"[a-z0-9]+", sentence.lower()) if word not in stop_words)


def rouge_matrix(gold: list[str], predicted: list[str]) -> np.ndarray:
    """[m gold, k predicted] content-word ROUGE-L F."""
    scorer = _rouge()[0]
    return np.array([[scorer.score(_content_words(g), _content_words(p))["rougeL"].fmeasure for p in predicted]
                     for g in gold], dtype=np.float32).reshape(len(gold), len(predicted))


def exact_matrix(gold: list[str], predicted: list[str]) -> np.ndarray:
    """[m gold, k predicted] 1.0 where the normalised sentences are equal."""
    return np.array([[float(normalise_sentence(g) == normalise_sentence(p)) for p in predicted] for g in gold],
                    dtype=np.float32).reshape(len(gold), len(predicted))


def _grounded_counts(predicted: list[list[str]], own_sentences: list[list[str]], scorer: SentenceScorer,
                     tau: float) -> np.ndarray:
    """Per example, how many predicted sentences have an own sentence at cosine >= tau."""
    matrices = scorer.matrices(list(zip(own_sentences, predicted)))  # [own, predicted] each
    return np.array([len(similarity_sets(matrix, tau).consistent) for matrix in matrices], dtype=np.int64)


def grounding_rate(
    predicted: list[list[str]], own_sentences: list[list[str]], scorer: SentenceScorer, tau: float,
    n_resamples: int = 2000, seed: int = 0,
) -> dict[str, Any]:
    """{"n", "grounding_rate", its "_ci95", "sentences_mean"}: the share of predicted sentences
    stated (cosine >= tau) by some own sentence of the same speaker."""
    if len(predicted) != len(own_sentences):
        raise ValueError(f"grounding_rate: {len(predicted)} predictions but {len(own_sentences)} speakers")
    predicted = [_distinct(p) for p in predicted]
    grounded = _grounded_counts(predicted, own_sentences, scorer, tau)
    sizes = np.array([len(p) for p in predicted])

    def statistic(rows: np.ndarray) -> dict[str, float]:
        return {"grounding_rate": grounded[rows].sum() / max(1, sizes[rows].sum()), "sentences_mean": sizes[rows].mean()}

    return bootstrap(statistic, len(predicted), n_resamples, seed)


def score_personas(
    predicted: list[list[str]], examples: Sequence[PersonaExample], scorer: SentenceScorer, tau: float,
    n_resamples: int = 2000, seed: int = 0,
) -> dict[str, Any]:
    """Every figure of the module docstring for predictions aligned with `examples`, each with
    its 95% bootstrap interval; also n, tau and the mean predicted and gold sentences."""
    if len(predicted) != len(examples):
        raise ValueError(f"score_personas: {len(predicted)} predictions but {len(examples)} examples")
    predicted = [_distinct(p) for p in predicted]
    gold = [persona_sentences(e.persona) for e in examples]
    matchings: dict[str, list[SimilaritySets]] = {
        "similarity": [similarity_sets(m, tau) for m in scorer.matrices(list(zip(gold, predicted)))],
        "rouge_match": [similarity_sets(rouge_matrix(g, p), ROUGE_MATCH) for g, p in zip(gold, predicted)],
        "exact": [similarity_sets(exact_matrix(g, p), 1.0) for g, p in zip(gold, predicted)],
    }
    grounded = _grounded_counts(predicted, [speaker_sentences(e.own_turns) for e in examples], scorer, tau)
    sizes = np.array([len(p) for p in predicted])

    def statistic(rows: np.ndarray) -> dict[str, float]:
        picked_gold, picked_predicted = [gold[r] for r in rows], [predicted[r] for r in rows]
        figures: dict[str, float] = {}
        for name, sets in matchings.items():
            prf = similarity_prf(picked_gold, picked_predicted, [sets[r] for r in rows])
            figures.update({f"{name}_{part}": prf[f"similarity_{part}"] for part in ("p", "r", "f1")})
        figures["grounding_rate"] = grounded[rows].sum() / max(1, sizes[rows].sum())
        figures["sentences_mean"] = sizes[rows].mean()
        figures["gold_sentences_mean"] = float(np.mean([len(g) for g in picked_gold]))
        return figures

    return {"tau": tau, **bootstrap(statistic, len(examples), n_resamples, seed)}
