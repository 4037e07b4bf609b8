"""The simple references of the unseen-character table, on the same masked snippets as the AMN.
Each supervised one picks its C on val (trained on train), is refitted with that C on train +
val and reads test once; every one returns trope scores [n_test, n_tropes].

  majority                the tropes most frequent among the fitted characters;
  tfidf_lr                TF-IDF of all of a character's snippets + logistic regression;
  minilm_lr               mean MiniLM vector of the character's snippets + logistic regression;
  zero_shot_descriptions  cosine of that mean vector with each trope text's vector: no label used;
  minilm_lr_zero_shot     minilm_lr's probabilities mixed with softmax(zero-shot cosines / T),
                          weight and T picked on val: the two carry different evidence.

A character with k tropes is k training rows of weight 1/k."""
from __future__ import annotations

import numpy as np

from flows.lib.trope_scoring import ranked_from_scores, score_ranked


def expand_multilabel(x, gold: list[list[int]]):
    """One row per (character, trope), weight 1/k: rows of x, labels, weights."""
    rows = np.array([i for i, g in enumerate(gold) for _ in g])
    labels = np.array([t for g in gold for t in g])
    weights = np.array([1.0 / len(g) for g in gold for _ in g])
    return x[rows], labels, weights


def logreg_scores(x_fit, gold_fit: list[list[int]], x_eval, n_tropes: int, c: float) -> np.ndarray:
    """Class probabilities [n_eval, n_tropes]; tropes absent from the fit score 0."""
    from sklearn.linear_model import LogisticRegression

    x, labels, weights = expand_multilabel(x_fit, gold_fit)
    model = LogisticRegression(C=c, max_iter=3000).fit(x, labels, sample_weight=weights)
    scores = np.zeros((x_eval.shape[0], n_tropes))
    scores[:, model.classes_] = model.predict_proba(x_eval)
    return scores


def val_accuracy_key(gold: list[list[int]], scores: np.ndarray) -> tuple[float, float]:
    """What val maximises: accuracy, then top-5 accuracy."""
    point = score_ranked(gold, ranked_from_scores(scores), n_resamples=1)
    return point["accuracy"], point["top5_accuracy"]


def tuned_logreg(
    x_all, gold_all: list[list[int]], train: np.ndarray, val: np.ndarray, test: np.ndarray, n_tropes: int,
    cs: list[float],
) -> tuple[np.ndarray, dict, np.ndarray]:
    """Pick C on val (fit on train), refit on train + val, score test.
    -> (test scores, choice, val scores of the chosen C)."""
    gold_of = lambda idx: [gold_all[i] for i in idx]  # noqa: E731
    val_scores = {c: logreg_scores(x_all[train], gold_of(train), x_all[val], n_tropes, c) for c in cs}
    tried = {c: val_accuracy_key(gold_of(val), val_scores[c]) for c in cs}
    best = max(cs, key=lambda c: (tried[c], -c))
    fit = np.concatenate([train, val])
    scores = logreg_scores(x_all[fit], gold_of(fit), x_all[test], n_tropes, best)
    choice = {"C": best, "val": {str(c): {"accuracy": a, "top5_accuracy": t} for c, (a, t) in tried.items()}}
    return scores, choice, val_scores[best]


MIX_WEIGHTS = (0.25, 0.5, 0.75)
MIX_TEMPERATURES = (0.025, 0.05, 0.1)


def mixed_scores(probabilities: np.ndarray, cosines: np.ndarray, weight: float, temperature: float) -> np.ndarray:
    """weight * softmax(cosines / temperature) + (1 - weight) * probabilities."""
    logits = cosines / temperature
    zero_shot = np.exp(logits - logits.max(1, keepdims=True))
    return weight * zero_shot / zero_shot.sum(1, keepdims=True) + (1 - weight) * probabilities


def tuned_mix(gold_val: list[list[int]], val_pair: tuple[np.ndarray, np.ndarray],
              test_pair: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, dict]:
    """Pick (weight, temperature) of mixed_scores on val; -> (test scores, choice)."""
    grid = [(w, t) for w in MIX_WEIGHTS for t in MIX_TEMPERATURES]
    tried = {pair: val_accuracy_key(gold_val, mixed_scores(*val_pair, *pair)) for pair in grid}
    weight, temperature = max(grid, key=lambda pair: tried[pair])
    return mixed_scores(*test_pair, weight, temperature), {"weight": weight, "temperature": temperature}


def tfidf_matrix(texts: list[str], fit_rows: np.ndarray):
    """TF-IDF fitted on the rows a model trains on (words of val/test characters add nothing)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=2, max_features=50000, ngram_range=(1, 2))
    vectorizer.fit([texts[i] for i in fit_rows])
    return vectorizer.transform(texts)


def majority_scores(gold_fit: list[list[int]], n_test: int, n_tropes: int) -> np.ndarray:
    counts = np.zeros(n_tropes)
    for g in gold_fit:
        counts[g] += 1.0 / len(g)
    return np.tile(counts, (n_test, 1))


def zero_shot_scores(mean_vectors: np.ndarray, trope_vectors: np.ndarray) -> np.ndarray:
    """Cosine of each character's mean snippet vector with each trope text's vector, both
    centred on their own mean first (the average character and the average trope text say
    nothing about a particular trope; no label is read)."""
    characters = mean_vectors - mean_vectors.mean(0)
    tropes = trope_vectors - trope_vectors.mean(0)
    characters /= np.linalg.norm(characters, axis=1, keepdims=True).clip(1e-9)
    tropes /= np.linalg.norm(tropes, axis=1, keepdims=True).clip(1e-9)
    return characters @ tropes.T
