"""A trained AMN at work: load model.pt (weights, vocabulary, trope ids and how the model reads
snippets), run it batched over examples (`run_model`: z, trope probabilities and, on request,
attention weights), and score it on the test split's fixed draw (`evaluate_model`).
Stages evaluate, cluster and narrative and `personas classify` share these."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flows.lib.config import PARAMS_FILE, out_path, param
from flows.lib.errors import PipelineInputError
from flows.lib.metrics import classification_metrics
from flows.lib.trope_data import TropeData, encode_snippets, fixed_draw, load_trope_data, make_batch
from models.amn import AMN, AMNConfig
from models.runtime import load_checkpoint, pick_device
from models.vocab import Vocab


@dataclass
class TrainedAMN:
    model: AMN
    vocab: Vocab
    trope_ids: list[str]  # class order
    variant: str
    max_tokens: int  # T: words per stream, as in training
    eval_seed: int  # the fixed val/test snippet draw of training

    def encode(self, data: TropeData) -> dict[str, np.ndarray]:
        return encode_snippets(data, self.vocab, self.max_tokens)


@dataclass
class ModelOutputs:
    z: np.ndarray  # [n_examples, d_h]
    probs: np.ndarray  # [n_examples, n_tropes]
    # per example, when asked: 'snippets' [N] and 'words_<s>' [N, T] for that example's own N snippets
    attention: list[dict[str, np.ndarray]] | None = None


def model_path(params: dict[str, Any]) -> Path:
    """The trained model of stage train: model.pt under params `paths.amn_dir`."""
    return out_path(params, "amn_dir") / "model.pt"


def load_model(path: str | Path, device: str | torch.device = "cpu") -> TrainedAMN:
    """A trained AMN from model.pt (stage train), in eval mode on `device`."""
    checkpoint = load_checkpoint(path, device)
    if "reading" not in checkpoint:
        raise PipelineInputError(f"{path}: the checkpoint does not say how it reads snippets (max_tokens); retrain it")
    model = AMN(AMNConfig(**checkpoint["config"]))
    model.load_state_dict(checkpoint["model"])
    return TrainedAMN(model.to(device).eval(), Vocab(tuple(checkpoint["vocab"])), checkpoint["trope_ids"],
                      str(checkpoint.get("variant", "custom")), **checkpoint["reading"])


def load_checked_model(model_path: str | Path, data: TropeData, device: torch.device) -> TrainedAMN:
    """The trained model, refused when its trope classes are not the data's."""
    trained = load_model(model_path, device)
    if list(trained.trope_ids) != data.trope_ids:
        raise PipelineInputError(f"{model_path}: the model's tropes differ from data/tropes.parquet; retrain it")
    return trained


def inference_settings(params: dict[str, Any]) -> dict[str, Any]:
    """The shared `inference` section: how stages evaluate, cluster and narrative run the model."""
    batch_size = param(params, "inference.batch_size", int)
    if batch_size < 1:
        raise PipelineInputError(f"{PARAMS_FILE}: param 'inference.batch_size' must be >= 1, got {batch_size}")
    return {"batch_size": batch_size, "device": param(params, "inference.device", str)}


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


def evaluate_model(
    model_path: str | Path, snippets_path: str | Path, characters_path: str | Path, tropes_path: str | Path,
    batch_size: int, device: str = "cpu",
) -> dict[str, Any]:
    """Test-split predictions on training's fixed draw and their scores (nothing is written):
    metrics, `per_trope` rows (sklearn's report) and `confusion` rows (actual, predicted)."""
    from sklearn.metrics import precision_recall_fscore_support

    data = load_trope_data(snippets_path, characters_path, tropes_path)
    torch_device = pick_device(device)
    trained = load_checked_model(model_path, data, torch_device)
    examples = data.examples("test")
    picks = fixed_draw(examples, trained.model.config.n_diag, trained.eval_seed, "test")
    outputs = run_model(trained.model, trained.encode(data), picks, batch_size, torch_device)
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
        "variant": trained.variant,
        "test": classification_metrics(actual, predicted),
        "examples": len(examples),
        "n_diag": trained.model.config.n_diag,
        "per_trope": per_trope,
        "confusion": [
            {"actual": data.trope_ids[a], "predicted": data.trope_ids[p]} for a, p in zip(actual, predicted)
        ],
    }
