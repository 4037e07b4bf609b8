"""The unseen-character path end to end on the fixture: embed_snippets fills the embedding cache
with real MiniLM vectors and a rerun with unchanged text loads no model; the sentence AMN trains
on them; unseen_tropes writes one object per system in the issue's format."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from flows.lib.embedding_cache import cached_vectors, embed_with_cache
from flows.lib.errors import PipelineInputError
from flows.lib.unseen_amn import SentenceAMNSettings, train_sentence_amn, trope_scores

pytestmark = pytest.mark.usefixtures("one_thread")
FIXTURE = Path(__file__).parent / "fixtures" / "ziems"
PROJECT_PARAMS = Path(__file__).parents[1] / "params.yaml"


@pytest.fixture
def params(tmp_path, monkeypatch):
    shutil.copytree(FIXTURE, tmp_path / "data_root")
    monkeypatch.chdir(tmp_path)
    params = yaml.safe_load(PROJECT_PARAMS.read_text())
    params["data"]["root"] = str(tmp_path / "data_root")
    params["unseen"].update(window=2, val_share=0.4, empty_rows=[6], bootstrap=50, logreg_cs=[1.0, 10.0],
                            answers=["tiny"])
    params["unseen"]["amn"].update(attn_dim=8, max_epochs=3, batch_size=2, draw=4)
    return params


def test_cache_encodes_only_new_texts_and_a_rerun_loads_no_model(params, monkeypatch):
    from flows.embed_snippets import embed_snippets
    from models import runtime

    first = embed_snippets(params)
    assert 0 < first["encoded"] <= first["texts"]
    cache = Path(params["paths"]["snippet_embeddings"])
    stamp = cache.stat().st_mtime_ns

    def no_model(*args, **kwargs):
        raise AssertionError("a rerun with unchanged text loaded the sentence model")

    monkeypatch.setattr(runtime, "load_sentence_model", no_model)
    assert embed_snippets(params) == {"texts": first["texts"], "encoded": 0}
    assert cache.stat().st_mtime_ns == stamp

    model_name = params["embed"]["model"]
    assert embed_with_cache(["a new line"], cache, model_name, lambda texts: np.ones((len(texts), 384)))["encoded"] == 1
    assert cached_vectors(["a new line"], cache, model_name).shape == (1, 384)
    with pytest.raises(PipelineInputError, match=r"snippets\.parquet: no '.+' embedding for 1 of 1 texts; run the embed_snippets stage"):
        cached_vectors(["never embedded"], cache, model_name)


def test_stage_writes_one_object_per_system(params):
    from flows.embed_snippets import embed_snippets
    from flows.unseen_tropes import unseen_tropes

    embed_snippets(params)
    unseen_tropes(params)
    metrics = json.loads(Path(params["paths"]["unseen_tropes_metrics"]).read_text())
    for system in ("amn", "majority", "tfidf_lr", "minilm_lr", "minilm_lr_zero_shot", "zero_shot_descriptions", "tiny"):
        row = metrics[system]
        assert set(row) >= {"accuracy", "top5_accuracy", "macro_f1", "n"} and row["n"] == 3
        assert row["accuracy_ci95"][0] <= row["accuracy"] <= row["accuracy_ci95"][1]
    assert metrics["tiny"]["accuracy"] == pytest.approx(1 / 3, abs=1e-4)  # right on the first character only
    assert metrics["protocol"]["characters"]["headline"] == {"train": 3, "val": 2, "refit": 5, "test": 3}
    assert metrics["protocol"]["characters"]["with_shared_movies"]["refit"] == 6
    assert 1 <= metrics["choices"]["headline"]["amn"]["epochs"] <= 3
    purity = metrics["purity"]
    assert set(purity) == {"amn_z", "minilm_lr_probabilities", "mean_minilm", "random"}
    assert set(purity["amn_z"]["10"]) == {"purity", "purity_eq19", "nmi"}
    # 3 test characters of 3 tropes, k capped at 3: every character alone, both purities 1
    assert purity["amn_z"]["10"]["purity"] == 1.0 and purity["amn_z"]["10"]["purity_eq19"] == 1.0


def test_sentence_amn_learns_tropes_of_new_characters_and_scores_new_descriptions():
    """Characters whose snippets lie near their trope's description vector: trained on some, the
    AMN ranks the right trope first for characters it never saw, and scores descriptions of
    tropes it never trained on through R^P."""
    rng = np.random.default_rng(0)
    tropes = rng.normal(size=(4, 32)).astype(np.float32)
    tropes /= np.linalg.norm(tropes, axis=1, keepdims=True)

    def characters(n):
        gold = [[int(i % 4)] for i in range(n)]
        vectors = [(tropes[g[0]] + 0.8 * rng.normal(size=(int(rng.integers(3, 12)), 32))).astype(np.float32)
                   for g in gold]
        return vectors, gold

    train_vectors, train_gold = characters(40)
    test_vectors, test_gold = characters(20)
    settings = SentenceAMNSettings(hidden=32, attn_dim=16, dropout=0.1, max_epochs=15, batch_size=8, draw=8, lr=5e-3,
                                   zero_shot_init=False)
    model, history = train_sentence_amn(train_vectors, train_gold, tropes, settings, 15, val=(test_vectors, test_gold))
    assert history[-1]["loss"] < history[0]["loss"]
    predicted = trope_scores(model, test_vectors, settings).argmax(1)
    assert (predicted == np.array([g[0] for g in test_gold])).mean() >= 0.9
    from flows.lib.unseen_amn import _batch

    tokens, mask = _batch(test_vectors[:2], [np.arange(len(v)) for v in test_vectors[:2]])
    unseen_description = torch.from_numpy(np.concatenate([tropes, -tropes[:1]]))  # a fifth trope, never trained on
    cosines = model.score_descriptions(tokens, mask, unseen_description)
    assert cosines.shape == (2, 5)


def test_zero_shot_init_starts_at_the_zero_shot_reference():
    """Before any step, the AMN's ranking is the zero-shot reference's: centred snippet vectors
    against centred trope texts (characters with one snippet, where pooling is exact; unit
    vectors like MiniLM's, where the snippet encoder's tanh is nearly the identity)."""
    from flows.lib.unseen_amn import center_rows
    from flows.lib.unseen_references import zero_shot_scores

    rng = np.random.default_rng(1)
    tropes = rng.normal(size=(6, 384)).astype(np.float32)
    snippets = rng.normal(size=(10, 384)).astype(np.float32)
    snippets /= np.linalg.norm(snippets, axis=1, keepdims=True)
    settings = SentenceAMNSettings(memory="ks")
    model, _ = train_sentence_amn([s[None] for s in snippets], [[0]] * 10, tropes, settings, epochs=0)
    amn = trope_scores(model, [s[None] for s in snippets], settings)
    reference = zero_shot_scores(snippets, tropes)
    assert (amn.argmax(1) == reference.argmax(1)).all()
    ranks = lambda x: x.argsort(1).argsort(1)  # noqa: E731
    assert (np.abs(ranks(amn) - ranks(reference)) <= 1).all()  # at most neighbours swap (tanh is not exactly linear)
    assert np.allclose(np.linalg.norm(center_rows(tropes), axis=1), 1, atol=1e-5)


def test_purity_measures_reward_opposite_extremes():
    from flows.lib.unseen_purity import cluster_measures

    gold = np.array([0, 0, 0, 1, 1, 2])
    one_cluster = cluster_measures(gold, np.zeros(6, dtype=int))
    assert one_cluster == {"purity": 0.5, "purity_eq19": 1.0, "nmi": 0.0}
    singletons = cluster_measures(gold, np.arange(6))
    assert singletons["purity"] == 1.0 and singletons["purity_eq19"] == 0.5
    assert cluster_measures(gold, gold)["nmi"] == 1.0
