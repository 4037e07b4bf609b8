"""The simple references beside the PESS-GEN response generator on ESConv: whatever the
generator scores means something only beside these, on the same supporter turns.

Strategy (one predicted token per supporter turn):
  majority_strategy   the most frequent training strategy, always;
  prior_strategy      strategies drawn from the training distribution (seeded); its expected
                      accuracy is sum_s p_train(s) p_test(s) (expected_prior_accuracy);
  StrategyClassifier  MiniLM embedding of the context text + logistic regression, C (and whether
                      to add the previous supporter strategy as a one-hot) chosen on val.
Reply:
  RetrievalSupporter  the training supporter turn whose context is the most similar (cosine of
                      MiniLM vectors): its response and strategy. How many of the latest context
                      turns the embedding reads (1, 2 or all) is chosen on val by ROUGE-L. It
                      saves to one .npz (vectors + a JSON record) so `personas chat` loads it
                      without embedding the training set again.

A context is the SupportExample's context turns as "seeker: … supporter: …" text, oldest
first, without the strategies (the one-hot feature carries the previous one where val wants it).
MiniLM reads the first 256 word pieces: about 4% of 6-turn contexts are longer and lose their end.
"""
from __future__ import annotations

import json
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from flows.lib.embedding_cache import cached_vectors, embed_with_cache, sentence_encoder
from flows.lib.errors import PipelineInputError
from flows.lib.esconv_examples import SupportExample
from flows.lib.schemas import atomic_path
from flows.lib.text_metrics import rouge
from models.generator import SEEKER, SUPPORTER, Turn
from models.runtime import SENTENCE_MODEL

ALL_TURNS = 0  # a context window of all the example's context turns
RETRIEVER_FORMAT = "support-retriever-1"

Embed = Callable[[list[str]], np.ndarray]  # texts -> unit vectors [n, dim]


def context_text(context: Sequence[Turn], last: int = ALL_TURNS) -> str:
    """The latest `last` turns (ALL_TURNS: every one) as speaker-tagged text, oldest first."""
    turns = context[-last:] if last else context
    return " ".join(f"{turn.speaker}: {turn.text}" for turn in turns)


def context_embedder(cache_path: str | Path | None, model_name: str = SENTENCE_MODEL, batch_size: int = 64,
                     chunk: int = 4096) -> Embed:
    """Unit MiniLM vectors of texts. With a cache (flows/lib/embedding_cache.py) the texts it
    lacks are encoded `chunk` at a time, each chunk saved before the next, and a rerun on
    unchanged texts loads no model; without one every call encodes."""
    encode = sentence_encoder(model_name, batch_size)
    if cache_path is None:
        return lambda texts: np.asarray(encode(texts), dtype=np.float32)

    def embed(texts: list[str]) -> np.ndarray:
        distinct = list(dict.fromkeys(texts))
        for start in range(0, len(distinct), chunk):
            embed_with_cache(distinct[start:start + chunk], cache_path, model_name, encode)
        return cached_vectors(texts, cache_path, model_name)

    return embed


# --- strategy references ---------------------------------------------------------------------


def majority_strategy(train: Sequence[SupportExample], examples: Sequence[SupportExample]) -> list[str]:
    """The most frequent training strategy for every example (a tie: the first seen in training)."""
    mode = Counter(example.strategy for example in train).most_common(1)[0][0]
    return [mode] * len(examples)


def strategy_distribution(examples: Sequence[SupportExample], strategies: Sequence[str]) -> np.ndarray:
    """p(s) over `strategies` (in their order) among the examples' gold strategies."""
    counts = Counter(example.strategy for example in examples)
    return np.array([counts[s] for s in strategies], dtype=float) / max(1, len(examples))


def prior_strategy(train: Sequence[SupportExample], examples: Sequence[SupportExample], strategies: Sequence[str],
                   seed: int) -> list[str]:
    """A strategy drawn per example from the training distribution."""
    rng = np.random.default_rng(seed)
    drawn = rng.choice(len(strategies), size=len(examples), p=strategy_distribution(train, strategies))
    return [strategies[i] for i in drawn]


def expected_prior_accuracy(train: Sequence[SupportExample], examples: Sequence[SupportExample],
                            strategies: Sequence[str]) -> float:
    """sum_s p_train(s) p_examples(s): prior_strategy's accuracy in expectation over draws."""
    return float(strategy_distribution(train, strategies) @ strategy_distribution(examples, strategies))


def previous_strategy(context: Sequence[Turn]) -> str:
    """The strategy of the latest supporter turn in the context ("" when there is none)."""
    return next((turn.strategy for turn in reversed(context) if turn.speaker == SUPPORTER), "")


