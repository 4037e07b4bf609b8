"""A grounded persona extractor: it picks persona sentences out of what the speaker said.

The seq2seq extractors of models/pess.py write text, and sometimes write facts nobody stated.
This one only selects: its output is always the speaker's own words, so it stays grounded.

Candidates. For one speaker, the sentences of their utterances (flows.lib.persona_extractive.
flows.lib.persona_data.speaker_sentences, each utterance closed) and, where a
sentence joins clauses at ", and" / ", but" / " but " / ";", each clause too; every candidate is
lightly trimmed toward persona style (a leading "yeah,", "oh,", "well,", "haha," ... dropped,
first letter capitalised, end punctuation added). Repeats
(normalised text) are kept once, and a candidate whose cosine to the sentence it comes from is
below tau is dropped, so that every output meets the pipeline's definition of grounded (cosine
>= tau to one of the speaker's own sentences).

Label (training only). With E(.) the frozen MiniLM encoder (unit vectors) and gold persona
sentences p_1..p_m of the example,

    y(c) = 1  if  max_i cos(E(c), E(p_i)) >= tau  else 0

Scorer. A one-hidden-layer MLP (hidden = 0: logistic regression) on x(c) = [E(c) (384) ; f(c)],
f = a few cheap features (FEATURE_NAMES: first person, starts with a first-person word,
question, clause, words / 20, relative position among the speaker's sentences, passes the
extractive rule, second person):

    P(c) = sigmoid(w2 . relu(W1 x(c) + b1) + b2)        W1 [hidden, 392]

trained with binary cross-entropy by AdamW (minibatches, `epochs` passes; the epoch with the
lowest validation loss is kept).

Output per speaker: candidates in decreasing P(c) that reach `threshold` (the first
`min_sentences` whatever their P), skipping one whose cosine to a sentence already kept is >= tau
(a near-duplicate), at most `max_sentences`, then put back in the order the speaker said them.
The weight decay, threshold, min_sentences and max_sentences are chosen on the validation
examples by similarity-F1 at tau (flows.lib.extractor_eval.similarity_prf), the figure the PESS
extractors are scored by. Figures: benchmarks/bench_persona_selector.py.
"""
from __future__ import annotations

import itertools
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from flows.lib.errors import PipelineInputError
from flows.lib.extractor_eval import similarity_prf
from flows.lib.persona_data import PersonaExample, speaker_sentences
from flows.lib.persona_extractive import FIRST_PERSON, is_first_person, is_self_statement, sentence_words
from models.pess import SentenceScorer, normalise_sentence, persona_sentences, similarity_sets
from models.runtime import SENTENCE_MODEL, load_checkpoint, save_checkpoint

CHECKPOINT_KIND = "persona_selector"
FEATURE_NAMES = ("first_person", "starts_first_person", "question", "clause", "words_over_20", "position",
                 "extractive_rule", "second_person")

_CLAUSE_BREAK = re.compile(r",\s*(?:and|but)\s+|\s+but\s+|\s*;\s*", re.IGNORECASE)
# A filler word followed by punctuation at the start: "Yeah, ", "Oh! ", "Haha, ". Without the
# punctuation ("Well-known", "So I moved") the word is part of the sentence and stays.
_LEADING_FILLER = re.compile(
    r"^(?:(?:yeah|yes|yep|yup|oh|ohh|ah|aw+|well|so|haha+|hehe|lol|wow|um+|uh+|hmm+|ok|okay)\s*[,!.]+\s*)+",
    re.IGNORECASE,
)
_SECOND_PERSON = frozenset("you you're you've your yours yourself".split())


@dataclass
class SelectorConfig:
    sentence_model: str = SENTENCE_MODEL
    tau: float = 0.7  # label threshold (max cosine to a gold sentence) and near-duplicate merge
    clauses: bool = True  # clause candidates beside whole sentences
    min_clause_words: int = 2  # a shorter clause ("and Pokemon.") is no candidate of its own
    hidden: int = 128  # 0: logistic regression (val similarity-F1 0.28 against 0.33 at 128: benchmarks/)
    weight_decays: tuple[float, ...] = (1e-4, 1e-2)
    epochs: int = 40
    batch_size: int = 256
    lr: float = 1e-3
    seed: int = 13
    thresholds: tuple[float, ...] = tuple(round(0.05 * n, 2) for n in range(1, 17))  # 0.05 .. 0.80
    max_sentences_grid: tuple[int, ...] = (2, 3, 4, 5, 6, 8)
    min_sentences_grid: tuple[int, ...] = (0, 1)  # 1: a speaker with candidates never gets an empty persona


