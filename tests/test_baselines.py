import pytest
from amn_tiny import write_tiny_dataset

from flows.lib.reference_classifiers import BaselineSettings, character_lines, run_baselines
from flows.lib.trope_data import load_trope_data

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on one thread (conftest)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    paths = write_tiny_dataset(tmp_path_factory.mktemp("tiny"), chars_per_trope=3)
    return load_trope_data(paths["snippets"], paths["characters"], paths["tropes"])


def test_character_documents_hold_own_lines_of_one_split(tiny_data):
    texts, labels = character_lines(tiny_data, "test")
    assert len(texts) == len(labels) == 12 and all(len(t) == 3 for t in texts)
    own_lines = {" ".join(tiny_data.lines["D"][row]) for row in range(len(tiny_data.char_ids))
                 if tiny_data.splits[row] == "test"}
    assert {text for character in texts for text in character} == own_lines


@pytest.mark.slow
def test_baselines_score_the_test_split(tiny_data):
    results = run_baselines(tiny_data, "all-MiniLM-L6-v2", BaselineSettings(embed_batch_size=16))
    assert results["examples"] == {"train": 12, "test": 12}
    for name in ("majority", "tfidf_logreg", "minilm_logreg"):
        assert set(results[name]) == {"accuracy", "precision", "recall", "f1", "f1_macro"}
    assert results["majority"]["accuracy"] == pytest.approx(3 / 12)  # 4 balanced tropes
    # the tiny data's tropes have their own words: the text models beat the majority class
    assert results["tfidf_logreg"]["accuracy"] > results["majority"]["accuracy"]
    assert results["minilm_logreg"]["accuracy"] > results["majority"]["accuracy"]
