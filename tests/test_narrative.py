import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from eval_tiny import SHARED_MOVIE, tiny_project

from flows.lib.character_narrative import cosine_similarities, movie_embeddings, nearest_neighbours, trope_cooccurrence
from models.vocab import tokenize


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return tiny_project(tmp_path_factory)


@pytest.fixture(scope="module")
def narrative(project):
    return json.loads((project / "data" / "narrative.json").read_text())


def test_neighbours_are_symmetric_in_similarity_and_skip_the_same_person():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(9, 6)).astype(np.float32)
    z[4] = z[3]  # one person listed under two tropes
    people = ["p0", "p1", "p2", "p3", "p3", "p5", "p6", "p7", "p8"]
    similarity = cosine_similarities(z)
    assert np.allclose(similarity, similarity.T) and np.allclose(np.diag(similarity), 1, atol=1e-6)
    neighbours = nearest_neighbours(similarity, people, k=4)
    for i, found in enumerate(neighbours):
        assert len(found) == 4 and all(people[j] != people[i] for j, _ in found)
        assert len({people[j] for j, _ in found}) == 4  # p3's two rows are one neighbour
        assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)
        for j, s in found:  # what i sees of j is what j sees of i
            assert s == pytest.approx(similarity[j, i])
            assert s == pytest.approx(float(z[i] @ z[j] / np.linalg.norm(z[i]) / np.linalg.norm(z[j])), abs=1e-6)
        others = [j for j in range(9) if people[j] != people[i]]
        assert found[0][1] == pytest.approx(max(similarity[i, j] for j in others))
    # mutual: j is i's nearest neighbour and i is j's, for the most similar pair overall
    pairs = [(similarity[i, j], i, j) for i in range(9) for j in range(9) if people[i] != people[j]]
    _, a, b = max(pairs)
    assert neighbours[a][0][0] == b and neighbours[b][0][0] == a


def test_movie_embedding_is_the_snippet_share_weighted_sum():
    z = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [2.0, 2.0]])
    names, vectors, members = movie_embeddings(["M", "M", "M", "N"], ["p", "q", "q", "r"], np.array([1, 3, 3, 5]), z)
    assert names == ["M", "N"] and members == {"M": [0, 1], "N": [3]}  # q under two tropes counts once
    assert np.allclose(vectors[0], 0.25 * z[0] + 0.75 * z[1]) and np.allclose(vectors[1], z[3])


def test_trope_cooccurrence_counts_movies_of_two_different_people():
    movies = ["M", "M", "M", "N", "N", "O"]
    people = ["p", "q", "q", "r", "s", "t"]
    tropes = ["hero", "villain", "mentor", "villain", "hero", "hero"]
    pairs = trope_cooccurrence(movies, people, tropes)
    assert pairs[0] == {"tropes": ["hero", "villain"], "count": 2, "movies": ["M", "N"]}
    assert {"tropes": ["hero", "mentor"], "count": 1, "movies": ["M"]} in pairs
    assert all(pair["tropes"] != ["mentor", "villain"] for pair in pairs)  # one person, two labels


@pytest.mark.slow
def test_narrative_holds_predictions_neighbours_and_fig4_attention(narrative, project):
    characters = narrative["characters"]
    by_id = {c["char_id"]: c for c in characters}
    assert len(characters) == 12
    assert narrative["tropes"] == pq.read_table(project / "data" / "tropes.parquet")["trope"].to_pylist()
    assert sum(narrative["gamma"].values()) == pytest.approx(1, abs=1e-3)
    for c in characters:
        probs = [t["prob"] for t in c["top_tropes"]]
        assert len(probs) == 4 and probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1, abs=1e-3)
        assert len(c["neighbours"]) == 10 and c["char_id"] not in {n["char_id"] for n in c["neighbours"]}
        for n in c["neighbours"]:  # symmetric: the neighbour's view of c has the same similarity
            back = {m["char_id"]: m["similarity"] for m in by_id[n["char_id"]]["neighbours"]}
            if c["char_id"] in back:
                assert back[c["char_id"]] == pytest.approx(n["similarity"], abs=1e-4)
        weights = [s["weight"] for s in c["snippets"]]
        assert len(weights) == c["n_snippets"] and sum(weights) == pytest.approx(1, abs=1e-3)
        top = [entry["index"] for entry in c["top_snippets"]]
        assert len(top) == 3 and [weights[i] for i in top] == sorted(weights, reverse=True)[:3]
        for entry in c["top_snippets"]:
            snippet = c["snippets"][entry["index"]]
            own = entry["words"]["D"]
            assert [token for token, _ in own] == [t for line in snippet["D"] for t in tokenize(line)][:12]
            assert sum(weight for _, weight in own) == pytest.approx(1, abs=1e-2)
            assert [token for token, _ in entry["words"]["O"]] == [
                t for other in snippet["O"] for t in tokenize(other["text"])][:12]
    movie, char_id = SHARED_MOVIE
    assert {"tropes": sorted(["dumb_muscle", by_id[char_id]["trope"]]), "count": 1, "movies": [movie]} in \
        narrative["trope_cooccurrence"]
    assert sorted(m for cluster in narrative["movie_clusters"] for m in cluster["movies"]) == \
        sorted(m["movie"] for m in narrative["movies"])
    assert len(narrative["movie_clusters"]) == 3