@dataclass
class StrategyClassifier:
    """Logistic regression on the context's MiniLM vector [n, 384], optionally with a one-hot of
    the previous supporter strategy [n, len(strategies) + 1] (the last column: none in context).
    `fit` tries every (C, previous-strategy) pair on val and keeps the best by val accuracy,
    fitted on train alone."""

    strategies: Sequence[str]
    c_grid: Sequence[float] = (0.01, 0.03, 0.1, 0.3, 1.0, 10.0)
    previous_options: Sequence[bool] = (False, True)
    max_iter: int = 2000
    c: float = 0.0  # chosen on val
    use_previous: bool = False  # chosen on val
    val_accuracy: dict[str, float] = field(default_factory=dict)  # "C=…,previous=…" -> val accuracy
    model: Any = None

    def features(self, examples: Sequence[SupportExample], vectors: np.ndarray, use_previous: bool) -> np.ndarray:
        if not use_previous:
            return vectors
        column = {s: i for i, s in enumerate(self.strategies)}
        one_hot = np.zeros((len(examples), len(self.strategies) + 1), dtype=vectors.dtype)
        for row, example in enumerate(examples):
            one_hot[row, column.get(previous_strategy(example.context), len(self.strategies))] = 1.0
        return np.hstack([vectors, one_hot])

    def _fit_one(self, c: float, x: np.ndarray, y: Sequence[str]):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=c, max_iter=self.max_iter).fit(x, list(y))

    def fit(self, train: Sequence[SupportExample], train_vectors: np.ndarray,
            val: Sequence[SupportExample], val_vectors: np.ndarray) -> "StrategyClassifier":
        y_train, y_val = [e.strategy for e in train], np.array([e.strategy for e in val])
        best = None
        for use_previous in self.previous_options:
            x_train = self.features(train, train_vectors, use_previous)
            x_val = self.features(val, val_vectors, use_previous)
            for c in self.c_grid:
                model = self._fit_one(c, x_train, y_train)
                accuracy = float(np.mean(model.predict(x_val) == y_val))
                self.val_accuracy[f"C={c},previous={use_previous}"] = round(accuracy, 4)
                if best is None or accuracy > best[0]:
                    best = (accuracy, c, use_previous, model)
        _, self.c, self.use_previous, self.model = best
        return self

    def predict(self, examples: Sequence[SupportExample], vectors: np.ndarray) -> list[str]:
        return [str(s) for s in self.model.predict(self.features(examples, vectors, self.use_previous))]


# --- retrieval reply -------------------------------------------------------------------------


