"""Stage embed_snippets: the masked snippets of the bundled IMDb quotes and the 72 trope texts ->
MiniLM vectors in the cache `paths.snippet_embeddings`, keyed by (model, sha256 of the text).

Only texts the cache lacks are encoded; when it lacks none, no model is loaded and the file is
not rewritten (dvc.yaml keeps it with `persist: true`, so a changed window re-encodes only the
new snippets). Stage unseen_tropes reads the vectors and never loads the model."""
from __future__ import annotations


from prefect import flow

from flows.lib.config import data_path, load_params, out_path, param
from flows.lib.embedding_cache import embed_with_cache, sentence_encoder
from flows.lib.orchestration import task_of
from flows.lib.unseen_task import load_unseen_task, unseen_settings
from models.runtime import pick_device


def embed_snippets(params: dict) -> dict[str, int]:
    task = load_unseen_task(data_path(params), unseen_settings(params))
    model_name = param(params, "embed.model", str)
    encode = sentence_encoder(model_name, param(params, "unseen.embed_batch_size", int), str(pick_device("auto")))
    return embed_with_cache(task.all_texts(), out_path(params, "snippet_embeddings"), model_name, encode)


@flow(name="embed_snippets")
def embed_snippets_flow() -> dict[str, int]:
    counts = task_of(embed_snippets)(load_params())
    print(f"embed_snippets: {counts['encoded']} of {counts['texts']} texts encoded")
    return counts


if __name__ == "__main__":
    embed_snippets_flow()
