"""Persona-disjoint splits of the PESS corpus, and the check that they are.

Synthetic-Persona-Chat reuses a small pool of personas: its 3,932 speakers draw on 972 persona
sentences, each said by ten speakers or more, and a sentence co-occurs with the same four or
five others every time. The random conversation split of persona_data.assign_splits therefore
puts every val/test persona sentence in train, and copying the persona of the nearest training
speaker beats any extractor. Here the held-out speakers have personas that training never saw.

Units. A persona *family* is a connected component of the co-occurrence graph of persona
sentences (two sentences are linked when one speaker has both): in Synthetic-Persona-Chat a
family is one base persona and its 4-or-5-sentence variants, and every speaker lies in exactly
one family. Two sentences of different families *clash* when their MiniLM cosine is >= tau (a
paraphrase, the relation the PESS losses and scores use).

Selection (greedy, seeded). Held-out families are added one at a time, each time the family
with the fewest training speakers lost per held-out speaker gained, until the held-out speakers
reach (val_share + test_share) of all. A training speaker is lost (`dropped`, never moved) when

- a sentence of theirs clashes with a held-out family's sentence, or
- their conversation partner is held out (both speakers of a conversation stay in one split; the
  partner's persona is a training persona, so it cannot be held out with them).

Families whose sentences have few paraphrases elsewhere and whose speakers talk to each other
cost least, so train stays large. The held-out conversations are shuffled into val and
test_unseen (in the ratio val_share : test_share); test_seen, the old protocol, is a seeded
sample of test_share of the speakers, taken by whole conversations among those without a held-out
speaker: its personas recur in training. Every other speaker is train unless dropped.

leakage_report measures, from the splits alone, what the selection promises.
"""
from __future__ import annotations

import random
from collections import defaultdict
from typing import Any, Sequence

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from flows.lib.persona_data import PersonaExample
from models.pess import SentenceScorer, normalise_sentence, persona_sentences

SPLITS = ("train", "val", "test_seen", "test_unseen", "dropped")


def _sentence_index(examples: Sequence[PersonaExample]) -> tuple[list[str], list[list[int]]]:
    """(distinct persona sentences, per example the indices of its sentences)."""
    index: dict[str, int] = {}
    per_example = [[index.setdefault(s, len(index)) for s in persona_sentences(e.persona)] for e in examples]
    return list(index), per_example


def _families(n_sentences: int, per_example: list[list[int]]) -> np.ndarray:
    """Family label per sentence: components of the sentence co-occurrence graph."""
    pairs = [(a, b) for sentences in per_example for a in sentences for b in sentences]
    rows, cols = zip(*pairs) if pairs else ((), ())
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_sentences, n_sentences))
    return connected_components(graph, directed=False)[1]


def _partners(examples: Sequence[PersonaExample]) -> list[list[int]]:
    by_conversation: dict[str, list[int]] = defaultdict(list)
    for n, example in enumerate(examples):
        by_conversation[example.conversation_id].append(n)
    return [[m for m in by_conversation[e.conversation_id] if m != n] for n, e in enumerate(examples)]


def _choose_held_out_families(
    family_of_example: np.ndarray, clashing: list[set[int]], partners: list[list[int]], target: int, seed: int
) -> set[int]:
    """Greedy: add the family with the least net loss of training speakers per held-out speaker
    (ties broken by a seeded jitter) until `target` speakers are held out or no family is left.
    clashing[f]: speakers of other families with a sentence that paraphrases one of f's."""
    members: dict[int, list[int]] = defaultdict(list)
    for n, family in enumerate(family_of_example):
        members[int(family)].append(n)
    touched = {f: clashing[f] | {p for n in people for p in partners[n]} for f, people in members.items()}
    jitter = {f: random.Random(f"{seed}/{f}").random() * 1e-6 for f in members}
    held_out: set[int] = set()
    held, lost = 0, set()
    while held < target and len(held_out) < len(members):
        def cost(family: int) -> float:
            newly_lost = len({n for n in touched[family] if n not in lost and family_of_example[n] not in held_out
                              and family_of_example[n] != family})
            regained = sum(1 for n in members[family] if n in lost)
            return (newly_lost - regained) / len(members[family]) + jitter[family]

        best = min((f for f in members if f not in held_out), key=cost)
        held_out.add(best)
        held += len(members[best])
        lost |= touched[best]
        lost -= {n for n in lost if family_of_example[n] in held_out}
    return held_out


def _take(conversations: list[str], size: dict[str, int], quota: float) -> set[str]:
    """The first conversations of the (shuffled) list whose speakers just reach `quota`."""
    taken, count = set(), 0
    for conversation in conversations:
        if count >= quota:
            break
        taken.add(conversation)
        count += size[conversation]
    return taken


