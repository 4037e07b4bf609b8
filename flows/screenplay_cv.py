"""Stage screenplay_cv (sweeps/dvc.yaml, out of the default DAG: `dvc repro sweeps/dvc.yaml:screenplay_cv`):
tropes of unseen characters on the screenplays, k-fold cross-validation by movie, so that every
character with screenplay snippets is tested once (flows/lib/screenplay_cv.py). The systems and
their settings are those of stage unseen_tropes (params `unseen.amn`, `unseen.logreg_cs`).
Embeds the masked snippets into its own cache `paths.screenplay_embeddings`, keyed by (model,
text hash): a rerun with unchanged text loads no model. Writes `paths.screenplay_cv_metrics`."""
from __future__ import annotations

from prefect import flow

from flows.lib.config import PARAMS_FILE, data_path, load_params, out_path, param, snippets_path, write_json
from flows.lib.embedding_cache import cached_vectors, embed_with_cache, sentence_encoder
from flows.lib.errors import PipelineInputError
from flows.lib.orchestration import task_of
from flows.lib.screenplay_cv import cross_validated_table, load_screenplay_task
from flows.lib.trope_scoring import summary_line
from flows.lib.unseen_amn import SentenceAMNSettings
from flows.lib.unseen_task import DESCRIPTIONS
from models.runtime import pick_device


def screenplay_cv(params: dict) -> dict:
    folds = param(params, "screenplay_cv.folds", int)
    task = load_screenplay_task(snippets_path(params, "screenplays"), out_path(params, "characters"),
                                data_path(params, *DESCRIPTIONS), folds, param(params, "screenplay_cv.seed", int))
    model_name = param(params, "embed.model", str)
    cache = out_path(params, "screenplay_embeddings")
    encode = sentence_encoder(model_name, param(params, "screenplay_cv.embed_batch_size", int), str(pick_device("auto")))
    embed_with_cache(task.all_texts(), cache, model_name, encode)
    snippet_vectors = cached_vectors([t for texts in task.snippets for t in texts], cache, model_name, "screenplay_cv")
    trope_vectors = cached_vectors(task.trope_texts, cache, model_name, "screenplay_cv")
    try:
        amn = SentenceAMNSettings(**param(params, "unseen.amn", dict))
    except TypeError as error:
        raise PipelineInputError(f"{PARAMS_FILE}: unseen.amn: {error}") from None
    metrics = cross_validated_table(task, folds, snippet_vectors, trope_vectors,
                                    [float(c) for c in param(params, "unseen.logreg_cs", list)], amn,
                                    param(params, "screenplay_cv.bootstrap", int))
    write_json(metrics, out_path(params, "screenplay_cv_metrics"))
    return metrics


@flow(name="screenplay_cv")
def screenplay_cv_flow() -> dict:
    metrics = task_of(screenplay_cv)(load_params())
    for name in ("amn", "minilm_lr", "minilm_lr_zero_shot", "tfidf_lr", "zero_shot_descriptions", "majority"):
        print(summary_line(name, metrics[name]))
    return metrics


if __name__ == "__main__":
    screenplay_cv_flow()
