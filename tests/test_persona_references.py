"""The copy-the-training-pool references: retrieval by own turns and the pool prior; on 200 real
speakers, and on hand-built ones."""
import pytest

from flows.lib.persona_data import PersonaExample, load_persona_examples
from flows.lib.persona_references import pool_prior_personas, retrieval_personas, tune_pool_k
from flows.lib.persona_splits import persona_splits
from models.pess import SentenceScorer, persona_sentences

pytestmark = pytest.mark.usefixtures("one_thread")
TAU = 0.7


def speaker(name: str, persona: str, *turns: str) -> PersonaExample:
    return PersonaExample(f"{name}/user1", name, "", persona, "train", turns)


def test_retrieval_copies_the_persona_of_the_speaker_who_talks_alike():
    train = [speaker("pilot", "I fly planes.", "The cockpit was cold at take-off."),
             speaker("walker", "I have two dogs. I walk a lot.", "My dogs pulled me around the park again.")]
    query = speaker("q", "I own a beagle.", "The park was muddy, my dogs loved it.")
    assert retrieval_personas(train, [query, train[0]]) == [["I have two dogs.", "I walk a lot."], ["I fly planes."]]


def test_retrieval_finds_a_real_training_speaker_itself(shared_data):
    path = shared_data / "persona_chat" / "Synthetic-Persona-Chat_valid.csv"
    train = load_persona_examples("synthetic", [path], True, 13, 0.1, 0.1)[:200]
    assert retrieval_personas(train, train[:30]) == [persona_sentences(e.persona) for e in train[:30]]


def test_pool_prior_is_the_k_most_common_training_sentences():
    train = [speaker("a", "I ski. I read."), speaker("b", "I read. I cook."), speaker("c", "I cook. I read. I sing.")]
    assert pool_prior_personas(train, 2, 2) == [["I read.", "I cook."], ["I read.", "I cook."]]
    assert pool_prior_personas(train, 1, 4) == [["I read.", "I cook.", "I sing.", "I ski."]]


def test_copying_training_personas_scores_zero_similarity_on_unseen_val(shared_data):
    path = shared_data / "persona_chat" / "Synthetic-Persona-Chat_valid.csv"
    speakers = load_persona_examples("synthetic", [path], True, 13, 0.1, 0.1)[:200]
    scorer = SentenceScorer()
    splits = persona_splits(speakers, scorer, TAU, 13, 0.1, 0.1)
    train = [e for e in speakers if splits[e.example_id] == "train"]
    val = [e for e in speakers if splits[e.example_id] == "val"]
    k, scores = tune_pool_k(train, val, scorer, TAU, [1, 4], n_resamples=20)
    assert k in (1, 4) and set(scores) == {1, 4}
    assert all(s["similarity_f1"] == 0.0 and s["exact_f1"] == 0.0 and s["n"] == len(val) for s in scores.values())