def persona_splits(
    examples: Sequence[PersonaExample], scorer: SentenceScorer, tau: float, seed: int, val_share: float,
    test_share: float,
) -> dict[str, str]:
    """example_id -> train | val | test_seen | test_unseen | dropped (see the module docstring).

    val_share and test_share are shares of all speakers: val and test_unseen together aim at
    (val_share + test_share) of them, test_seen at test_share."""
    if val_share <= 0 or test_share <= 0 or val_share + 2 * test_share >= 1:
        raise ValueError(f"persona_splits: val_share={val_share}, test_share={test_share}: need > 0 and "
                         "val_share + 2 * test_share < 1")
    sentences, per_example = _sentence_index(examples)
    family_of_sentence = _families(len(sentences), per_example)
    family_of_example = np.array([family_of_sentence[s[0]] for s in per_example])  # readers refuse empty personas
    vectors = scorer.embed(sentences)
    similar = vectors @ vectors.T >= tau  # [n_sentences, n_sentences]
    speakers_of: dict[int, set[int]] = defaultdict(set)
    for n, sentence_ids in enumerate(per_example):
        for s in sentence_ids:
            speakers_of[s].add(n)
    clashing: list[set[int]] = [set() for _ in range(int(family_of_sentence.max()) + 1)]
    for a, b in zip(*np.nonzero(similar)):
        if family_of_sentence[a] != family_of_sentence[b]:
            clashing[family_of_sentence[a]] |= speakers_of[b]
    partners = _partners(examples)
    target = round((val_share + test_share) * len(examples))
    held_out = _choose_held_out_families(family_of_example, clashing, partners, target, seed)

    is_held = [family_of_example[n] in held_out for n in range(len(examples))]
    clashes = set().union(*(clashing[f] for f in held_out)) if held_out else set()
    lost = {n for n in range(len(examples)) if not is_held[n] and (n in clashes or any(is_held[p] for p in partners[n]))}

    held_size, size = defaultdict(int), defaultdict(int)
    for n, example in enumerate(examples):
        size[example.conversation_id] += 1
        held_size[example.conversation_id] += is_held[n]
    rng = random.Random(seed)
    held_conversations = sorted(c for c, count in held_size.items() if count)
    rng.shuffle(held_conversations)
    val_conversations = _take(held_conversations, held_size, sum(is_held) * val_share / (val_share + test_share))
    seen_candidates = sorted(c for c, count in held_size.items() if not count)
    rng.shuffle(seen_candidates)
    seen_conversations = _take(seen_candidates, size, test_share * len(examples))

    splits = {}
    for n, example in enumerate(examples):
        if is_held[n]:
            splits[example.example_id] = "val" if example.conversation_id in val_conversations else "test_unseen"
        elif example.conversation_id in seen_conversations:
            splits[example.example_id] = "test_seen"
        else:
            splits[example.example_id] = "dropped" if n in lost else "train"
    return splits


def leakage_report(
    splits: dict[str, str], examples: Sequence[PersonaExample], scorer: SentenceScorer, tau: float
) -> dict[str, Any]:
    """Measured overlap of each evaluation split with train: per split its speakers and
    conversations, the share of its persona sentences (each occurrence counted) with a train
    sentence at MiniLM cosine >= tau (`paraphrase_in_train`) and with the same normalised
    sentence in train (`exact_in_train`), the share of its speakers whose whole persona (set of
    normalised sentences) is some train speaker's, the highest cosine to train, and the number of
    its conversations that also have a train speaker. Also every split's speakers, conversations
    and persona families (speakers of one family are not independent draws: with few families
    the bootstrap over speakers understates the spread)."""
    by_split: dict[str, list[PersonaExample]] = defaultdict(list)
    for example in examples:
        by_split[splits[example.example_id]].append(example)
    sentences = {e.example_id: persona_sentences(e.persona) for e in examples}
    train_sentences = sorted({s for e in by_split["train"] for s in sentences[e.example_id]})
    train_keys = {normalise_sentence(s) for s in train_sentences}
    train_sets = {frozenset(normalise_sentence(s) for s in sentences[e.example_id]) for e in by_split["train"]}
    train_conversations = {e.conversation_id for e in by_split["train"]}
    train_vectors = scorer.embed(train_sentences)
    sentence_ids, per_example = _sentence_index(examples)
    family_of_sentence = _families(len(sentence_ids), per_example)
    family = {e.example_id: int(family_of_sentence[s[0]]) for e, s in zip(examples, per_example)}
    report: dict[str, Any] = {"tau": tau, "sizes": {split: len(by_split[split]) for split in SPLITS},
                              "conversations": {split: len({e.conversation_id for e in by_split[split]}) for split in SPLITS},
                              "persona_families": {split: len({family[e.example_id] for e in by_split[split]}) for split in SPLITS}}
    for split in ("val", "test_unseen", "test_seen"):
        members = by_split[split]
        occurrences = [s for e in members for s in sentences[e.example_id]]
        if not occurrences:
            report[split] = {"speakers": 0}
            continue
        distinct = sorted(set(occurrences))
        best = (scorer.embed(distinct) @ train_vectors.T).max(axis=1) if train_sentences else np.zeros(len(distinct))
        best_of = dict(zip(distinct, best))
        report[split] = {
            "speakers": len(members),
            "sentences": len(occurrences),
            "paraphrase_in_train": float(np.mean([best_of[s] >= tau for s in occurrences])),
            "exact_in_train": float(np.mean([normalise_sentence(s) in train_keys for s in occurrences])),
            "persona_set_in_train": float(np.mean([frozenset(normalise_sentence(s) for s in sentences[e.example_id])
                                                   in train_sets for e in members])),
            "max_cosine_to_train": float(best.max()),
            "conversations_shared_with_train": len({e.conversation_id for e in members} & train_conversations),
        }
    return report
