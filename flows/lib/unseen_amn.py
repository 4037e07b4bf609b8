"""Training and scoring of the AMN on characters it has never seen: snippet_encoder 'sentence'
(models/amn.py) over the cached MiniLM vectors of the masked snippets, many snippets per
character, the Knowledge-Store memory over the trope-text vectors and the triplet loss.

One example is one character: training draws `draw` of its snippets afresh every epoch (all of
them when it has fewer) and one of its gold tropes as the label; scoring reads up to
`eval_snippets` snippets, evenly spread. The IMDb quotes have one stream, so the snippet goes in
stream D ('char' inputs)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from flows.lib.trope_scoring import ranked_from_scores, score_ranked
from models.amn import AMN, AMNConfig


@dataclass
class SentenceAMNSettings:
    # model (AMNConfig)
    hidden: int = 384  # = the sentence width, for zero_shot_init
    attn_dim: int = 64
    dropout: float = 0.3
    encoder: str = "pool"  # attention over snippets; attn: BiGRU + attention over them (the paper)
    triplet: str = "tropetrip"
    memory: str = "none"  # ks: the Knowledge-Store over the trope texts
    description_logits: bool = True
    n_hops: int = 1
    zero_shot_init: bool = True  # start as the zero-shot reference (needs hidden = sentence width), see below
    freeze_projections: bool = False  # with zero_shot_init: keep the identity snippet encoder and f_D
    # training
    lr: float = 5e-4
    weight_decay: float = 0.01
    max_epochs: int = 15
    batch_size: int = 16
    draw: int = 16  # snippets per training example
    eval_snippets: int = 512
    seed: int = 0
    threads: int = 1

    def model_config(self, sentence_dim: int, n_tropes: int) -> AMNConfig:
        return AMNConfig(
            vocab_size=0, n_tropes=n_tropes, desc_dim=sentence_dim, sentence_dim=sentence_dim,
            snippet_encoder="sentence", inputs="char", hidden=self.hidden, attn_dim=self.attn_dim,
            dropout=self.dropout, encoder=self.encoder, triplet=self.triplet, memory=self.memory,
            description_logits=self.description_logits, n_hops=self.n_hops, n_diag=self.draw,
        )


def center_rows(vectors: np.ndarray) -> np.ndarray:
    """Unit rows after subtracting their mean: what the zero-shot reference compares."""
    centered = vectors - vectors.mean(0)
    return (centered / np.linalg.norm(centered, axis=1, keepdims=True).clip(1e-9)).astype(np.float32)


@torch.no_grad()
def init_as_zero_shot(model: AMN) -> None:
    """Start where the zero-shot reference is: snippet encoder and f_D the identity, the memory's
    share of R-hat^P and f_P zero, so that the first logits are the scaled cosines of the
    (nearly uniformly pooled) centred snippet vectors with the centred trope texts. Training then
    learns corrections and the trope priors instead of starting from random projections, which
    280 characters cannot pin down."""
    c = model.config
    if c.hidden != c.sentence_dim or not c.description_logits or c.triplet != "tropetrip":
        raise ValueError("zero_shot_init needs hidden = sentence_dim, description_logits and triplet 'tropetrip'")
    for encoder in model.snippet_encoders.values():
        encoder[0].weight.copy_(torch.eye(c.hidden))
        encoder[0].bias.zero_()
    model.to_description.weight.copy_(torch.eye(c.hidden))
    model.to_description.bias.zero_()
    if c.memory != "none":
        model.memory_to_description.weight.zero_()
        model.memory_to_description.bias.zero_()
    model.classifier.weight.zero_()
    model.classifier.bias.zero_()
    model.description_scale.fill_(20.0)


def _batch(vectors: list[np.ndarray], picks: list[np.ndarray]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """-> tokens {'D': [B, N, dim]}, snippet_mask [B, N]."""
    n = max(len(p) for p in picks)
    dim = vectors[0].shape[1]
    x = np.zeros((len(picks), n, dim), dtype=np.float32)
    mask = np.zeros((len(picks), n), dtype=bool)
    for i, (v, p) in enumerate(zip(vectors, picks)):
        x[i, : len(p)] = v[p]
        mask[i, : len(p)] = True
    return {"D": torch.from_numpy(x)}, torch.from_numpy(mask)


def _spread(count: int, limit: int) -> np.ndarray:
    return np.arange(count) if count <= limit else np.linspace(0, count - 1, limit).round().astype(int)


@torch.no_grad()
def _read(model: AMN, vectors: list[np.ndarray], settings: SentenceAMNSettings, what) -> np.ndarray:
    model.eval()
    out = []
    for start in range(0, len(vectors), settings.batch_size):
        chunk = vectors[start : start + settings.batch_size]
        tokens, mask = _batch(chunk, [_spread(len(v), settings.eval_snippets) for v in chunk])
        out.append(what(model(tokens, mask)).float().numpy())
    return np.concatenate(out)


def trope_scores(model: AMN, vectors: list[np.ndarray], settings: SentenceAMNSettings) -> np.ndarray:
    """Trope probabilities [n_characters, n_tropes]."""
    return _read(model, vectors, settings, lambda out: torch.softmax(out.logits.float(), -1))


def persona_vectors(model: AMN, vectors: list[np.ndarray], settings: SentenceAMNSettings) -> np.ndarray:
    """The persona representation z [n_characters, hidden] (what the purity of Table 3 clusters)."""
    return _read(model, vectors, settings, lambda out: out.z)


def train_sentence_amn(
    vectors: list[np.ndarray], gold: list[list[int]], trope_vectors: np.ndarray, settings: SentenceAMNSettings,
    epochs: int, val: tuple[list[np.ndarray], list[list[int]]] | None = None,
) -> tuple[AMN, list[dict]]:
    """Train for `epochs` on (vectors, gold); with `val`, score it after every epoch.
    -> (model after the last epoch, history rows {epoch, loss, steps, val accuracy/top5})."""
    if settings.threads:
        torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    model = AMN(settings.model_config(trope_vectors.shape[1], trope_vectors.shape[0]))
    with torch.no_grad():
        model.descriptions.copy_(torch.from_numpy(center_rows(trope_vectors)))
        model.snippet_center.copy_(torch.from_numpy(np.concatenate(vectors).mean(0)))
    if settings.zero_shot_init:
        init_as_zero_shot(model)
        if settings.freeze_projections:
            for module in [*model.snippet_encoders.values(), model.to_description]:
                module.requires_grad_(False)
    trained = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trained if p.dim() >= 2]
    rest = [p for p in trained if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": settings.weight_decay},
                                   {"params": rest, "weight_decay": 0.0}], lr=settings.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(epochs, 1), eta_min=settings.lr * 0.05)
    history = []
    for epoch in range(1, epochs + 1):
        model.train()
        total, steps = 0.0, 0
        order = rng.permutation(len(vectors))
        for start in range(0, len(order), settings.batch_size):
            chosen = order[start : start + settings.batch_size]
            picks = [np.sort(rng.choice(len(vectors[i]), min(len(vectors[i]), settings.draw), replace=False))
                     for i in chosen]
            labels = torch.tensor([gold[i][rng.integers(len(gold[i]))] for i in chosen])
            tokens, mask = _batch([vectors[i] for i in chosen], picks)
            out = model(tokens, mask, labels)
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            total, steps = total + out.loss.item(), steps + 1
        scheduler.step()
        row = {"epoch": epoch, "loss": total / steps, "steps": steps}  # no wall time: metrics must reproduce byte for byte
        if val is not None:
            point = score_ranked(val[1], ranked_from_scores(trope_scores(model, val[0], settings)), n_resamples=1)
            row.update(val_accuracy=point["accuracy"], val_top5_accuracy=point["top5_accuracy"])
        history.append(row)
    return model, history


def best_epoch(history: list[dict]) -> int:
    """The epoch val prefers: accuracy, then top-5, then the earlier."""
    return max(history, key=lambda r: (r["val_accuracy"], r["val_top5_accuracy"], -r["epoch"]))["epoch"]