@dataclass
class SelectorChoice:
    """What validation chose, and its figures there."""

    weight_decay: float
    epochs: int  # the epoch with the lowest validation loss
    threshold: float
    max_sentences: int
    min_sentences: int = 0
    val: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Candidate:
    text: str
    sentence_index: int  # which of the speaker's sentences it comes from
    clause: bool  # a clause of that sentence rather than the whole of it


def trimmed(text: str) -> str:
    """Leading filler off, first letter capitalised, end punctuation added ("" when nothing is left)."""
    text = _LEADING_FILLER.sub("", text.strip()).strip(" ,;-")
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def candidates(utterances: Sequence[str], config: SelectorConfig) -> list[Candidate]:
    """The speaker's sentences (and clauses), trimmed, a repeat kept once, in the order said."""
    seen: set[str] = set()
    found = []
    for index, sentence in enumerate(speaker_sentences(utterances)):
        pieces = [(sentence, False)]
        clauses = _CLAUSE_BREAK.split(sentence) if config.clauses else []
        if len(clauses) > 1:
            pieces += [(c, True) for c in clauses if len(sentence_words(c)) >= config.min_clause_words]
        for piece, is_clause in pieces:
            text = trimmed(piece)
            key = normalise_sentence(text)
            if key and key not in seen:
                seen.add(key)
                found.append(Candidate(text, index, is_clause))
    return found


def cheap_features(found: list[Candidate]) -> np.ndarray:
    """[len(found), len(FEATURE_NAMES)] float32, in FEATURE_NAMES order."""
    last = max((c.sentence_index for c in found), default=0)
    rows = []
    for c in found:
        words = sentence_words(c.text)
        rows.append([
            is_first_person(words),
            bool(words) and words[0] in FIRST_PERSON,
            c.text.endswith("?"),
            c.clause,
            len(words) / 20,
            c.sentence_index / max(1, last),
            is_self_statement(c.text),
            any(w in _SECOND_PERSON for w in words),
        ])
    return np.asarray(rows, dtype=np.float32).reshape(len(found), len(FEATURE_NAMES))


@dataclass
class _Speakers:
    """Candidates of many speakers, stacked: rows of `features` / `vectors` for speaker n are
    offsets[n]:offsets[n + 1]."""

    texts: list[list[str]]
    features: np.ndarray  # [total candidates, 384 + len(FEATURE_NAMES)]
    vectors: np.ndarray  # [total candidates, 384] unit MiniLM vectors
    offsets: np.ndarray  # [speakers + 1]

    def rows(self, n: int) -> slice:
        return slice(int(self.offsets[n]), int(self.offsets[n + 1]))


def _embed_many(scorer: SentenceScorer, groups: list[list[str]]) -> list[np.ndarray]:
    """One [len(group), dim] matrix per group, every distinct text encoded once."""
    unique = sorted({t for group in groups for t in group})
    vectors = scorer.embed(unique)
    index = {t: n for n, t in enumerate(unique)}
    return [vectors[[index[t] for t in group]].reshape(len(group), vectors.shape[1]) for group in groups]


def _speakers(utterance_lists: list[Sequence[str]], scorer: SentenceScorer, config: SelectorConfig,
              extra: list[list[str]] | None = None) -> tuple[_Speakers, list[np.ndarray]]:
    """The stacked grounded candidates of every speaker (at least one speaker), and the vectors
    of `extra` text groups (gold personas) encoded in the same pass. A candidate whose cosine to
    the sentence it comes from is below tau (a clause or a trim that drifted from what was
    meant) is dropped: every output is then grounded by the pipeline's own definition."""
    found = [candidates(u, config) for u in utterance_lists]
    sources = [speaker_sentences(u) for u in utterance_lists]
    extra = extra or []
    embedded = _embed_many(scorer, [[c.text for c in f] for f in found] + sources + extra)
    speakers = len(found)
    kept, kept_vectors = [], []
    for f, vectors, source_vectors in zip(found, embedded[:speakers], embedded[speakers:2 * speakers]):
        to_source = (vectors * source_vectors[[c.sentence_index for c in f]]).sum(axis=1) if f else np.zeros(0)
        grounded = to_source >= config.tau
        kept.append([c for c, g in zip(f, grounded) if g])
        kept_vectors.append(vectors[grounded])
    vectors = np.concatenate(kept_vectors)
    features = np.concatenate([cheap_features(f) for f in kept])
    offsets = np.cumsum([0] + [len(f) for f in kept])
    texts = [[c.text for c in f] for f in kept]
    stacked = _Speakers(texts, np.hstack([vectors, features]).astype(np.float32), vectors, offsets)
    return stacked, embedded[2 * speakers:]


