"""Text-generation metrics shared by the persona extractor and the response generator.

- `bleu`: corpus sacreBLEU (0-100, 13a tokenisation, cumulative n-grams up to max_order with
  the brevity penalty), one reference per hypothesis.
- `rouge`: mean ROUGE-1/2/L F-measure (rouge-score, no stemming; 0-1).
- `distinct`: distinct-n (Li et al. 2016), distinct n-grams / all n-grams over the corpus.
- `minilm_embedding_f1`: a BERTScore-like greedy token matching with the offline MiniLM
  sentence-transformer's last-layer token embeddings. It is NOT BERTScore: other model and
  layer, no idf weighting, no baseline rescaling; numbers are not comparable with BERTScore's.
  P = mean over hypothesis tokens of the best cosine to a reference token, R the converse,
  F1 = 2PR/(P+R), averaged over pairs; [CLS]/[SEP] are left out; an empty side scores 0.
"""
from __future__ import annotations

import re

import numpy as np

_WORD = re.compile(r"\w+|[^\w\s]")


def _check_pairs(hypotheses: list[str], references: list[str]) -> None:
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")


def bleu(hypotheses: list[str], references: list[str], lowercase: bool = False, max_order: int = 4) -> float:
    from sacrebleu.metrics import BLEU

    _check_pairs(hypotheses, references)
    if not hypotheses:
        return 0.0
    return float(BLEU(max_ngram_order=max_order, lowercase=lowercase).corpus_score(hypotheses, [references]).score)


def rouge(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    from rouge_score import rouge_scorer

    _check_pairs(hypotheses, references)
    kinds = ("rouge1", "rouge2", "rougeL")
    scorer = rouge_scorer.RougeScorer(list(kinds), use_stemmer=False)
    scores = [scorer.score(reference, hypothesis) for hypothesis, reference in zip(hypotheses, references)]
    return {kind: float(np.mean([s[kind].fmeasure for s in scores])) if scores else 0.0 for kind in kinds}


def distinct(texts: list[str], n: int) -> float:
    grams = [
        tuple(tokens[i : i + n])
        for tokens in (_WORD.findall(text.lower()) for text in texts)
        for i in range(len(tokens) - n + 1)
    ]
    return len(set(grams)) / len(grams) if grams else 0.0


def minilm_embedding_f1(hypotheses: list[str], references: list[str], sentence_model) -> dict[str, float]:
    """sentence_model: a loaded sentence-transformers model (models.runtime.load_sentence_model)."""
    _check_pairs(hypotheses, references)
    if not hypotheses:
        return {"minilm_embedding_p": 0.0, "minilm_embedding_r": 0.0, "minilm_embedding_f1": 0.0}
    texts = sorted(set(hypotheses) | set(references))
    encoded = sentence_model.encode(texts, batch_size=64, output_value="token_embeddings", convert_to_numpy=False, show_progress_bar=False
    )
    tokens = {}
    for text, matrix in zip(texts, encoded):
        matrix = matrix[1:-1].float().cpu().numpy()  # [n_tokens, d] without [CLS] / [SEP]
        tokens[text] = matrix / np.clip(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12, None)
    precision, recall, f1 = [], [], []
    for hypothesis, reference in zip(hypotheses, references):
        h, r = tokens[hypothesis], tokens[reference]
        p = rc = 0.0
        if len(h) and len(r):
            cosine = h @ r.T  # [n_h, n_r]
            p, rc = float(cosine.max(axis=1).mean()), float(cosine.max(axis=0).mean())
        precision.append(p)
        recall.append(rc)
        f1.append(2 * p * rc / (p + rc) if p + rc > 0 else 0.0)
    return {
        "minilm_embedding_p": float(np.mean(precision)),
        "minilm_embedding_r": float(np.mean(recall)),
        "minilm_embedding_f1": float(np.mean(f1)),
    }
