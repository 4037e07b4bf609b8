"""Stage `cluster`: embed every character with the trained AMN and score how well agglomerative
clusters of the embeddings recover the tropes (the paper's Table 3), beside TF-IDF, mean MiniLM
and random references on the same characters (flows/lib/character_clusters.py).

Reads the model and the snippet, character and trope tables; writes paths.character_embeddings
and paths.purity_metrics (percentages, as Table 3). Params: `cluster`, shared `features`,
`inference`, `embed.model`."""
from __future__ import annotations

from typing import Any

from prefect import flow

from flows.lib.amn_inference import inference_settings, model_path
from flows.lib.character_clusters import ClusterSettings, cluster_characters
from flows.lib.character_embeddings import LINKAGES
from flows.lib.config import PARAMS_FILE, choice, load_params, out_path, param, write_json
from flows.lib.errors import PipelineInputError
from flows.lib.orchestration import task_of
from flows.lib.trope_data import table_paths


def cluster_settings(params: dict[str, Any]) -> ClusterSettings:
    ks = param(params, "cluster.ks", list)
    if not ks or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in ks):
        raise PipelineInputError(f"{PARAMS_FILE}: param 'cluster.ks' must be a list of integers >= 1, got {ks!r}")
    repeats = param(params, "cluster.random_repeats", int)
    if repeats < 1:
        raise PipelineInputError(f"{PARAMS_FILE}: param 'cluster.random_repeats' must be >= 1, got {repeats}")
    return ClusterSettings(
        ks=ks, linkage=choice(params, "cluster.linkage", LINKAGES), random_repeats=repeats,
        seed=param(params, "cluster.seed", int),
        tfidf_max_features=param(params, "features.tfidf_max_features", int),
        embed_batch_size=param(params, "features.embed_batch_size", int),
    )


@flow(name="cluster")
def cluster_flow() -> dict[str, Any]:
    params = load_params()
    metrics = task_of(cluster_characters)(
        model_path(params), **table_paths(params), embed_model=param(params, "embed.model", str),
        **inference_settings(params), settings=cluster_settings(params),
        embeddings_path=out_path(params, "character_embeddings"),
    )
    write_json(metrics, out_path(params, "purity_metrics"))
    return metrics


if __name__ == "__main__":
    cluster_flow()
