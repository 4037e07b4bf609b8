"""Stage `narrative`: what the embeddings say about characters and movies (the paper's §6
narrative application and Fig 4; flows/lib/character_narrative.py): per character its top
tropes, nearest characters and attention over snippets and words; per movie its embedding,
cluster and trope co-occurrence.

Reads the model, the snippet, character and trope tables and paths.character_embeddings (stage
cluster); writes paths.narrative, which the report and the CLI read. Params: `narrative`,
`inference`."""
from __future__ import annotations

from typing import Any

from prefect import flow

from flows.lib.amn_inference import inference_settings, model_path
from flows.lib.character_embeddings import LINKAGES
from flows.lib.character_narrative import NarrativeSettings, build_narrative
from flows.lib.config import PARAMS_FILE, choice, load_params, out_path, param
from flows.lib.errors import PipelineInputError
from flows.lib.narrative_file import write_narrative
from flows.lib.orchestration import task_of
from flows.lib.trope_data import table_paths


def narrative_settings(params: dict[str, Any]) -> NarrativeSettings:
    values = {}
    for name in ("neighbours", "top_tropes", "top_snippets", "movie_clusters"):
        value = param(params, f"narrative.{name}", int)
        if value < 1:
            raise PipelineInputError(f"{PARAMS_FILE}: param 'narrative.{name}' must be >= 1, got {value}")
        values[name] = value
    return NarrativeSettings(**values, linkage=choice(params, "narrative.linkage", LINKAGES))


@flow(name="narrative")
def narrative_flow() -> dict[str, int]:
    params = load_params()
    payload = task_of(build_narrative)(
        model_path(params), **table_paths(params), embeddings_path=out_path(params, "character_embeddings"),
        **inference_settings(params), settings=narrative_settings(params),
    )
    write_narrative(payload, out_path(params, "narrative"))
    return {"characters": len(payload["characters"]), "movies": len(payload["movies"])}


if __name__ == "__main__":
    narrative_flow()
