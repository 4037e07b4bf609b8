"""Stage `evaluate`: score the trained AMN (artifacts/amn/model.pt) on the test split with the
same fixed snippet draw as `train` (train.eval_seed, the model's N_diag, train.max_tokens).

Writes metrics/evaluate.json (accuracy; support-weighted precision, recall, F1 as the paper's
Table 2; macro-F1), plots/per_trope.csv (sklearn's per-trope report) and plots/confusion.csv
(one row per test character: actual and predicted trope, for DVC's `confusion` template).

`run_model` is the one batched inference loop that cluster, narrative and `personas classify`
share: per example z, trope probabilities and, on request, the attention weights."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from prefect import flow

from flows.lib.config import PARAMS_FILE, load_params, param, write_json
from flows.lib.errors import PipelineInputError
from flows.lib.orchestration import fingerprint, run_stage, stage_task
from flows.lib.schemas import atomic_path
from flows.train import (TropeData, classification_metrics, encode_snippets, fixed_draw, load_model, load_trope_data,
                         make_batch, table_paths)
from models.amn import AMN
from models.runtime import load_checkpoint, pick_device
from models.vocab import Vocab

MODEL_PATH = Path("artifacts/amn/model.pt")
METRICS_PATH = Path("metrics/evaluate.json")
CONFUSION_PATH = Path("plots/confusion.csv")
PER_TROPE_PATH = Path("plots/per_trope.csv")


@dataclass
class ModelOutputs:
    z: np.ndarray  # [n_examples, d_h]
    probs: np.ndarray  # [n_examples, n_tropes]
    # per example, when asked: 'snippets' [N] and 'words_<s>' [N, T] for that example's own N snippets
    attention: list[dict[str, np.ndarray]] | None = None


@torch.no_grad()
def run_model(
    model: AMN, encoded: dict[str, np.ndarray], picks: list[np.ndarray], batch_size: int,
    device: torch.device, attention: bool = False,
) -> ModelOutputs:
    """The model on one example per entry of `picks` (snippet rows of `encoded`, at least one), in order."""
    model.eval()
    z, probs, weights = [], [], []
    for start in range(0, len(picks), batch_size):
        batch = picks[start : start + batch_size]
        tokens, mask, _ = make_batch(encoded, batch, [0] * len(batch), device)
        out = model(tokens, mask)
        z.append(out.z.float().cpu().numpy())
        probs.append(torch.softmax(out.logits.float(), dim=-1).cpu().numpy())
        if attention:
            read = {name: value.float().cpu().numpy() for name, value in model.attention(tokens, mask).items()
                    if name != "z"}
            weights += [{name: value[i, : len(pick)] for name, value in read.items()} for i, pick in enumerate(batch)]
    return ModelOutputs(np.concatenate(z), np.concatenate(probs), weights if attention else None)


def load_checked_model(model_path: str | Path, data: TropeData, device: torch.device) -> tuple[AMN, Vocab]:
    """The trained model, refused when its trope classes are not the data's."""
    model, vocab, trope_ids = load_model(model_path, device)
    if list(trope_ids) != data.trope_ids:
        raise PipelineInputError(f"{model_path}: the model's tropes differ from data/tropes.parquet; retrain it")
    return model, vocab


def evaluate_model(
    model_path: str | Path, snippets_path: str | Path, characters_path: str | Path, tropes_path: str | Path,
    max_tokens: int, eval_seed: int, batch_size: int, device: str = "cpu",
) -> dict[str, Any]:
    """Pure stage logic: test-split predictions and their scores (nothing is written)."""
    from sklearn.metrics import precision_recall_fscore_support

    data = load_trope_data(snippets_path, characters_path, tropes_path)
    torch_device = pick_device(device)
    model, vocab = load_checked_model(model_path, data, torch_device)
    examples = data.examples("test")
    picks = fixed_draw(examples, model.config.n_diag, eval_seed, "test")
    outputs = run_model(model, encode_snippets(data, vocab, max_tokens), picks, batch_size, torch_device)
    actual = np.array([label for label, _ in examples])
    predicted = outputs.probs.argmax(1)
    precision, recall, f1, support = precision_recall_fscore_support(
        actual, predicted, labels=np.arange(len(data.trope_ids)), zero_division=0
    )
    times_predicted = np.bincount(predicted, minlength=len(data.trope_ids))
    per_trope = [  # tropes neither in the test split nor ever predicted stay out
        {"trope": trope, "precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
         "support": int(support[i])}
        for i, trope in enumerate(data.trope_ids) if support[i] or times_predicted[i]
    ]
    return {
        "variant": checkpoint_variant(model_path),
        "test": classification_metrics(actual, predicted),
        "examples": len(examples),
        "n_diag": model.config.n_diag,
        "per_trope": per_trope,
        "confusion": [
            {"actual": data.trope_ids[a], "predicted": data.trope_ids[p]} for a, p in zip(actual, predicted)
        ],
    }


def checkpoint_variant(model_path: str | Path) -> str:
    """The variant name train wrote into the checkpoint."""
    return str(load_checkpoint(model_path).get("variant", "custom"))


def write_csv(rows: list[dict[str, Any]], path: str | Path, columns: list[str]) -> Path:
    """A CSV with a header, written atomically (DVC plots read these)."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows({column: row[column] for column in columns} for row in rows)
    return path


def read_csv(path: str | Path) -> list[dict[str, str]]:
    path = Path(path)
    if not path.exists():
        raise PipelineInputError(f"{path}: file not found; run the evaluate stage")
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@stage_task
def evaluate_stage(
    model_path: str, snippets_path: str, characters_path: str, tropes_path: str, settings: dict[str, Any],
    inputs_hash: dict[str, str], metrics_path: str, confusion_path: str, per_trope_path: str,
) -> dict[str, Any]:
    result = evaluate_model(model_path, snippets_path, characters_path, tropes_path, **settings)
    write_csv(result.pop("confusion"), confusion_path, ["actual", "predicted"])
    write_csv(result.pop("per_trope"), per_trope_path, ["trope", "precision", "recall", "f1", "support"])
    write_json(result, metrics_path)
    return result


def evaluate_settings(params: dict[str, Any]) -> dict[str, Any]:
    batch_size = param(params, "evaluate.batch_size", int)
    if batch_size < 1:
        raise PipelineInputError(f"{PARAMS_FILE}: param 'evaluate.batch_size' must be >= 1, got {batch_size}")
    return {
        "max_tokens": param(params, "train.max_tokens", int),  # the model reads what it was trained on
        "eval_seed": param(params, "train.eval_seed", int),
        "batch_size": batch_size,
        "device": param(params, "evaluate.device", str),
    }


@flow(name="evaluate_flow")
def evaluate_flow() -> dict[str, Any]:
    params = load_params()
    paths = table_paths(params)
    return run_stage(
        evaluate_stage,
        outputs=[METRICS_PATH, CONFUSION_PATH, PER_TROPE_PATH],
        model_path=str(MODEL_PATH),
        **paths,
        settings=evaluate_settings(params),
        inputs_hash=fingerprint(MODEL_PATH, *paths.values()),
        metrics_path=str(METRICS_PATH),
        confusion_path=str(CONFUSION_PATH),
        per_trope_path=str(PER_TROPE_PATH),
    )


if __name__ == "__main__":
    evaluate_flow()
