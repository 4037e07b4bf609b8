"""How the `unseen.amn` settings were chosen: grouped 5-fold cross-validation over the pool
characters (train + val of the unseen split, folds = movie groups); the 114 test characters are
never read. Each argument is one system: `zs` (zero-shot), `lrC` (mean MiniLM + LR with that C),
or a JSON object of SentenceAMNSettings overrides plus "epochs": a count, or "val" to choose it as
unseen_tropes does (nested: the next fold of the training folds is val, then a refit on all of
them), or "val0" to let val also choose 0 epochs, i.e. the zero-shot start itself.

    python benchmarks/cv_unseen.py zs lr1000 '{"epochs": 10, "memory": "none"}' '{"epochs": "val0"}'

Reads the embedding cache of `paths.snippet_embeddings` (run flows/embed_snippets.py first)."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flows.lib.config import load_params, out_path, param  # noqa: E402
from flows.lib.embedding_cache import cached_vectors  # noqa: E402
from flows.lib.trope_scoring import ranked_from_scores, score_ranked  # noqa: E402
from flows.lib.unseen_amn import SentenceAMNSettings, best_epoch, train_sentence_amn, trope_scores  # noqa: E402
from flows.lib.unseen_references import logreg_scores, zero_shot_scores  # noqa: E402
from flows.lib.unseen_table import character_vectors, unit_mean  # noqa: E402
from flows.lib.unseen_task import load_unseen_task, unseen_settings  # noqa: E402
from flows.lib.ziems import shared_movie_groups  # noqa: E402

FOLDS = 5


def main(systems: list[str]) -> None:
    params = load_params(ROOT / "params.yaml")
    root = Path(param(params, "data.root", str))
    task = load_unseen_task(root if root.is_absolute() else ROOT / root, unseen_settings(params))
    cache, model = ROOT / out_path(params, "snippet_embeddings"), param(params, "embed.model", str)
    vectors = character_vectors(task, cached_vectors([t for s in task.snippets for t in s], cache, model))
    tropes = cached_vectors(task.trope_texts, cache, model)
    gold = [[task.trope_ids.index(t) for t in c.tropes] for c in task.characters]
    pool = task.indices("train", "val")
    groups = np.array(shared_movie_groups([task.characters[i] for i in pool]))
    fold_of = {g: k % FOLDS for k, g in enumerate(np.random.default_rng(0).permutation(np.unique(groups)))}
    folds = np.array([fold_of[g] for g in groups])
    fold_of_character = dict(zip(pool.tolist(), folds.tolist()))
    mean_x = unit_mean(vectors)

    def cross_validate(fit_and_score) -> np.ndarray:
        scores = np.zeros((len(pool), len(task.trope_ids)))
        for k in range(FOLDS):
            scores[folds == k] = fit_and_score(pool[folds != k], pool[folds == k], (k + 1) % FOLDS)
        return scores

    def chosen_epochs(settings: SentenceAMNSettings, fit: np.ndarray, val_fold: int, allow_zero: bool) -> int:
        """The epoch count val picks, as unseen_table.supervised_scores does; with allow_zero
        the untrained model (epoch 0, the zero-shot start) is a candidate too."""
        inner = np.array([fold_of_character[i] for i in fit]) != val_fold
        train, val = fit[inner], fit[~inner]
        val_data = ([vectors[i] for i in val], [gold[i] for i in val])
        _, history = train_sentence_amn([vectors[i] for i in train], [gold[i] for i in train], tropes, settings,
                                        settings.max_epochs, val=val_data)
        if allow_zero:
            start, _ = train_sentence_amn([vectors[i] for i in train], [gold[i] for i in train], tropes, settings, 0)
            point = score_ranked(val_data[1], ranked_from_scores(trope_scores(start, val_data[0], settings)), n_resamples=1)
            history = [{"epoch": 0, "val_accuracy": point["accuracy"], "val_top5_accuracy": point["top5_accuracy"]},
                       *history]
        return best_epoch(history)

    for system in systems:
        started = time.perf_counter()
        if system == "zs":
            scores = zero_shot_scores(mean_x, tropes)[pool]
        elif system.startswith("lr"):
            c = float(system[2:])
            scores = cross_validate(lambda fit, held, _: logreg_scores(mean_x[fit], [gold[i] for i in fit], mean_x[held],
                                                                       len(task.trope_ids), c))
        else:
            overrides = json.loads(system)
            epochs = overrides.pop("epochs")
            settings = SentenceAMNSettings(**{**param(params, "unseen.amn", dict), **overrides})
            chosen = []

            def amn(fit, held, val_fold):
                count = epochs if isinstance(epochs, int) else chosen_epochs(settings, fit, val_fold, epochs == "val0")
                chosen.append(count)
                trained, _ = train_sentence_amn([vectors[i] for i in fit], [gold[i] for i in fit], tropes, settings, count)
                return trope_scores(trained, [vectors[i] for i in held], settings)

            scores = cross_validate(amn)
            system = f"{system} (epochs per fold {chosen})"
        result = score_ranked([gold[i] for i in pool], ranked_from_scores(scores), n_resamples=1)
        print(f"{system}: accuracy {result['accuracy']:.3f}, top-5 {result['top5_accuracy']:.3f}, "
              f"macro-F1 {result['macro_f1']:.3f}, n {result['n']} ({time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
