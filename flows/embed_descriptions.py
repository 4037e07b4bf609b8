"""Stage `embed_descriptions`: trope descriptions (paths.tropes) -> sentence embeddings, cached
in paths.description_embeddings keyed by (model name, sha256 of the text); only texts the cache
lacks are encoded (flows/lib/description_embeddings.py). Params: `embed`."""
from __future__ import annotations

from prefect import flow

from flows.lib.config import PARAMS_FILE, load_params, out_path, param
from flows.lib.description_embeddings import update_cache
from flows.lib.errors import PipelineInputError
from flows.lib.orchestration import task_of
from models.runtime import pick_device


@flow(name="embed_descriptions")
def embed_descriptions_flow() -> dict:
    params = load_params()
    batch_size = param(params, "embed.batch_size", int)
    if batch_size < 1:
        raise PipelineInputError(f"{PARAMS_FILE}: param 'embed.batch_size' must be >= 1, got {batch_size}")
    return task_of(update_cache)(out_path(params, "tropes"), out_path(params, "description_embeddings"),
                                 param(params, "embed.model", str), batch_size, str(pick_device("auto")))


if __name__ == "__main__":
    embed_descriptions_flow()
