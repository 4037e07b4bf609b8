"""persona_metrics with the real MiniLM: hand-built speakers whose matches are known, and the
bootstrap intervals around them."""
import numpy as np
import pytest

from flows.lib.persona_data import PersonaExample
from flows.lib.persona_metrics import CachedScorer, grounding_rate, score_personas
from models.pess import SentenceScorer

pytestmark = pytest.mark.usefixtures("one_thread")
TAU = 0.7


@pytest.fixture(scope="module")
def scorer():
    return SentenceScorer()


def nurse(n: int = 0) -> PersonaExample:
    return PersonaExample(example_id=f"c{n}/user1", conversation_id=f"c{n}", history="", persona="I have two dogs. I work as a nurse.",
                          split="test", own_turns=("Hi there!", "Yes, I have two dogs. My shift at the hospital was long."))


def test_the_gold_persona_scores_one_everywhere_and_is_half_grounded(scorer):
    scores = score_personas([["I have two dogs.", "I work as a nurse."]], [nurse()], scorer, TAU, n_resamples=50)
    assert scores["n"] == 1 and scores["tau"] == TAU
    for name in ("similarity_f1", "rouge_match_f1", "exact_f1"):
        assert scores[name] == 1.0 and scores[f"{name}_ci95"] == [1.0, 1.0]
    # the dogs are stated in the speaker's turns, the nursing only hinted at (a long hospital shift)
    assert scores["grounding_rate"] == 0.5
    assert scores["sentences_mean"] == scores["gold_sentences_mean"] == 2.0


def test_a_paraphrase_matches_by_similarity_and_rouge_but_not_exactly(scorer):
    scores = score_personas([["Dogs are my pets, I have two.", "I am a nurse."]], [nurse()], scorer, TAU, n_resamples=50)
    assert scores["similarity_f1"] == 1.0 and scores["rouge_match_f1"] == 1.0
    assert scores["exact_f1"] == 0.0


def test_a_wrong_fact_that_minilm_calls_similar_does_not_match_by_rouge(scorer):
    # MiniLM puts "two cats" at cosine ~0.74 to "two dogs": the second measure does not follow it
    scores = score_personas([["I have two cats."]], [nurse()], scorer, TAU, n_resamples=50)
    assert scores["similarity_p"] == 1.0 and scores["similarity_r"] == 0.5
    assert scores["rouge_match_f1"] == 0.0 and scores["exact_f1"] == 0.0


def test_repeats_count_once_and_scores_pool_over_examples(scorer):
    predicted = [["I have two dogs.", "i have two dogs", "I am an astronaut."], []]
    scores = score_personas(predicted, [nurse(0), nurse(1)], scorer, TAU, n_resamples=200, seed=3)
    # micro: 1 of 2 distinct predicted sentences is right; 1 of 4 gold sentences is found
    assert scores["exact_p"] == 0.5 and scores["exact_r"] == 0.25
    assert scores["exact_f1"] == pytest.approx(2 * 0.5 * 0.25 / 0.75, abs=1e-4)
    assert scores["sentences_mean"] == 1.0
    low, high = scores["exact_r_ci95"]
    assert low <= scores["exact_r"] <= high and low < high  # the two speakers differ, so resamples do
    again = score_personas(predicted, [nurse(0), nurse(1)], scorer, TAU, n_resamples=200, seed=3)
    assert again == scores


def test_grounding_rate_without_gold(scorer):
    own = [["Yes, I have two dogs.", "My shift at the hospital was long."], ["I love the sea."]]
    result = grounding_rate([["I have two dogs.", "I am an astronaut."], ["The sea is what I love."]], own, scorer, TAU,
                            n_resamples=100)
    assert result["n"] == 2
    assert result["grounding_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert result["sentences_mean"] == 1.5
    with pytest.raises(ValueError, match="2 predictions but 1 speakers"):
        grounding_rate([[], []], [[]], scorer, TAU)


def test_predictions_must_align_with_examples(scorer):
    with pytest.raises(ValueError, match="1 predictions but 2 examples"):
        score_personas([[]], [nurse(0), nurse(1)], scorer, TAU)


def test_cached_scorer_encodes_once_and_agrees(scorer):
    cached = CachedScorer()
    sentences = ["I have two dogs.", "I am a nurse.", "I have two dogs."]
    assert np.allclose(cached.embed(sentences), scorer.embed(sentences), atol=1e-5)
    assert len(cached._vectors) == 2
    assert cached.embed([]).shape == (0, 384)
