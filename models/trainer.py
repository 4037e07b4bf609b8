"""The step trainer of the PESS extractor and the PESS-GEN generator.

One loop for both: AdamW with a per-group lr scale (the encoder's own weights may learn slower
or be frozen), linear warm-up then linear decay, a batch per step that is a function of (seed,
step) only, a history row of window means every `log_every` steps (optionally logged to
dvclive), and a checkpoint every `checkpoint_every` steps that a rerun resumes when the same
run wrote it (`run_key`: config, settings, examples and code). What differs between the models
is an `Objective`: the loss of a batch, and any state of its own the checkpoint must carry.
"""
from __future__ import annotations

import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np
import torch

from flows.lib.config import file_sha256, json_sha256
from models import backbone
from models.backbone import BackboneModule
from models.runtime import load_checkpoint, pick_device, rng_state, save_checkpoint, seed_everything, set_rng_state

log = logging.getLogger(__name__)


@dataclass
class TrainSettings:
    steps: int = 200
    batch_size: int = 8
    lr: float = 5e-5
    warmup_steps: int = 20
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    seed: int = 13
    checkpoint_every: int = 50
    log_every: int = 10
    device: str = "auto"
    threads: int = 0  # torch CPU threads; 0 keeps torch's default. 1 is fastest on cores shared with other jobs
    encoder_lr_scale: float = 1.0  # lr multiplier of the encoder's own weights; 0 freezes them (see build_optimizer)


