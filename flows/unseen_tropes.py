"""Stage unseen_tropes: tropes of characters the models never saw, on the bundled IMDb quotes of
Ziems et al. (2024): the 114 test characters, trained on the 290 pool characters that share no
movie with them (the row with the other 30 is the second figure). Systems: the AMN on frozen
MiniLM snippet vectors, majority, TF-IDF + LR, mean MiniLM + LR, zero-shot trope-text
similarity and the stored zero-shot answers of ChatGPT and the flan models, all scored by one
rule with 95% bootstrap intervals (flows/lib/unseen_table.py). Reads the vectors from the
embed_snippets cache: no sentence model is loaded. Writes `paths.unseen_tropes_metrics`."""
from __future__ import annotations


from prefect import flow

from flows.lib.config import PARAMS_FILE, data_path, load_params, out_path, param, write_json
from flows.lib.embedding_cache import cached_vectors
from flows.lib.errors import PipelineInputError
from flows.lib.orchestration import task_of
from flows.lib.trope_scoring import summary_line
from flows.lib.unseen_amn import SentenceAMNSettings
from flows.lib.unseen_table import stored_answers, unseen_table
from flows.lib.unseen_task import load_unseen_task, unseen_settings


def unseen_tropes(params: dict) -> dict:
    task = load_unseen_task(data_path(params), unseen_settings(params))
    model_name = param(params, "embed.model", str)
    cache = out_path(params, "snippet_embeddings")
    snippet_vectors = cached_vectors([t for texts in task.snippets for t in texts], cache, model_name)
    trope_vectors = cached_vectors(task.trope_texts, cache, model_name)
    amn_options = param(params, "unseen.amn", dict)
    try:
        amn = SentenceAMNSettings(**amn_options)
    except TypeError as error:
        raise PipelineInputError(f"{PARAMS_FILE}: unseen.amn: {error}") from None
    answers = stored_answers(data_path(params), task, param(params, "unseen.answers", list))
    metrics = unseen_table(task, snippet_vectors, trope_vectors, answers,
                           [float(c) for c in param(params, "unseen.logreg_cs", list)], amn,
                           param(params, "unseen.bootstrap", int), param(params, "unseen.purity_ks", list))
    write_json(metrics, out_path(params, "unseen_tropes_metrics"))
    return metrics


@flow(name="unseen_tropes")
def unseen_tropes_flow() -> dict:
    metrics = task_of(unseen_tropes)(load_params())
    for name in ("amn", "minilm_lr", "tfidf_lr", "zero_shot_descriptions", "majority", "chatgpt"):
        if name in metrics:
            print(summary_line(name, metrics[name]))
    return metrics


if __name__ == "__main__":
    unseen_tropes_flow()
