"""persona_splits on 200 real Synthetic-Persona-Chat speakers with the real MiniLM: the held-out
splits share no persona sentence or paraphrase with train, measured by leakage_report and
checked here again from the vectors; and leakage_report itself on a hand-built leak."""
from collections import Counter, defaultdict

import pytest

from flows.lib.persona_data import PersonaExample, load_persona_examples
from flows.lib.persona_splits import SPLITS, leakage_report, persona_splits
from models.pess import SentenceScorer, persona_sentences

pytestmark = pytest.mark.usefixtures("one_thread")
TAU = 0.7


@pytest.fixture(scope="module")
def scorer():
    return SentenceScorer()


@pytest.fixture(scope="module")
def speakers(shared_data):
    path = shared_data / "persona_chat" / "Synthetic-Persona-Chat_valid.csv"
    return load_persona_examples("synthetic", [path], True, 13, 0.1, 0.1)[:200]


@pytest.fixture(scope="module")
def splits(speakers, scorer):
    return persona_splits(speakers, scorer, TAU, 13, 0.1, 0.1)


def test_held_out_personas_never_occur_in_train(speakers, splits, scorer):
    report = leakage_report(splits, speakers, scorer, TAU)
    sizes = report["sizes"]
    assert set(splits.values()) <= set(SPLITS) and sum(sizes.values()) == len(speakers) == len(splits)
    assert sizes["train"] >= 100 and min(sizes["val"], sizes["test_unseen"], sizes["test_seen"]) >= 15
    for split in ("val", "test_unseen"):
        assert report[split]["paraphrase_in_train"] == 0.0
        assert report[split]["exact_in_train"] == 0.0 and report[split]["persona_set_in_train"] == 0.0
        assert report[split]["max_cosine_to_train"] < TAU
        assert report[split]["conversations_shared_with_train"] == 0
    # the old protocol, kept as test_seen, is what leaks
    assert report["test_seen"]["exact_in_train"] > 0.5
    assert report["test_seen"]["conversations_shared_with_train"] == 0


def test_each_conversation_lives_in_one_split_and_drops_are_needed(speakers, splits, scorer):
    by_conversation = defaultdict(set)
    for example in speakers:
        by_conversation[example.conversation_id].add(splits[example.example_id])
    assert all(len(kept - {"dropped"}) <= 1 for kept in by_conversation.values())
    held = [e for e in speakers if splits[e.example_id] in ("val", "test_unseen")]
    held_vectors = scorer.embed(sorted({s for e in held for s in persona_sentences(e.persona)}))
    held_conversations = {e.conversation_id for e in held}
    dropped = [e for e in speakers if splits[e.example_id] == "dropped"]
    assert dropped
    for example in dropped:  # back in train, each would leak a held-out persona or conversation
        closest = (scorer.embed(persona_sentences(example.persona)) @ held_vectors.T).max()
        assert closest >= TAU or example.conversation_id in held_conversations


def test_seeded(speakers, splits, scorer):
    assert persona_splits(speakers, scorer, TAU, 13, 0.1, 0.1) == splits
    other = persona_splits(speakers, scorer, TAU, 14, 0.1, 0.1)
    assert other != splits
    assert Counter(other.values())["test_unseen"] >= 15


def test_shares_are_checked(speakers, scorer):
    with pytest.raises(ValueError, match="val_share=0.5, test_share=0.3"):
        persona_splits(speakers, scorer, TAU, 13, 0.5, 0.3)


def speaker(conversation: str, persona: str) -> PersonaExample:
    return PersonaExample(f"{conversation}/user1", conversation, "", persona, "", ("Hello.",))


def test_leakage_report_finds_a_planted_leak(scorer):
    examples = [speaker("a", "I have two dogs. I love pizza."), speaker("b", "I own two dogs. I ski every winter."),
                speaker("c", "I love pizza. I have two dogs."), speaker("d", "I collect stamps.")]
    splits = {"a/user1": "train", "b/user1": "test_unseen", "c/user1": "test_seen", "d/user1": "val"}
    report = leakage_report(splits, examples, scorer, TAU)
    assert report["test_unseen"]["paraphrase_in_train"] == 0.5 and report["test_unseen"]["exact_in_train"] == 0.0
    assert report["test_seen"]["exact_in_train"] == 1.0 and report["test_seen"]["persona_set_in_train"] == 1.0
    assert report["val"]["paraphrase_in_train"] == 0.0 and report["val"]["max_cosine_to_train"] < TAU
    # a and c say the same sentences: one persona family
    assert report["persona_families"] == {"train": 1, "val": 1, "test_seen": 1, "test_unseen": 1, "dropped": 0}
    partner = PersonaExample("a/user2", "a", "", "I collect stamps.", "", ("Hi.",))
    shared = leakage_report({"a/user1": "train", "a/user2": "test_unseen"}, [examples[0], partner], scorer, TAU)
    assert shared["test_unseen"]["paraphrase_in_train"] == 0.0
    assert shared["test_unseen"]["conversations_shared_with_train"] == 1
    assert shared["val"] == {"speakers": 0}
