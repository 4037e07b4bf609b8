"""Stage `baselines`: three non-neural reference scores on the same examples and split as
`train` (one example = one character's snippets in a split), scored on the test split:

  majority       the most frequent trope among training characters;
  tfidf_logreg   TF-IDF of all the character's own lines (D) + logistic regression;
  minilm_logreg  mean MiniLM embedding of the character's snippets' own lines + logistic regression.

Writes metrics/baselines.json."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from prefect import flow

from flows.lib.config import load_params, param, write_json
from flows.lib.orchestration import fingerprint, run_stage, stage_task
from flows.train import TropeData, classification_metrics, load_trope_data, table_paths
from models.runtime import load_sentence_model
from models.vocab import tokenize

METRICS_PATH = Path("metrics/baselines.json")


@dataclass
class BaselineSettings:
    tfidf_max_features: int = 20000
    logreg_c: float = 10.0
    embed_batch_size: int = 64


def character_lines(data: TropeData, split: str) -> tuple[list[list[str]], np.ndarray]:
    """Per character with snippets in `split`: the own-line text of each snippet, and the labels."""
    examples = data.examples(split)
    texts = [[" ".join(data.lines["D"][row]) for row in rows] for _, rows in examples]
    return texts, np.array([label for label, _ in examples])


def _logistic_regression(settings: BaselineSettings):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=settings.logreg_c, max_iter=5000)


def run_baselines(data: TropeData, embed_model: str, settings: BaselineSettings) -> dict[str, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    train_texts, y_train = character_lines(data, "train")
    test_texts, y_test = character_lines(data, "test")
    results: dict[str, Any] = {"examples": {"train": len(y_train), "test": len(y_test)}}

    majority = int(np.bincount(y_train).argmax())
    results["majority"] = classification_metrics(y_test, np.full(len(y_test), majority))

    vectorizer = TfidfVectorizer(tokenizer=tokenize, lowercase=False, token_pattern=None, sublinear_tf=True,
                                 max_features=settings.tfidf_max_features)
    x_train = vectorizer.fit_transform("\n".join(texts) for texts in train_texts)
    x_test = vectorizer.transform("\n".join(texts) for texts in test_texts)
    predicted = _logistic_regression(settings).fit(x_train, y_train).predict(x_test)
    results["tfidf_logreg"] = classification_metrics(y_test, predicted)

    encoder = load_sentence_model(embed_model)

    def mean_embeddings(per_character: list[list[str]]) -> np.ndarray:
        flat = [text for texts in per_character for text in texts]
        vectors = encoder.encode(flat, batch_size=settings.embed_batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False)
        bounds = np.cumsum([0] + [len(texts) for texts in per_character])
        return np.stack([vectors[a:b].mean(0) for a, b in zip(bounds[:-1], bounds[1:])])

    classifier = _logistic_regression(settings).fit(mean_embeddings(train_texts), y_train)
    results["minilm_logreg"] = classification_metrics(y_test, classifier.predict(mean_embeddings(test_texts)))
    return results


@stage_task
def baselines_stage(
    snippets_path: str, characters_path: str, tropes_path: str, embed_model: str, settings: dict[str, Any],
    inputs_hash: dict[str, str], metrics_path: str,
) -> dict[str, Any]:
    data = load_trope_data(snippets_path, characters_path, tropes_path)
    results = run_baselines(data, embed_model, BaselineSettings(**settings))
    write_json(results, metrics_path)
    return results


@flow(name="baselines_flow")
def baselines_flow() -> dict[str, Any]:
    params = load_params()
    paths = table_paths(params)
    settings = BaselineSettings(
        tfidf_max_features=param(params, "baselines.tfidf_max_features", int),
        logreg_c=float(param(params, "baselines.logreg_c", (int, float))),
        embed_batch_size=param(params, "baselines.embed_batch_size", int),
    )
    return run_stage(
        baselines_stage,
        outputs=[METRICS_PATH],
        **paths,
        embed_model=param(params, "embed.model", str),
        settings=asdict(settings),
        inputs_hash=fingerprint(*paths.values()),
        metrics_path=str(METRICS_PATH),
    )


if __name__ == "__main__":
    baselines_flow()
