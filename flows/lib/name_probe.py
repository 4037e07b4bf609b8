"""Leakage probes of a snippet split (issue 15), for tests and benchmarks/bench_names_only.py:

- a names-only reference: TF-IDF + logistic regression that reads nothing but the name tokens of
  each snippet (the words of D, E and O's lines that `probe_masker` counts as names), C chosen
  on val. If it beats the majority trope, the split measures
  name recognition;
- the test snippets that share a scene with a training snippet of the same character."""
from __future__ import annotations

from collections import Counter
from typing import Iterable

import numpy as np

from flows.lib.name_mask import NameMasker
from flows.lib.trope_scoring import score_ranked

NO_NAME = "none"  # the document of a snippet without a name token
C_GRID = (0.1, 1.0, 10.0)


def probe_masker(cmu_names: Iterable[str], cue_counts: Iterable[Counter], min_lines: int) -> NameMasker:
    """The names the reference reads, wider than what ingest masks: every CMU character name, and
    every one-word speaker cue of any script (dialogue blocks per cue, `cue_counts`) with min_lines
    blocks or more: one word, since "ELDERLY BLACK WOMAN" is a role, not a name; min_lines, since
    the odd shout ("OH") that a parser took for a cue is no name either."""
    return NameMasker(cmu_names, cues=[cue for counts in cue_counts for cue, count in counts.items()
                                       if count >= min_lines and " " not in cue])


def name_documents(snippets: list[dict], masker: NameMasker) -> list[str]:
    """Per snippet, its name tokens in D, E and O's lines joined by spaces, or NO_NAME."""
    documents = []
    for snippet in snippets:
        texts = [*snippet["D"], *snippet["E"], *(other["text"] for other in snippet["O"])]
        documents.append(" ".join(token for text in texts for token in masker.name_tokens(text)) or NO_NAME)
    return documents


def names_only_accuracy(documents: list[str], labels: list[str], splits: list[str]) -> dict:
    """Test accuracy of TF-IDF + LR over the name documents (C tuned on val accuracy), beside the
    majority rate (the most frequent training label, on test)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    labels_array, splits_array = np.array(labels), np.array(splits)
    train, val, test = (np.flatnonzero(splits_array == name) for name in ("train", "val", "test"))
    vectorizer = TfidfVectorizer(lowercase=False, token_pattern=r"\S+").fit([documents[i] for i in train])
    features = vectorizer.transform(documents)
    # Name documents repeat: fitting each distinct (document, label) once, weighted by its count,
    # is the same objective at a fraction of the cost.
    pairs = Counter((documents[i], labels_array[i]) for i in train)
    distinct = list(pairs)
    train_features = vectorizer.transform([document for document, _ in distinct])
    train_labels = np.array([label for _, label in distinct])
    weights = np.array([pairs[pair] for pair in distinct], dtype=float)
    best = None
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=2000).fit(train_features, train_labels, sample_weight=weights)
        score = float((model.predict(features[val]) == labels_array[val]).mean())
        if best is None or score > best[0]:
            best = (score, c, model)
    val_accuracy, c, model = best
    majority = Counter(labels_array[train]).most_common(1)[0][0]
    label_ids = {label: index for index, label in enumerate(sorted(set(labels)))}
    gold = [[label_ids[label]] for label in labels_array[test]]
    scored = score_ranked(gold, [[label_ids[label]] for label in model.predict(features[test])])
    return {
        "accuracy": float((model.predict(features[test]) == labels_array[test]).mean()),
        "accuracy_ci95": scored["accuracy_ci95"],  # bootstrap over test snippets
        "majority": float((labels_array[test] == majority).mean()),
        "majority_ci95": score_ranked(gold, [[label_ids[majority]]] * len(gold))["accuracy_ci95"],
        "C": c,
        "val_accuracy": val_accuracy,
        "n_test": int(len(test)),
        "with_name_share": float(np.mean([documents[i] != NO_NAME for i in test])),
    }


def shared_scene_snippets(snippets: list[dict]) -> int:
    """Test snippets whose character has a training snippet of the same scene."""
    trained = {(s["char_id"], s["scene"]) for s in snippets if s["split"] == "train"}
    return sum(s["split"] == "test" and (s["char_id"], s["scene"]) in trained for s in snippets)
