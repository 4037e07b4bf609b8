import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from eval_tiny import KS, tiny_project

from flows.cluster import cluster_settings
from flows.lib.amn_inference import load_checked_model, run_model
from flows.lib.character_clusters import METHODS, ClusterSettings, score_methods
from flows.lib.character_embeddings import agglomerative, read_embeddings
from flows.lib.config import load_params
from flows.lib.errors import PipelineInputError
from flows.lib.metrics import purity, purity_eq19
from flows.lib.paper import PAPER_TABLE3
from flows.lib.trope_data import encode_snippets, load_trope_data


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return tiny_project(tmp_path_factory)


def test_purity_on_a_hand_worked_example():
    gold = ["a", "a", "a", "b", "b", "c", "c", "c"]
    clusters = [0, 0, 1, 1, 1, 2, 2, 0]
    # clusters: 0 = {a, a, c} -> 2, 1 = {a, b, b} -> 2, 2 = {c, c} -> 2: (2 + 2 + 2) / 8
    assert purity(gold, clusters) == pytest.approx(6 / 8)
    # tropes: a -> largest cluster 0 (2), b -> 1 (2), c -> 2 (2): (2 + 2 + 2) / 8
    assert purity_eq19(gold, clusters) == pytest.approx(6 / 8)
    # the two definitions part at the extremes: singletons are perfectly pure, one cluster is
    # perfectly "complete"
    gold = ["a", "a", "b", "b", "b", "c"]
    assert purity(gold, range(6)) == 1.0 and purity_eq19(gold, range(6)) == pytest.approx(3 / 6)
    assert purity(gold, [0] * 6) == pytest.approx(3 / 6) and purity_eq19(gold, [0] * 6) == 1.0
    # cluster ids are names only
    assert purity(gold, [5, 5, 9, 9, 9, 7]) == 1.0 == purity_eq19(gold, ["x", "x", "y", "y", "y", "z"])


def test_finer_cuts_of_one_tree_raise_purity_and_lower_eq19():
    """Why the paper's Table 3 follows Eq 19 as printed: its numbers fall as k grows."""
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 6, size=40)
    vectors = rng.normal(size=(40, 8)) + 1.5 * np.eye(8)[gold]
    cuts = [agglomerative(vectors, k, "ward") for k in range(1, 41)]
    standard = [purity(gold, c) for c in cuts]
    printed = [purity_eq19(gold, c) for c in cuts]
    assert all(a <= b + 1e-12 for a, b in zip(standard, standard[1:])) and standard[-1] == 1.0
    assert all(a >= b - 1e-12 for a, b in zip(printed, printed[1:])) and printed[0] == 1.0


def test_scores_are_deterministic_under_a_seed_and_k_is_capped():
    rng = np.random.default_rng(1)
    gold = np.repeat(np.arange(4), 3)
    features = {"amn": rng.normal(size=(12, 5)) + 3 * np.eye(5)[gold], "tfidf": rng.random((12, 30))}
    settings = ClusterSettings(ks=[2, 4, 100], random_repeats=4, seed=3)
    first = score_methods(features, gold, settings)
    assert first == score_methods(features, gold, settings)
    assert set(first["purity"]) == {"amn", "tfidf", "random"} and set(first["purity"]["amn"]) == {"2", "4", "100"}
    # k = 100 > 12 characters: cut at 12, every character alone
    assert first["purity"]["amn"]["100"] == 100.0
    assert first["purity_eq19"]["amn"]["100"] == pytest.approx(100 / 3, abs=0.01)
    other_seed = score_methods(features, gold, ClusterSettings(ks=[2, 4, 100], random_repeats=4, seed=4))
    assert other_seed["purity"]["amn"] == first["purity"]["amn"]  # agglomerative has no randomness
    assert other_seed["purity"]["random"] != first["purity"]["random"]


def test_cluster_params_are_checked():
    params = load_params()
    assert cluster_settings(params).ks == params["cluster"]["ks"]
    params["cluster"]["linkage"] = "centroid"
    with pytest.raises(PipelineInputError, match="cluster.linkage.*valid: ward"):
        cluster_settings(params)
    params["cluster"]["linkage"] = "ward"
    params["cluster"]["ks"] = [25, "50"]
    with pytest.raises(PipelineInputError, match="cluster.ks"):
        cluster_settings(params)


@pytest.mark.slow
def test_cluster_stage_scores_amn_and_references_on_the_same_characters(project):
    metrics = json.loads((project / "metrics" / "purity.json").read_text())
    data = load_trope_data(project / "data" / "snippets_screenplays.parquet", project / "data" / "characters.parquet",
                           project / "data" / "tropes.parquet")
    char_ids, rows = data.characters()
    assert metrics["characters"] == len(char_ids) == 12 and metrics["tropes"] == 4
    assert metrics["k_used"] == {str(k): min(k, 12) for k in KS} and metrics["paper"] == PAPER_TABLE3
    for measure in ("purity", "purity_eq19"):
        assert set(metrics[measure]) == set(METHODS)
        for method in METHODS:
            assert all(0 < metrics[measure][method][str(k)] <= 100 for k in KS)
    # every snippet of every character, in story order
    assert [len(r) for r in rows] == [int((np.array(data.char_ids) == c).sum()) for c in char_ids]
    assert all((np.diff(r) > 0).all() for r in rows)

    stored_ids, n_snippets, z, probs = read_embeddings(project / "data" / "character_embeddings.parquet")
    assert stored_ids == char_ids and list(n_snippets) == [len(r) for r in rows]
    assert np.allclose(probs.sum(1), 1, atol=1e-5)
    trained = load_checked_model(project / "artifacts" / "amn" / "model.pt", data, torch.device("cpu"))
    again = run_model(trained.model, encode_snippets(data, trained.vocab, 12), rows[:2], 2, torch.device("cpu"))
    assert np.allclose(again.z, z[:2], atol=1e-5)
    schema = pq.read_schema(project / "data" / "character_embeddings.parquet")
    assert schema.names == ["char_id", "n_snippets", "z", "probs"]