def grounded_candidates(utterance_lists: list[Sequence[str]], scorer: SentenceScorer, config: SelectorConfig
                        ) -> list[list[str]]:
    """What the selector chooses from, per speaker: candidates() less the ungrounded ones."""
    return _speakers(utterance_lists, scorer, config)[0].texts if utterance_lists else []


def select(probabilities: np.ndarray, vectors: np.ndarray, threshold: float, min_sentences: int, max_sentences: int,
           tau: float) -> list[int]:
    """Indices kept for one speaker (module docstring), in the order said."""
    kept: list[int] = []
    for j in np.argsort(-probabilities, kind="stable"):
        if (probabilities[j] < threshold and len(kept) >= min_sentences) or len(kept) == max_sentences:
            break
        if kept and float((vectors[kept] @ vectors[j]).max()) >= tau:
            continue
        kept.append(int(j))
    return sorted(kept)


class CandidateScorer(nn.Module):
    def __init__(self, features: int, hidden: int):
        super().__init__()
        self.inputs = features  # embedding width + len(FEATURE_NAMES)
        self.net = nn.Linear(features, 1) if hidden == 0 else nn.Sequential(
            nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [n, features] -> [n] logits
        return self.net(x).squeeze(-1)

    @torch.no_grad()
    def probabilities(self, features: np.ndarray) -> np.ndarray:
        self.eval()
        return torch.sigmoid(self(torch.from_numpy(features))).numpy()


class PersonaSelector:
    def __init__(self, config: SelectorConfig, choice: SelectorChoice, model: CandidateScorer,
                 scorer: SentenceScorer | None = None):
        self.config, self.choice, self.model = config, choice, model
        self.scorer = scorer or SentenceScorer(config.sentence_model)

    def extract(self, utterance_lists: list[list[str]]) -> list[list[str]]:
        """One persona (list of sentences, each the speaker's own words) per utterance list."""
        if not utterance_lists:
            return []
        stacked, _ = _speakers(utterance_lists, self.scorer, self.config)
        probabilities = self.model.probabilities(stacked.features)
        personas = []
        for n, texts in enumerate(stacked.texts):
            rows = stacked.rows(n)
            kept = select(probabilities[rows], stacked.vectors[rows], self.choice.threshold,
                          self.choice.min_sentences, self.choice.max_sentences, self.config.tau)
            personas.append([texts[j] for j in kept])
        return personas

    def save(self, path: str | os.PathLike) -> Path:
        return save_checkpoint(
            {
                "kind": CHECKPOINT_KIND,
                "config": asdict(self.config),
                "choice": asdict(self.choice),
                "model": self.model.state_dict(),
                "model_inputs": self.model.inputs,
                "feature_names": list(FEATURE_NAMES),
            },
            path,
        )

    @classmethod
    def load(cls, path: str | os.PathLike, scorer: SentenceScorer | None = None) -> "PersonaSelector":
        payload = load_checkpoint(path)
        if not isinstance(payload, dict) or payload.get("kind") != CHECKPOINT_KIND:
            raise PipelineInputError(f"{path}: not a persona-selector checkpoint (models/persona_selector.py)")
        if tuple(payload["feature_names"]) != FEATURE_NAMES:
            raise PipelineInputError(f"{path}: persona-selector features {payload['feature_names']} differ from "
                                     f"this code's {list(FEATURE_NAMES)}; refit it")
        config = SelectorConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in payload["config"].items()})
        model = CandidateScorer(payload["model_inputs"], config.hidden)
        model.load_state_dict(payload["model"])
        return cls(config, SelectorChoice(**payload["choice"]), model, scorer)


