"""PAL's response metrics, reimplemented so a generator's ESConv outputs can be scored on PAL's
terms beside ours (flows/lib/generator_eval.py).

Sources read (PAL: Cheng et al., Findings ACL 2023; generation code derived from
thu-coai/Emotional-Support-Conversation `codes_zcj`):

- chengjl19/PAL `codes/infer.py` (snapshot 74e3d69; the notes cite a6e38cf): the perplexity and the
  pairs handed to `Metric.forword([reference], hypothesis)`;
- `codes/metric/myMetrics.py`: PAL's snapshot holds only its compiled .pyc; the text was read in
  the fork trandat812003/PAL @ a123c4c, identical to thu-coai/Emotional-Support-Conversation
  `codes_zcj/metric/myMetrics.py` @ 4a5ef3a except for two commented-out imports;
- `codes_zcj/utils/eval_utils.py` (eval_model_loss) @ 4a5ef3a and PAL `codes/models/
  strat_blenderbot_small.py` (forward, validation branch) for what the perplexity counts;
- nltk 3.10.4 `nltk/translate/bleu_score.py` (corpus_bleu, modified_precision, method3).

Definitions, on PAL's scale (all x100 except `length` and perplexity); one reference per pair:

- tokens: PAL lower-cases and runs `nltk.word_tokenize` (Punkt sentence split with the English
  `punkt` model, then NLTKWordTokenizer per sentence). That model is not installed here and
  cannot be fetched offline, so `pal_tokenize` splits sentences with nltk's *untrained*
  PunktSentenceTokenizer (same algorithm, no learned abbreviations), then NLTKWordTokenizer.
  It differs from PAL only where the English model knows an abbreviation: PAL keeps "mr." or
  "e.g." whole, this splits off the period ("mr", "."). Same tokens for the same text on every
  machine, whether or not punkt data happens to be installed.
- bleu_k: nltk corpus_bleu, weights (1/k,)*k padded with zeros to 4 orders, smoothing method3.
  Per pair and order n: clipped n-gram matches and max(1, hypothesis n-grams) (nltk floors each
  pair's denominator at 1); summed over the corpus; 0 if no unigram matches; an order with no
  match gets 1 / (2^j * its denominator), j counting the zero orders so far; brevity penalty
  from the summed lengths: 1 if hypotheses are longer, else exp(1 - ref_len / hyp_len).
- dist_k: distinct k-grams / counted k-grams over all hypotheses (corpus level). PAL's loop
  `range(0, len(sen) - k)` skips each hypothesis's last k-gram (dist_1 ignores its last token);
  that is kept so the figures compare with PAL's.
- f1: per pair, overlap = multiset intersection of hypothesis and reference tokens,
  P = overlap / |hyp|, R = overlap / |ref|, F1 = 2PR / (P + R) (0 when both 0); mean over pairs.
- rouge_l: per pair, LCS of the token lists, P = LCS / |hyp|, R = LCS / |ref|,
  score = (1 + b^2) P R / (R + b^2 P) with b = 1.2 (0 if P or R is 0); mean over pairs.
- length: mean hypothesis length in tokens.
- perplexity: exp(sum of NLL / sum of tokens) over all examples (eval_model_loss), not a mean of
  per-example perplexities. PAL's tokens are its labels: [strategy] + response BPE + </s> (the line
  that would mask the strategy is commented out), scored by the persona-fused model without the
  contrastive strategy decoding; callers pass NLL sums and counts over the same targets.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from nltk.tokenize import NLTKWordTokenizer
from nltk.tokenize.punkt import PunktSentenceTokenizer

from flows.lib.bootstrap import bootstrap

ROUGE_BETA = 1.2
BLEU_ORDERS = 4
DIST_ORDERS = 3

_SENTENCES = PunktSentenceTokenizer()
_WORDS = NLTKWordTokenizer()


def pal_tokenize(text: str) -> list[str]:
    lowered = text.lower()
    return [token for sentence in _SENTENCES.tokenize(lowered) for token in _WORDS.tokenize(sentence)]


def _ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def _lcs_length(a: list[str], b: list[str]) -> int:
    previous = [0] * (len(b) + 1)
    for token in a:
        current = [0]
        for j, other in enumerate(b):
            current.append(previous[j] + 1 if token == other else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def _unigram_f1(hypothesis: list[str], reference: list[str]) -> float:
    overlap = sum((Counter(hypothesis) & Counter(reference)).values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(hypothesis), overlap / len(reference)
    return 2 * precision * recall / (precision + recall)


def _rouge_l(hypothesis: list[str], reference: list[str], beta: float = ROUGE_BETA) -> float:
    lcs = _lcs_length(hypothesis, reference)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(hypothesis), lcs / len(reference)
    return (1 + beta**2) * precision * recall / (recall + beta**2 * precision)


@dataclass(frozen=True)
class _PairCounts:
    """Everything the corpus figures need, per pair, so a resample only re-adds arrays."""

    bleu_matches: np.ndarray  # [n_pairs, 4] clipped n-gram matches, orders 1..4
    bleu_totals: np.ndarray  # [n_pairs, 4] max(1, hypothesis n-grams)
    hypothesis_lengths: np.ndarray  # [n_pairs]
    reference_lengths: np.ndarray  # [n_pairs]
    f1: np.ndarray  # [n_pairs] in 0-1
    rouge_l: np.ndarray  # [n_pairs] in 0-1
    # per dist order: (id of each counted k-gram [m], pair it comes from [m], number of distinct ids)
    dist_grams: tuple[tuple[np.ndarray, np.ndarray, int], ...]


def _pair_counts(hypotheses: Sequence[str], references: Sequence[str]) -> _PairCounts:
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if not hypotheses:
        raise ValueError("PAL metrics: no hypotheses")
    hyp_tokens = [pal_tokenize(text) for text in hypotheses]
    ref_tokens = [pal_tokenize(text) for text in references]
    matches = np.zeros((len(hyp_tokens), BLEU_ORDERS), dtype=np.int64)
    totals = np.zeros_like(matches)
    for i, (hyp, ref) in enumerate(zip(hyp_tokens, ref_tokens)):
        for order in range(1, BLEU_ORDERS + 1):
            hyp_counts, ref_counts = Counter(_ngrams(hyp, order)), Counter(_ngrams(ref, order))
            matches[i, order - 1] = sum(min(count, ref_counts[gram]) for gram, count in hyp_counts.items())
            totals[i, order - 1] = max(1, sum(hyp_counts.values()))
    dist_grams = []
    for order in range(1, DIST_ORDERS + 1):
        ids: dict[tuple[str, ...], int] = {}
        gram_ids, owners = [], []
        for i, hyp in enumerate(hyp_tokens):
            grams = _ngrams(hyp, order)[:-1]  # PAL's range(len - k) leaves out the last k-gram
            gram_ids.extend(ids.setdefault(gram, len(ids)) for gram in grams)
            owners.extend([i] * len(grams))
        dist_grams.append((np.array(gram_ids, dtype=np.int64), np.array(owners, dtype=np.int64), len(ids)))
    return _PairCounts(
        bleu_matches=matches,
        bleu_totals=totals,
        hypothesis_lengths=np.array([len(t) for t in hyp_tokens], dtype=np.int64),
        reference_lengths=np.array([len(t) for t in ref_tokens], dtype=np.int64),
        f1=np.array([_unigram_f1(h, r) for h, r in zip(hyp_tokens, ref_tokens)]),
        rouge_l=np.array([_rouge_l(h, r) for h, r in zip(hyp_tokens, ref_tokens)]),
        dist_grams=tuple(dist_grams),
    )


def _corpus_bleu(matches: np.ndarray, totals: np.ndarray, hyp_length: int, ref_length: int, order: int) -> float:
    """nltk corpus_bleu from summed counts: weights 1/order on orders 1..order, method3 smoothing."""
    if matches[0] == 0:
        return 0.0
    log_precision, zero_orders = 0.0, 0
    for matched, total in zip(matches[:order], totals[:order]):
        if matched == 0:
            zero_orders += 1
            log_precision += math.log(1 / (2**zero_orders * total))
        else:
            log_precision += math.log(matched / total)
    brevity = 1.0 if hyp_length > ref_length else math.exp(1 - ref_length / hyp_length)
    return brevity * math.exp(log_precision / order)


def _dist_scores(pairs: _PairCounts, draws: np.ndarray) -> dict[str, float]:
    """dist_1..dist_3 over the hypotheses drawn `draws[i]` times each."""
    scores = {}
    for order, (gram_ids, owners, n_ids) in enumerate(pairs.dist_grams, start=1):
        counted = int(draws[owners].sum())
        seen = np.zeros(n_ids, dtype=bool)
        seen[gram_ids[draws[owners] > 0]] = True
        scores[f"dist_{order}"] = 100 * int(seen.sum()) / counted if counted else 0.0
    return scores


def _dist_half_sample_intervals(
    pairs: _PairCounts, point: dict[str, float], n_resamples: int, seed: int, digits: int = 4
) -> dict[str, list[float]]:
    """95% intervals for dist_k from half-samples drawn without replacement, centred on the point.

    The with-replacement bootstrap cannot serve Dist: a resample repeats about a third of the
    hypotheses, whose repeated k-grams count in the total but add no distinct ones, so every
    resample falls far below the point (on 3,000 ESConv turns, dist_3 76.5 vs [49.6, 52.3]).
    A half-sample has no repeats, and the mean over a half-sample without replacement has the
    variance of the mean over all n (sigma^2/m * (n-m)/(n-1), m = n/2); Dist over fewer
    hypotheses runs higher, so the spread around the half-samples' own mean is added to the
    point. An approximation for a non-linear statistic: on ESConv supporter turns, the spread of
    dist_1/2/3 over 400 independent 1,000-turn corpora (sd 0.20/0.52/0.47) against the half-sample
    sd within one such corpus (0.25-0.27/0.53-0.58/0.39-0.44, five corpora): dist_1 somewhat wide,
    dist_3 up to a fifth narrow."""
    n = len(pairs.f1)
    rng = np.random.default_rng(seed)
    draws = np.zeros((n_resamples, n), dtype=np.int64)
    for row in draws:
        row[rng.choice(n, size=max(1, n // 2), replace=False)] = 1
    values = [_dist_scores(pairs, row) for row in draws]
    intervals = {}
    for name in values[0]:
        spread = np.array([value[name] for value in values])
        low, high = point[name] + np.percentile(spread - spread.mean(), [2.5, 97.5])
        intervals[f"{name}_ci95"] = [round(float(low), digits), round(float(high), digits)]
    return intervals


def _scores_at(pairs: _PairCounts, indices: np.ndarray) -> dict[str, float]:
    """PAL's figures over the pairs at `indices` (repeats count as often as drawn)."""
    draws = np.bincount(indices, minlength=len(pairs.f1))  # [n_pairs] times each pair is in
    matches, totals = draws @ pairs.bleu_matches, draws @ pairs.bleu_totals
    hyp_length, ref_length = int(draws @ pairs.hypothesis_lengths), int(draws @ pairs.reference_lengths)
    scores = {
        f"bleu_{order}": 100 * _corpus_bleu(matches, totals, hyp_length, ref_length, order)
        for order in range(1, BLEU_ORDERS + 1)
    }
    scores.update(_dist_scores(pairs, draws))
    scores["f1"] = 100 * float(draws @ pairs.f1) / len(indices)
    scores["rouge_l"] = 100 * float(draws @ pairs.rouge_l) / len(indices)
    scores["length"] = hyp_length / len(indices)
    return scores


