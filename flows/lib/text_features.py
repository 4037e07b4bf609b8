"""The one featuriser of the non-neural references (stages baselines and cluster): a character
is the own lines (D) of its snippets, one text per snippet, read either as TF-IDF of all of them
or as the mean of their unit MiniLM vectors."""
from __future__ import annotations

import numpy as np

from models.runtime import load_sentence_model
from models.vocab import tokenize


def tfidf_vectorizer(max_features: int):
    """TF-IDF over the GloVe tokens the AMN reads (sublinear tf); fit it on one text per character."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(tokenizer=tokenize, lowercase=False, token_pattern=None, sublinear_tf=True,
                           max_features=max_features)


def character_documents(texts: list[list[str]]) -> list[str]:
    """One document per character: its snippets' texts, one per line."""
    return ["\n".join(snippets) for snippets in texts]


class MeanSentenceEmbedder:
    """Mean of the unit sentence vectors of a character's snippet texts; the encoder loads once."""

    def __init__(self, model_name: str, batch_size: int):
        self.encoder = load_sentence_model(model_name)
        self.batch_size = batch_size

    def __call__(self, texts: list[list[str]]) -> np.ndarray:
        """[n_characters, dim] from per-character lists of texts."""
        flat = [text for snippets in texts for text in snippets]
        vectors = self.encoder.encode(flat, batch_size=self.batch_size, normalize_embeddings=True,
                                      convert_to_numpy=True, show_progress_bar=False)
        bounds = np.cumsum([0] + [len(snippets) for snippets in texts])
        return np.stack([vectors[start:end].mean(0) for start, end in zip(bounds[:-1], bounds[1:])])
