"""The PESS-GEN references on small real ESConv subsets (the first 20 train, 5 val and 5 test
conversations) with the real MiniLM encoder."""
from collections import Counter

import numpy as np
import pytest

from flows.lib.errors import PipelineInputError
from flows.lib.esconv_examples import build_examples, load_split, load_strategies
from flows.lib.support_references import (
    ALL_TURNS,
    RetrievalSupporter,
    StrategyClassifier,
    choose_window,
    context_embedder,
    context_text,
    expected_prior_accuracy,
    majority_strategy,
    previous_strategy,
    prior_strategy,
)
from models.generator import SEEKER, SUPPORTER

pytestmark = pytest.mark.usefixtures("one_thread")
CONTEXT_TURNS = 6


@pytest.fixture(scope="module")
def esconv(shared_data):
    directory = shared_data / "esconv"
    strategies = load_strategies(directory / "strategy.json")
    splits = {split: build_examples(load_split(directory, split, strategies, limit), None, CONTEXT_TURNS, 1)
              for split, limit in (("train", 20), ("val", 5), ("test", 5))}
    return strategies, splits


@pytest.fixture(scope="module")
def embed(tmp_path_factory):
    return context_embedder(tmp_path_factory.mktemp("cache") / "contexts.parquet")


@pytest.fixture(scope="module")
def retriever(esconv, embed):
    return RetrievalSupporter.fit(esconv[1]["train"], embed, ALL_TURNS, CONTEXT_TURNS)


def test_majority_is_the_counted_mode(esconv):
    _, splits = esconv
    counts = Counter(e.strategy for e in splits["train"])
    predicted = majority_strategy(splits["train"], splits["test"])
    assert len(predicted) == len(splits["test"]) and len(set(predicted)) == 1
    assert counts[predicted[0]] == max(counts.values())


def test_prior_draws_follow_the_training_distribution(esconv):
    strategies, splits = esconv
    train, test = splits["train"], splits["test"]
    many = prior_strategy(train, train * 100, strategies, seed=3)
    assert many == prior_strategy(train, train * 100, strategies, seed=3)
    drawn, counted = Counter(many), Counter(e.strategy for e in train)
    for strategy in strategies:
        assert drawn[strategy] / len(many) == pytest.approx(counted[strategy] / len(train), abs=0.02)
    in_test = Counter(e.strategy for e in test)
    expected = sum(counted[s] / len(train) * in_test[s] / len(test) for s in strategies)
    assert expected_prior_accuracy(train, test, strategies) == pytest.approx(expected)


def test_classifier_predicts_strategy_tokens_with_C_from_the_grid(esconv, embed):
    strategies, splits = esconv
    vectors = {split: embed([context_text(e.context) for e in examples]) for split, examples in splits.items()}
    grid = (0.5, 5.0)
    classifier = StrategyClassifier(strategies, c_grid=grid).fit(splits["train"], vectors["train"],
                                                                   splits["val"], vectors["val"])
    assert classifier.c in grid and len(classifier.val_accuracy) == 2 * len(grid)
    assert classifier.val_accuracy[f"C={classifier.c},previous={classifier.use_previous}"] == \
        max(classifier.val_accuracy.values())
    predicted = classifier.predict(splits["test"], vectors["test"])
    assert len(predicted) == len(splits["test"]) and set(predicted) <= set(strategies)


def test_previous_strategy_is_the_latest_supporter_turn(esconv):
    _, splits = esconv
    for example in splits["train"]:
        supporter = [t for t in example.context if t.speaker == SUPPORTER]
        assert previous_strategy(example.context) == (supporter[-1].strategy if supporter else "")


@pytest.mark.parametrize("window", [1, 2, ALL_TURNS])
def test_a_training_context_retrieves_its_own_response(esconv, embed, window):
    _, splits = esconv
    train = splits["train"]
    retriever = RetrievalSupporter.fit(train, embed, window, CONTEXT_TURNS)
    texts = Counter(context_text(e.context, window).lower() for e in train)  # MiniLM is uncased
    unique = [e for e in train if texts[context_text(e.context, window).lower()] == 1]
    assert len(unique) > len(train) // 2
    strategies, responses = retriever.predict(unique, embed)
    assert responses == [e.response for e in unique] and strategies == [e.strategy for e in unique]


def test_respond_reads_a_live_chat_like_an_example(esconv, retriever):
    _, splits = esconv
    example = next(e for e in splits["train"] if len(e.context) == CONTEXT_TURNS)
    earlier = [(SEEKER, "an older turn the context window drops")]
    turns = earlier + [(t.speaker, t.text) for t in example.context]
    assert retriever.respond(turns) == (example.strategy, example.response)
    with pytest.raises(ValueError, match="speaker"):
        retriever.respond([("narrator", "hello")])


def test_save_and_load_give_identical_answers(esconv, embed, retriever, tmp_path):
    _, splits = esconv
    loaded = RetrievalSupporter.load(retriever.save(tmp_path / "retriever.npz"))
    assert not list(tmp_path.glob("*.tmp"))
    assert loaded.predict(splits["test"], embed) == retriever.predict(splits["test"], embed)
    chat = [(SEEKER, "I lost my job and I can't sleep."), (SUPPORTER, "That sounds hard."), (SEEKER, "It is.")]
    assert loaded.respond(chat) == retriever.respond(chat)
    assert np.array_equal(loaded.vectors, retriever.vectors)


def test_a_bad_file_is_a_one_line_error_naming_it(retriever, tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not an archive\n")
    vectors_only = tmp_path / "vectors_only.npz"
    np.savez(vectors_only, vectors=retriever.vectors)
    for path in (garbage, vectors_only, tmp_path / "missing.npz"):
        with pytest.raises(PipelineInputError) as error:
            RetrievalSupporter.load(path)
        assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_choose_window_takes_the_best_val_rouge(esconv, embed):
    _, splits = esconv
    window, scores = choose_window(splits["train"], splits["val"], embed, (1, ALL_TURNS), CONTEXT_TURNS)
    assert set(scores) == {"1", str(ALL_TURNS)} and scores[str(window)] == max(scores.values())