def pal_scores(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """bleu_1..bleu_4, dist_1..dist_3, f1, rouge_l (x100) and length, as PAL's Metric.close()."""
    pairs = _pair_counts(hypotheses, references)
    return _scores_at(pairs, np.arange(len(hypotheses)))


def _nll_arrays(nll_sums: Sequence[float], token_counts: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    nll, counts = np.asarray(nll_sums, dtype=np.float64), np.asarray(token_counts, dtype=np.float64)
    if nll.shape != counts.shape or nll.ndim != 1:
        raise ValueError(f"{nll.size} NLL sums but {counts.size} token counts")
    if counts.sum() <= 0:
        raise ValueError("PAL perplexity: no tokens")
    return nll, counts


def pal_perplexity(nll_sums: Sequence[float], token_counts: Sequence[int]) -> float:
    """exp(sum of per-example NLL sums (nats) / sum of their token counts)."""
    nll, counts = _nll_arrays(nll_sums, token_counts)
    return float(np.exp(nll.sum() / counts.sum()))


def pal_scores_with_intervals(
    hypotheses: list[str],
    references: list[str],
    n_resamples: int = 1000,
    seed: int = 0,
    nll_sums: Sequence[float] | None = None,
    token_counts: Sequence[int] | None = None,
) -> dict[str, object]:
    """pal_scores (and pal_perplexity when NLL sums and token counts are given, one per pair)
    with 95% percentile bootstrap intervals over pairs; every corpus figure is recomputed on
    each resample, all from the same draws, except dist_k's intervals, which come from
    half-samples (_dist_half_sample_intervals)."""
    pairs = _pair_counts(hypotheses, references)
    perplexity_inputs = None
    if nll_sums is not None or token_counts is not None:
        if nll_sums is None or token_counts is None:
            raise ValueError("PAL perplexity needs both nll_sums and token_counts")
        perplexity_inputs = _nll_arrays(nll_sums, token_counts)
        if len(perplexity_inputs[0]) != len(hypotheses):
            raise ValueError(f"{len(perplexity_inputs[0])} NLL sums for {len(hypotheses)} hypotheses")

    def statistic(indices: np.ndarray) -> dict[str, float]:
        scores = _scores_at(pairs, indices)
        if perplexity_inputs is not None:
            nll, counts = perplexity_inputs
            scores["perplexity"] = float(np.exp(nll[indices].sum() / counts[indices].sum()))
        return scores

    result = bootstrap(statistic, len(hypotheses), n_resamples=n_resamples, seed=seed)
    result.update(_dist_half_sample_intervals(pairs, _scores_at(pairs, np.arange(len(hypotheses))), n_resamples, seed))
    return result