class RetrievalSupporter:
    """The training supporter turns as (unit context vector, strategy, response); a new context
    gets the turn whose context vector has the highest cosine (the first such on a tie)."""

    def __init__(self, vectors: np.ndarray, strategies: Sequence[str], responses: Sequence[str], window: int,
                 context_turns: int, model_name: str = SENTENCE_MODEL):
        if not (len(vectors) == len(strategies) == len(responses)):
            raise ValueError(f"{len(vectors)} vectors, {len(strategies)} strategies, {len(responses)} responses")
        self.vectors = np.asarray(vectors, dtype=np.float32)  # [n_train, dim], unit rows
        self.strategies, self.responses = list(strategies), list(responses)
        self.window = window  # latest context turns the embedding reads (ALL_TURNS: all)
        self.context_turns = context_turns  # turns before the reply that make its context (gen.context_turns)
        self.model_name = model_name
        self._encode: Embed | None = None  # respond(): the sentence model, loaded on first use

    @classmethod
    def fit(cls, train: Sequence[SupportExample], embed: Embed, window: int, context_turns: int,
            model_name: str = SENTENCE_MODEL) -> "RetrievalSupporter":
        vectors = embed([context_text(e.context, window) for e in train])
        return cls(vectors, [e.strategy for e in train], [e.response for e in train], window, context_turns, model_name)

    def nearest(self, query_vectors: np.ndarray) -> np.ndarray:
        """[n_queries] row of the most similar training context, in blocks to bound memory."""
        rows = [np.argmax(block @ self.vectors.T, axis=1) for block in np.array_split(
            np.asarray(query_vectors, dtype=np.float32), max(1, len(query_vectors) // 1024))]
        return np.concatenate(rows) if rows else np.zeros(0, dtype=int)

    def predict(self, examples: Sequence[SupportExample], embed: Embed) -> tuple[list[str], list[str]]:
        """(strategies, responses) retrieved for the examples' contexts."""
        rows = self.nearest(embed([context_text(e.context, self.window) for e in examples]))
        return [self.strategies[i] for i in rows], [self.responses[i] for i in rows]

    def respond(self, turns: Sequence[tuple[str, str]]) -> tuple[str, str]:
        """A live chat's reply: turns are (seeker | supporter, text), oldest first."""
        if not turns:
            raise ValueError("respond: no turns to reply to")
        for speaker, _ in turns:
            if speaker not in (SEEKER, SUPPORTER):
                raise ValueError(f"respond: speaker {speaker!r} is neither {SEEKER} nor {SUPPORTER}")
        if self._encode is None:
            self._encode = context_embedder(None, self.model_name)
        context = [Turn(speaker, " ".join(text.split())) for speaker, text in turns][-self.context_turns:]
        row = int(self.nearest(self._encode([context_text(context, self.window)]))[0])
        return self.strategies[row], self.responses[row]

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        record = {"format": RETRIEVER_FORMAT, "window": self.window, "context_turns": self.context_turns,
                  "model_name": self.model_name, "strategies": self.strategies, "responses": self.responses}
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:  # a file object: np.savez adds no ".npz"
            np.savez(handle, vectors=self.vectors,
                     record=np.frombuffer(json.dumps(record).encode("utf-8"), dtype=np.uint8))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "RetrievalSupporter":
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as archive:
                vectors = archive["vectors"]
                record = json.loads(archive["record"].tobytes().decode("utf-8"))
            if record.get("format") != RETRIEVER_FORMAT:
                raise ValueError(f"format {record.get('format')!r}, expected {RETRIEVER_FORMAT!r}")
            return cls(vectors, record["strategies"], record["responses"], int(record["window"]),
                       int(record["context_turns"]), record["model_name"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError, zipfile.BadZipFile) as error:
            raise PipelineInputError(f"{path}: not a retrieval supporter saved by RetrievalSupporter.save "
                                     f"({type(error).__name__}: {error})") from error


def choose_window(train: Sequence[SupportExample], val: Sequence[SupportExample], embed: Embed,
                  windows: Sequence[int], context_turns: int) -> tuple[int, dict[str, float]]:
    """The window whose retrieved responses have the best val ROUGE-L, and each window's score."""
    scores = {}
    for window in windows:
        _, responses = RetrievalSupporter.fit(train, embed, window, context_turns).predict(val, embed)
        scores[str(window)] = round(rouge(responses, [e.response for e in val])["rougeL"], 4)
    return int(max(scores, key=scores.get)), scores


# --- scoring on the test split ---------------------------------------------------------------


@dataclass
class ReferenceSettings:
    context_turns: int = 6  # gen.context_turns
    windows: Sequence[int] = (1, 2, ALL_TURNS)  # retrieval: val chooses among these
    classifier_window: int = ALL_TURNS  # latest context turns the strategy classifier reads
    c_grid: Sequence[float] = (0.01, 0.03, 0.1, 0.3, 1.0, 10.0)
    seed: int = 0  # prior draws and bootstrap resamples


def run_support_references(train: Sequence[SupportExample], val: Sequence[SupportExample],
                           test: Sequence[SupportExample], strategies: Sequence[str], embed: Embed,
                           settings: ReferenceSettings) -> tuple[dict[str, Any], list[dict[str, Any]], RetrievalSupporter]:
    """Fit on train, choose on val, predict test: (summary of the val choices, one row per test
    example, retriever). Test is scored where the generators are (flows/lib/generator_eval.py)."""
    def contexts(examples: Sequence[SupportExample]) -> np.ndarray:
        return embed([context_text(e.context, settings.classifier_window) for e in examples])

    classifier = StrategyClassifier(strategies, c_grid=settings.c_grid).fit(train, contexts(train), val, contexts(val))
    window, window_rouge = choose_window(train, val, embed, settings.windows, settings.context_turns)
    retriever = RetrievalSupporter.fit(train, embed, window, settings.context_turns)
    retrieved_strategies, retrieved_responses = retriever.predict(test, embed)
    predictions = {
        "majority": majority_strategy(train, test),
        "prior": prior_strategy(train, test, strategies, settings.seed),
        "classifier": classifier.predict(test, contexts(test)),
        "retrieval": retrieved_strategies,
    }
    summary = {
        "examples": {"train": len(train), "val": len(val), "test": len(test)},
        "prior_expected_accuracy": round(expected_prior_accuracy(train, test, strategies), 4),
        "classifier_val": {"window": settings.classifier_window, "C": classifier.c,
                           "previous_strategy": classifier.use_previous, "accuracy": classifier.val_accuracy},
        "retrieval_val_rougeL": {"window": window, "by_window": window_rouge},
    }
    rows = [{"conversation_id": e.conversation_id, "turn_index": e.turn_index, "gold": e.strategy,
             **{name: predicted[i] for name, predicted in predictions.items()},
             "retrieval_response": retrieved_responses[i], "gold_response": e.response}
            for i, e in enumerate(test)]
    return summary, rows, retriever