def train_scorer(features: np.ndarray, labels: np.ndarray, val_features: np.ndarray, val_labels: np.ndarray,
                 weight_decay: float, config: SelectorConfig) -> tuple[CandidateScorer, int]:
    """(the scorer at its lowest validation BCE, that epoch from 1) after `config.epochs` passes."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model = CandidateScorer(features.shape[1], config.hidden)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=weight_decay)
    x, y = torch.from_numpy(features), torch.from_numpy(labels).float()
    val_x, val_y = torch.from_numpy(val_features), torch.from_numpy(val_labels).float()
    best_loss, best_epoch, best_state = float("inf"), 0, None
    for epoch in range(1, config.epochs + 1):
        model.train()
        for rows in torch.randperm(len(x), generator=generator).split(config.batch_size):
            loss = F.binary_cross_entropy_with_logits(model(x[rows]), y[rows])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        model.eval()
        with torch.no_grad():
            val_loss = F.binary_cross_entropy_with_logits(model(val_x), val_y).item()
        if val_loss < best_loss:
            best_loss, best_epoch = val_loss, epoch
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return model, best_epoch


def _labelled(examples: list[PersonaExample], scorer: SentenceScorer, config: SelectorConfig
              ) -> tuple[_Speakers, list[list[str]], list[np.ndarray], np.ndarray]:
    """(stacked candidates, gold sentences, gold vectors, labels [total candidates] of the
    module docstring) of the examples."""
    gold = [persona_sentences(e.persona) for e in examples]
    stacked, gold_vectors = _speakers([e.own_turns for e in examples], scorer, config, extra=gold)
    labels = np.zeros(len(stacked.vectors), dtype=np.int64)
    for n, vectors in enumerate(gold_vectors):
        rows = stacked.rows(n)
        if len(vectors) and rows.stop > rows.start:
            labels[rows] = (stacked.vectors[rows] @ vectors.T).max(axis=1) >= config.tau
    return stacked, gold, gold_vectors, labels


def _similarity_f1(probabilities: np.ndarray, stacked: _Speakers, gold: list[list[str]], gold_vectors: list[np.ndarray],
                   threshold: float, min_sentences: int, max_sentences: int, tau: float) -> dict[str, float]:
    generated, sets = [], []
    for n, texts in enumerate(stacked.texts):
        rows = stacked.rows(n)
        kept = select(probabilities[rows], stacked.vectors[rows], threshold, min_sentences, max_sentences, tau)
        generated.append([texts[j] for j in kept])
        sets.append(similarity_sets(gold_vectors[n] @ stacked.vectors[rows][kept].T, tau))
    return similarity_prf(gold, generated, sets)


def fit_selector(train_examples: list[PersonaExample], val_examples: list[PersonaExample], scorer: SentenceScorer,
                 config: SelectorConfig) -> PersonaSelector:
    """Train one scorer per weight decay on the train examples' candidates; keep the (weight
    decay, threshold, min_sentences, max_sentences) with the best similarity-F1 on the val
    examples (ties: the first in grid order)."""
    if not train_examples or not val_examples:
        raise PipelineInputError("persona selector: needs train and val examples (an empty split?)")
    train, _, _, train_labels = _labelled(train_examples, scorer, config)
    val, val_gold, val_gold_vectors, val_labels = _labelled(val_examples, scorer, config)
    if len(set(train_labels.tolist())) < 2:
        raise PipelineInputError(f"persona selector: the train candidates are all labelled {train_labels[:1].tolist()} "
                                 f"at tau {config.tau}; more examples or another tau")
    best: tuple[float, SelectorChoice, CandidateScorer] | None = None
    for weight_decay in config.weight_decays:
        model, epochs = train_scorer(train.features, train_labels, val.features, val_labels, weight_decay, config)
        probabilities = model.probabilities(val.features)
        for threshold, min_sentences, max_sentences in itertools.product(
                config.thresholds, config.min_sentences_grid, config.max_sentences_grid):
            scores = _similarity_f1(probabilities, val, val_gold, val_gold_vectors, threshold, min_sentences,
                                    max_sentences, config.tau)
            if best is None or scores["similarity_f1"] > best[0]:
                choice = SelectorChoice(weight_decay, epochs, threshold, max_sentences, min_sentences,
                                        {k: round(v, 4) for k, v in scores.items()})
                best = (scores["similarity_f1"], choice, model)
    _, choice, model = best
    return PersonaSelector(config, choice, model, scorer)


def is_selector_checkpoint(path: str | os.PathLike) -> bool:
    """Whether `path` holds a selector rather than another model's checkpoint; memory-mapped, so
    a large seq2seq checkpoint is not read to find out."""
    if not Path(path).exists():
        raise PipelineInputError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (OSError, RuntimeError) as error:
        raise PipelineInputError(f"{path}: not a readable checkpoint ({error})") from error
    return isinstance(payload, dict) and payload.get("kind") == CHECKPOINT_KIND
