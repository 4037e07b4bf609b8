"""PAL's response metrics (flows/lib/pal_metrics.py) on hand-worked pairs, against nltk's
corpus_bleu with PAL's settings, and their bootstrap intervals."""
from __future__ import annotations

import math

import numpy as np
import pytest
from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu

from flows.lib.pal_metrics import pal_perplexity, pal_scores, pal_scores_with_intervals, pal_tokenize

BETA2 = 1.2**2


def test_tokens_are_lower_cased_nltk_words_split_per_sentence():
    # sentence-final periods come off every sentence, not only the last one (Punkt split)
    assert pal_tokenize("I can't, really. OK?") == ["i", "ca", "n't", ",", "really", ".", "ok", "?"]
    # where PAL's English Punkt model knows the abbreviation it would keep "mr." whole
    assert pal_tokenize("Mr. Smith") == ["mr", ".", "smith"]


def test_one_pair_worked_by_hand():
    # hyp: the cat sat on the mat   ref: the cat is on the mat   (6 tokens each)
    # matches / hyp n-grams: 1-grams 5/6 (the x2, cat, on, mat), 2-grams 3/5 (the cat, on the,
    # the mat), 3-grams 1/4 (on the mat), 4-grams 0/3 -> method3: 1/(2*3); brevity 1 (6 vs 6)
    scores = pal_scores(["The cat sat on the mat"], ["the cat is on the mat"])
    assert scores["bleu_1"] == pytest.approx(100 * 5 / 6)
    assert scores["bleu_2"] == pytest.approx(100 * math.sqrt(5 / 6 * 3 / 5))
    assert scores["bleu_3"] == pytest.approx(100 * 0.5)  # (5/6 * 3/5 * 1/4) = 1/8
    assert scores["bleu_4"] == pytest.approx(100 * (1 / 48) ** 0.25)  # 1/8 * 1/6
    # Dist leaves out the last k-gram (PAL's range(len - k)): 1-grams the cat sat on the -> 4/5;
    # 2-grams the-cat cat-sat sat-on on-the -> 4/4; 3-grams 3/3
    assert (scores["dist_1"], scores["dist_2"], scores["dist_3"]) == pytest.approx((80.0, 100.0, 100.0))
    # overlap 5 -> P = R = F1 = 5/6; LCS "the cat on the mat" = 5 -> P = R -> ROUGE-L = 5/6
    assert scores["f1"] == pytest.approx(100 * 5 / 6)
    assert scores["rouge_l"] == pytest.approx(100 * 5 / 6)
    assert scores["length"] == 6


def test_two_pairs_worked_by_hand():
    # A: hyp i am sad . (4)  ref i am very sad today . (6)
    # B: hyp ok ok ok (3)    ref ok fine (2)
    scores = pal_scores(["I am sad.", "ok ok ok"], ["I am very sad today.", "ok fine"])
    # corpus sums: 1-grams (4 + 1)/(4 + 3) = 5/7; 2-grams (1 "i am" + 0)/(3 + 2) = 1/5;
    # 3-grams 0/(2 + 1) -> 1/(2*3); 4-grams 0/(1 + max(1, 0)) -> 1/(4*2);
    # brevity: hyp 7 < ref 8 -> exp(1 - 8/7)
    brevity = math.exp(1 - 8 / 7)
    assert scores["bleu_1"] == pytest.approx(100 * brevity * 5 / 7)
    assert scores["bleu_2"] == pytest.approx(100 * brevity * (5 / 7 * 1 / 5) ** (1 / 2))
    assert scores["bleu_3"] == pytest.approx(100 * brevity * (1 / 7 * 1 / 6) ** (1 / 3))
    assert scores["bleu_4"] == pytest.approx(100 * brevity * (1 / 42 * 1 / 8) ** (1 / 4))
    # Dist over both, last k-gram of each left out: 1-grams i am sad | ok ok -> 4/5;
    # 2-grams i-am am-sad | ok-ok -> 3/3; 3-grams i-am-sad | (none) -> 1/1
    assert (scores["dist_1"], scores["dist_2"], scores["dist_3"]) == pytest.approx((80.0, 100.0, 100.0))
    # F1: A overlap 4, P 1, R 2/3 -> 0.8; B overlap 1, P 1/3, R 1/2 -> 0.4; mean 0.6
    assert scores["f1"] == pytest.approx(60.0)
    # ROUGE-L (1 + b^2) P R / (R + b^2 P): A LCS 4, P 1, R 2/3; B LCS 1, P 1/3, R 1/2
    rouge_a = (1 + BETA2) * 1 * (2 / 3) / (2 / 3 + BETA2 * 1)  # 0.7722; F1 would give 0.8
    rouge_b = (1 + BETA2) * (1 / 3) * (1 / 2) / (1 / 2 + BETA2 / 3)  # 0.4150
    assert scores["rouge_l"] == pytest.approx(100 * (rouge_a + rouge_b) / 2)
    assert scores["length"] == 3.5


def test_empty_hypothesis_scores_zero():
    scores = pal_scores([""], ["hello there"])
    assert all(scores[name] == 0.0 for name in scores)


def test_corpus_bleu_equals_nltk_with_pal_settings():
    rng = np.random.default_rng(3)
    words = "i you feel sad it is hard ok . , ? the a to".split()
    hypotheses = ["The cat sat on the mat", "I am sad.", "ok ok ok"]
    references = ["the cat is on the mat", "I am very sad today.", "ok fine"]
    hypotheses += [" ".join(rng.choice(words, size=rng.integers(0, 9))) for _ in range(6)]
    references += [" ".join(rng.choice(words, size=rng.integers(1, 9))) for _ in range(6)]
    scores = pal_scores(hypotheses, references)
    tokens = [pal_tokenize(text) for text in hypotheses]
    reference_lists = [[pal_tokenize(text)] for text in references]
    for order in range(1, 5):
        weights = [1 / order] * order + [0.0] * (4 - order)
        expected = corpus_bleu(reference_lists, tokens, weights=weights, smoothing_function=SmoothingFunction().method3)
        assert scores[f"bleu_{order}"] == pytest.approx(100 * expected)


def test_perplexity_is_exp_of_the_token_mean_nll():
    # 11 nats over 10 tokens -> exp(1.1); the mean of per-example perplexities would be (e^2 + e^1) / 2
    assert pal_perplexity([2.0, 9.0], [1, 9]) == pytest.approx(math.exp(1.1))
    with pytest.raises(ValueError):
        pal_perplexity([2.0], [1, 9])


def test_intervals_contain_the_point_values():
    rng = np.random.default_rng(0)
    words = "i you feel sad it is hard ok . the a to that so much".split()
    hypotheses = [" ".join(rng.choice(words, size=rng.integers(3, 15))) for _ in range(60)]
    references = [" ".join(rng.choice(words, size=rng.integers(3, 15))) for _ in range(60)]
    nll_sums, token_counts = rng.uniform(10, 60, size=60), rng.integers(5, 20, size=60)
    result = pal_scores_with_intervals(
        hypotheses, references, n_resamples=200, seed=0, nll_sums=nll_sums, token_counts=token_counts
    )
    point = pal_scores(hypotheses, references) | {"perplexity": pal_perplexity(nll_sums, token_counts)}
    assert result["n"] == 60
    for name, value in point.items():
        low, high = result[f"{name}_ci95"]
        assert result[name] == pytest.approx(value, abs=1e-4)
        assert low <= result[name] <= high, name
        assert low < high, name


def test_mismatched_pairs_are_refused():
    with pytest.raises(ValueError):
        pal_scores(["a"], ["a", "b"])
