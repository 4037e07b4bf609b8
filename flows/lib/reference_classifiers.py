"""The non-neural references of the trope classification, on the same examples and split as
the AMN (one example = one character's snippets in a split), scored on the test split:

  majority       the most frequent trope among training characters;
  tfidf_logreg   TF-IDF of all the character's own lines (D) + logistic regression;
  minilm_logreg  mean MiniLM embedding of the character's snippets' own lines + logistic regression."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from flows.lib.metrics import classification_metrics
from flows.lib.text_features import MeanSentenceEmbedder, character_documents, tfidf_vectorizer
from flows.lib.trope_data import TropeData, own_line_texts


@dataclass
class BaselineSettings:
    tfidf_max_features: int = 20000
    logreg_c: float = 10.0
    embed_batch_size: int = 64


def character_lines(data: TropeData, split: str) -> tuple[list[list[str]], np.ndarray]:
    """Per character with snippets in `split`: the own-line text of each snippet, and the labels."""
    examples = data.examples(split)
    return own_line_texts(data, [rows for _, rows in examples]), np.array([label for label, _ in examples])


def _logistic_regression(settings: BaselineSettings):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=settings.logreg_c, max_iter=5000)


def run_baselines(data: TropeData, embed_model: str, settings: BaselineSettings) -> dict[str, Any]:
    train_texts, y_train = character_lines(data, "train")
    test_texts, y_test = character_lines(data, "test")
    results: dict[str, Any] = {"examples": {"train": len(y_train), "test": len(y_test)}}

    majority = int(np.bincount(y_train).argmax())
    results["majority"] = classification_metrics(y_test, np.full(len(y_test), majority))

    vectorizer = tfidf_vectorizer(settings.tfidf_max_features)
    x_train = vectorizer.fit_transform(character_documents(train_texts))
    x_test = vectorizer.transform(character_documents(test_texts))
    predicted = _logistic_regression(settings).fit(x_train, y_train).predict(x_test)
    results["tfidf_logreg"] = classification_metrics(y_test, predicted)

    embed = MeanSentenceEmbedder(embed_model, settings.embed_batch_size)
    classifier = _logistic_regression(settings).fit(embed(train_texts), y_train)
    results["minilm_logreg"] = classification_metrics(y_test, classifier.predict(embed(test_texts)))
    return results
