"""The simple references a persona extractor must beat, on the same speakers:

- retrieval: the persona of the training speaker whose own turns are nearest (TF-IDF cosine,
  flows/lib/text_features.py) to the query speaker's own turns;
- pool prior: the k persona sentences most training speakers have, the same for everybody.

Both only copy training personas. On the persona-disjoint val / test_unseen splits
(flows/lib/persona_splits.py) no gold sentence has a training paraphrase at tau, so their
similarity F1 there is 0 by construction; on test_seen they show what copying is worth.
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np

from flows.lib.persona_data import PersonaExample
from flows.lib.persona_metrics import score_personas
from flows.lib.text_features import tfidf_vectorizer
from models.pess import SentenceScorer, persona_sentences


def retrieval_personas(
    train: Sequence[PersonaExample], queries: Sequence[PersonaExample], max_features: int | None = None
) -> list[list[str]]:
    """Per query, the persona sentences of the training speaker with the most similar own turns
    (TF-IDF fit on the training speakers, one document of own turns each; ties: first speaker)."""
    vectorizer = tfidf_vectorizer(max_features)
    train_matrix = vectorizer.fit_transform(["\n".join(e.own_turns) for e in train])  # [n_train, vocab], unit rows
    query_matrix = vectorizer.transform(["\n".join(e.own_turns) for e in queries])  # [n_queries, vocab]
    nearest = np.asarray((query_matrix @ train_matrix.T).argmax(axis=1)).ravel()
    return [persona_sentences(train[int(n)].persona) for n in nearest]


def pool_prior_personas(train: Sequence[PersonaExample], n_queries: int, k: int) -> list[list[str]]:
    """The k persona sentences the most training speakers have (ties: alphabetical), once per query."""
    counts = Counter(s for e in train for s in persona_sentences(e.persona))
    pool = sorted(counts, key=lambda s: (-counts[s], s))[:k]
    return [list(pool) for _ in range(n_queries)]


def tune_pool_k(
    train: Sequence[PersonaExample], val: Sequence[PersonaExample], scorer: SentenceScorer, tau: float,
    ks: Sequence[int], n_resamples: int = 200, seed: int = 0,
) -> tuple[int, dict[int, dict]]:
    """(chosen k, val scores per k): the k with the best val similarity F1, then ROUGE-match F1
    (similarity F1 is 0 for every k on a persona-disjoint val), then the smaller k."""
    scores = {k: score_personas(pool_prior_personas(train, len(val), k), val, scorer, tau, n_resamples, seed)
              for k in ks}
    best = max(ks, key=lambda k: (scores[k]["similarity_f1"], scores[k]["rouge_match_f1"], -k))
    return best, scores