class Objective:
    """The model-specific half of a training step; this base keeps no state of its own."""

    def step_loss(self, batch: list[Any], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss to minimise on `batch` and the scalars of this step's history row."""
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        """Entries of its own for the checkpoint (weights_only-safe)."""
        return {}

    def load_state(self, saved: dict[str, Any]) -> None:
        """Take them back from a resumed checkpoint."""


class RowLog(Protocol):
    """Where history rows go as they are made (flows.lib.live.TrainingCurves: dvclive)."""

    def start(self, history: list[dict[str, float]]) -> None: ...

    def log(self, row: dict[str, float]) -> None: ...

    def end(self) -> None: ...


def batch_at(examples: Sequence[Any], step: int, batch_size: int, seed: int) -> list[Any]:
    """The batch of a step: a fresh permutation per epoch, a function of (seed, step) only,
    so that a resumed run draws exactly the batches the interrupted one would have."""
    per_epoch = max(1, len(examples) // batch_size)
    epoch, position = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(len(examples))
    return [examples[i] for i in order[position * batch_size : (position + 1) * batch_size]]


def learning_rate(step: int, settings: TrainSettings) -> float:
    """Linear warm-up, then linear decay to zero at the last step."""
    if step < settings.warmup_steps:
        return settings.lr * (step + 1) / settings.warmup_steps
    remaining = settings.steps - settings.warmup_steps
    return settings.lr * max(0.0, (settings.steps - step) / max(1, remaining))


def build_optimizer(module: BackboneModule, settings: TrainSettings) -> torch.optim.Optimizer:
    """AdamW, no weight decay on biases and norms. The module's `encoder_weights` learn at
    lr * encoder_lr_scale, a group's "lr_scale"; at 0 they are frozen and skip the backward
    pass. Why: a warm-started encoder under a randomly initialised cross-attention can be pushed
    towards one state for every input before the decoder learns to read it
    (benchmarks/RESULTS.md, PESS collapse); a pretrained encoder under a new classifier head
    learns at a fraction of the head's rate (models/strategy_planner.py)."""
    encoder = {id(w) for w in module.encoder_weights()}
    groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
    for name, weight in module.named_parameters():
        scale = settings.encoder_lr_scale if id(weight) in encoder else 1.0
        if scale == 0:
            weight.requires_grad_(False)
            continue
        decay = 0.0 if "bias" in name or "norm" in name.lower() else settings.weight_decay
        groups.setdefault((decay, scale), []).append(weight)
    return torch.optim.AdamW(
        [{"params": weights, "weight_decay": decay, "lr_scale": scale} for (decay, scale), weights in groups.items()], lr=settings.lr
    )


def run_files(run_dir: str | Path) -> tuple[Path, Path]:
    """(final weights, resumable checkpoint) of a training run: <run_dir>/model.pt and
    <run_dir>/checkpoints/last.pt."""
    return Path(run_dir) / "model.pt", Path(run_dir) / "checkpoints" / "last.pt"


def run_key(model_class: type, config: Any, settings: TrainSettings, examples: Sequence[Any]) -> str:
    """Identity of a training run (model config, settings, example dataclasses, the source of
    the model's module, the backbone and this loop): a checkpoint resumes only the run that
    wrote it. Device and threads are left out: a run may resume on other hardware."""
    data = json_sha256([asdict(e) for e in examples])
    code_files = (sys.modules[model_class.__module__].__file__, backbone.__file__, __file__)
    code = {Path(path).name: file_sha256(path) for path in code_files}
    payload = {"config": asdict(config), "settings": {**asdict(settings), "device": None, "threads": None},
               "examples": data, "code": code}
    return json_sha256(payload)


def resume_run(checkpoint_path: str | Path, key: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               device: torch.device) -> dict[str, Any] | None:
    """The checkpoint this run (same `run_key`) left, loaded into model and optimizer with the
    RNG states restored; None, for a fresh start, when there is none or another run wrote it."""
    checkpoint_path = Path(checkpoint_path)
    if not checkpoint_path.exists():
        return None
    saved = load_checkpoint(checkpoint_path, map_location=device)
    if saved.get("run_key") != key:
        log.warning("%s belongs to other settings or data; starting afresh", checkpoint_path)
        return None
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    set_rng_state(saved["rng"])
    log.info("resuming %s at step %d", checkpoint_path, saved["step"])
    return saved


def train(
    model_class: type[BackboneModule],
    config: Any,
    objective_class: Callable[[BackboneModule, torch.device], Objective],
    examples: Sequence[Any],
    settings: TrainSettings,
    run_dir: str | Path,
    rows: RowLog | None = None,
) -> tuple[dict[str, Any], Objective]:
    """Train model_class(config), built after seeding, on `examples` for settings.steps with
    the loss of objective_class(model, device), resuming from the run's checkpoint when this
    run (`run_key`) wrote it; write the final weights (`run_files`). Returns a summary of the
    run (with its history rows) and the objective."""
    key = run_key(model_class, config, settings, examples)
    model_path, checkpoint_path = run_files(run_dir)
    seed_everything(settings.seed)
    device = pick_device(settings.device)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    model = model_class(config).to(device)
    optimizer = build_optimizer(model, settings)
    history: list[dict[str, float]] = []  # one row per log_every steps
    window: list[dict[str, float]] = []  # the steps since the last row
    start = 0
    saved = resume_run(checkpoint_path, key, model, optimizer, device)
    # the objective comes after the resume: what it builds may draw on the RNGs just restored
    objective = objective_class(model, device)
    if saved:
        objective.load_state(saved)
        history, window, start = saved["history"], saved["window"], saved["step"]
    if rows is not None:
        rows.start(history)
    model.train()
    started = time.perf_counter()
    for step in range(start, settings.steps):
        batch = batch_at(examples, step, settings.batch_size, settings.seed)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, settings) * group["lr_scale"]
        loss, scalars = objective.step_loss(batch, step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
        optimizer.step()
        window.append(scalars)
        if (step + 1) % settings.log_every == 0 or step + 1 == settings.steps:
            names = sorted({name for w in window for name in w})
            row = {"step": step + 1, **{k: float(np.mean([w[k] for w in window if k in w])) for k in names}}
            history.append(row)
            window = []
            if rows is not None:
                rows.log(row)
        if (step + 1) % settings.checkpoint_every == 0 or step + 1 == settings.steps:
            save_checkpoint({**model.checkpoint(), "optimizer": optimizer.state_dict(), "step": step + 1, "rng": rng_state(),
                             "history": history, "window": window, "run_key": key, **objective.state()}, checkpoint_path)
    if rows is not None:
        rows.end()
    elapsed = time.perf_counter() - started
    save_checkpoint({**model.checkpoint(), "run_key": key, "steps": settings.steps}, model_path)
    trained = settings.steps - start
    # Wall time goes to the log, not the summary: metrics files of two runs must be byte-identical.
    log.info("trained %d steps in %.1f s (%.3f s/step)", trained, elapsed, elapsed / trained if trained else 0.0)
    summary = {
        "steps": settings.steps,
        "steps_this_run": trained,
        "resumed_from": start,
        "train_examples": len(examples),
        "parameters": sum(p.numel() for p in model.parameters()),
        "history": history,
        "final": history[-1] if history else {},
    }
    return summary, objective
