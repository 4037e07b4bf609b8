import pytest

from flows.lib.text_metrics import bleu, distinct, minilm_embedding_f1, rouge
from models.runtime import load_sentence_model


@pytest.fixture(scope="module")
def minilm():
    return load_sentence_model()


def test_bleu_bounds_and_case():
    references = ["i have two dogs and a cat .", "my favorite food is pizza ."]
    assert bleu(references, references) == pytest.approx(100.0)
    assert bleu(["zebra quantum violin"] * 2, references) == pytest.approx(0.0)
    shouted = [r.upper() for r in references]
    assert bleu(shouted, references) < 10.0  # only the full stops match
    assert bleu(shouted, references, lowercase=True) == pytest.approx(100.0)
    assert bleu([], []) == 0.0
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        bleu(references, references[:1])


def test_rouge_by_hand():
    scores = rouge(["the cat sat"], ["the cat ran"])
    # unigrams: 2 of 3 on each side; bigrams: "the cat" of 2; LCS "the cat" = 2 of 3
    assert scores["rouge1"] == pytest.approx(2 / 3)
    assert scores["rouge2"] == pytest.approx(1 / 2)
    assert scores["rougeL"] == pytest.approx(2 / 3)
    assert rouge([], []) == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}


def test_distinct_counts_over_the_corpus():
    assert distinct(["a a a b"], 1) == pytest.approx(2 / 4)
    assert distinct(["a a a b"], 2) == pytest.approx(2 / 3)  # "a a" twice, "a b"
    assert distinct(["I like dogs.", "i like DOGS ."], 1) == pytest.approx(4 / 8)  # case and spacing do not count
    assert distinct([""], 2) == 0.0


def test_minilm_embedding_f1_orders_paraphrase_above_unrelated(minilm):
    reference = "I have two dogs."
    same = minilm_embedding_f1([reference], [reference], minilm)
    assert same["minilm_embedding_f1"] == pytest.approx(1.0, abs=1e-5)
    paraphrase = minilm_embedding_f1(["I own two dogs."], [reference], minilm)["minilm_embedding_f1"]
    unrelated = minilm_embedding_f1(["The stock market fell sharply."], [reference], minilm)["minilm_embedding_f1"]
    assert 1.0 > paraphrase > unrelated
    empty = minilm_embedding_f1([""], [reference], minilm)
    assert empty == {"minilm_embedding_p": 0.0, "minilm_embedding_r": 0.0, "minilm_embedding_f1": 0.0}


def test_bleu_up_to_order_n():
    references = ["i am so sorry to hear that", "have you talked to your boss about it"]
    assert bleu(references, references, lowercase=True, max_order=4) == pytest.approx(100)
    partial = ["i am sorry to hear about that", "have you asked your boss"]
    scores = [bleu(partial, references, lowercase=True, max_order=n) for n in (1, 2, 4)]
    assert 100 > scores[0] > scores[1] > scores[2] >= 0
    assert bleu(["I AM SO SORRY"], ["i am so sorry"], lowercase=True, max_order=1) == pytest.approx(100)  # lower-cased
    assert bleu(["zebra unicorn"], ["i am so sorry"], lowercase=True, max_order=1) == 0
