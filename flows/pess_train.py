"""Stage pess_train: train the PESS persona extractor on Persona-Chat-style data.

Reads the corpus named by `pess.corpus` (files under data.root), splits it by conversation,
trains on the train split with the PESS objective (models/pess.py) and writes
artifacts/pess/model.pt, metrics/pess_train.json and dvclive/pess_train (`python -m
flows.pess_train base` trains the `base` ablation into artifacts/pess/base/ instead). A run
resumes from <run folder>/checkpoints/last.pt (weights, optimizer, step, RNG states, kept
similarity sets) when that checkpoint was written by the same settings, data and code.
"""
from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from prefect import flow

from flows import PROJECT_ROOT
from flows.lib.config import choice, data_path, file_sha256, load_params, param, write_json
from flows.lib.errors import PipelineInputError
from flows.lib.live import open_live
from flows.lib.orchestration import fingerprint, run_stage, stage_task
from flows.lib.persona_data import PersonaExample, load_persona_examples
from models.pess import BackboneModule, ExampleSets, PersonaExtractor, PessConfig, SentenceScorer
from models.runtime import load_checkpoint, pick_device, rng_state, save_checkpoint, seed_everything, set_rng_state

log = logging.getLogger(__name__)

# which auxiliary losses each ablation keeps: (completeness, consistency)
# The code a trained extractor depends on: part of every checkpoint identity.
SOURCE_FILES = [PROJECT_ROOT / f for f in ("flows/pess_train.py", "models/pess.py")]
VARIANTS = {"base": (False, False), "completeness": (True, False), "consistency": (False, True), "full": (True, True)}


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
    encoder_lr_scale: float = 1.0  # lr multiplier of the encoder's own weights; 0 freezes them (see _optimizer)


# ---------------------------------------------------------------------------------------------
# params -> settings (shared by the PESS stages)


def corpus_settings(params: dict[str, Any]) -> dict[str, Any]:
    """The data half of every PESS stage: which reader, which files, how to split."""
    corpus = choice(params, "pess.corpus", ["synthetic", "convai2"])
    files = param(params, f"pess.files.{corpus}", list)
    return {
        "corpus": corpus,
        "paths": [str(data_path(params, name)) for name in files],
        "include_partner": param(params, "pess.include_partner", bool),
        "seed": param(params, "pess.split.seed", int),
        "val": float(param(params, "pess.split.val", (int, float))),
        "test": float(param(params, "pess.split.test", (int, float))),
    }


def pess_config(params: dict[str, Any], variant: str | None = None, tau: float | None = None) -> PessConfig:
    """PessConfig from params; `variant` (default pess.variant) zeroes the losses it drops."""
    variant = variant or choice(params, "pess.variant", list(VARIANTS))
    if variant not in VARIANTS:
        raise PipelineInputError(f"pess variant {variant!r}; valid: {', '.join(VARIANTS)}")
    keep_completeness, keep_consistency = VARIANTS[variant]
    for key, low in (("pess.loss.refresh_every", 1), ("pess.model.max_source_len", 8), ("pess.model.max_target_len", 2),
                     ("pess.model.max_sentence_len", 1), ("pess.generate.num_beams", 1)):
        if param(params, key, int) < low:
            raise PipelineInputError(f"params.yaml: param '{key}' must be >= {low}, got {param(params, key)}")
    if not 0 <= param(params, "pess.loss.decoder_token_dropout", (int, float)) < 1:
        raise PipelineInputError(f"params.yaml: param 'pess.loss.decoder_token_dropout' must be in [0, 1), got {param(params, 'pess.loss.decoder_token_dropout')}")
    for key in ("pess.loss.temperature", "pess.loss.tau"):
        if not 0 < param(params, key, (int, float)) <= 1:
            raise PipelineInputError(f"params.yaml: param '{key}' must be in (0, 1], got {param(params, key)}")
    return PessConfig(
        backbone=param(params, "pess.model.backbone", str),
        max_source_len=param(params, "pess.model.max_source_len", int),
        max_target_len=param(params, "pess.model.max_target_len", int),
        max_sentence_len=param(params, "pess.model.max_sentence_len", int),
        tiny_d_model=param(params, "pess.model.tiny.d_model", int),
        tiny_layers=param(params, "pess.model.tiny.layers", int),
        tiny_heads=param(params, "pess.model.tiny.heads", int),
        tiny_ffn_dim=param(params, "pess.model.tiny.ffn_dim", int),
        cross_attention_init=choice(params, "pess.model.cross_attention_init", ["random", "self_attention"]),
        tau=float(tau if tau is not None else param(params, "pess.loss.tau", (int, float))),
        lambda_completeness=float(param(params, "pess.loss.lambda_completeness", (int, float))) * keep_completeness,
        lambda_consistency=float(param(params, "pess.loss.lambda_consistency", (int, float))) * keep_consistency,
        temperature=float(param(params, "pess.loss.temperature", (int, float))),
        refresh_every=param(params, "pess.loss.refresh_every", int),
        decoder_token_dropout=float(param(params, "pess.loss.decoder_token_dropout", (int, float))),
        num_beams=param(params, "pess.generate.num_beams", int),
        sentence_model=param(params, "embed.model", str),
    )


def read_train_settings(params: dict[str, Any], key: str, ignore: tuple[str, ...] = ()) -> TrainSettings:
    """TrainSettings from the params block at `key` (pess.train, gen.train), its keys in
    `ignore` left out; unknown keys and a negative encoder_lr_scale are one-line errors."""
    raw = {k: v for k, v in param(params, key, dict).items() if k not in ignore}
    unknown = set(raw) - set(TrainSettings.__dataclass_fields__)
    if unknown:
        raise PipelineInputError(f"params.yaml: unknown keys under {key}: {', '.join(sorted(unknown))}")
    settings = TrainSettings(**raw)
    settings.lr = float(settings.lr)
    settings.encoder_lr_scale = float(settings.encoder_lr_scale)
    if settings.encoder_lr_scale < 0:
        raise PipelineInputError(f"params.yaml: param '{key}.encoder_lr_scale' must be >= 0, got {settings.encoder_lr_scale}")
    return settings


def train_settings(params: dict[str, Any], seed: int | None = None, steps: int | None = None) -> TrainSettings:
    settings = read_train_settings(params, "pess.train")
    if seed is not None:
        settings.seed = seed
    if steps is not None:
        settings.steps = steps
    return settings


# ---------------------------------------------------------------------------------------------
# the loop


def batch_at(examples: list[PersonaExample], step: int, batch_size: int, seed: int) -> list[PersonaExample]:
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


def _optimizer(module: BackboneModule, settings: TrainSettings) -> torch.optim.Optimizer:
    """AdamW, no weight decay on biases and norms. The encoder's own weights (not those it
    shares with the decoder, like BART's embeddings) learn at lr * encoder_lr_scale, a group's
    "lr_scale"; at 0 they are frozen and skip the backward pass. Why: a warm-started encoder
    under a randomly initialised cross-attention can be pushed towards one state for every
    input before the decoder learns to read it (benchmarks/RESULTS.md, PESS collapse)."""
    encoder = {id(w) for w in module.model.get_encoder().parameters()} - {id(w) for w in module.model.get_decoder().parameters()}
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


def run_key(config: PessConfig, settings: TrainSettings, examples: list[PersonaExample]) -> str:
    """Identity of a training run (settings, data, code): a checkpoint resumes only the run
    that wrote it. Device and threads are left out: a run may resume on other hardware."""
    ids = hashlib.sha256("\n".join(e.example_id + e.persona for e in examples).encode()).hexdigest()
    code = {path.name: file_sha256(path) for path in SOURCE_FILES}
    payload = {"config": asdict(config), "settings": {**asdict(settings), "device": None, "threads": None},
               "examples": ids, "code": code}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


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


def train_extractor(
    examples: list[PersonaExample],
    config: PessConfig,
    settings: TrainSettings,
    model_path: str | Path,
    checkpoint_path: str | Path,
    live_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Train on `examples`, resuming from checkpoint_path when it belongs to this run; write
    the final weights to model_path and return a summary of the run."""
    if not examples:
        raise PipelineInputError("pess_train: no training examples (check pess.files and pess.split)")
    key = run_key(config, settings, examples)
    seed_everything(settings.seed)
    device = pick_device(settings.device)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    extractor = PersonaExtractor(config).to(device)
    optimizer = _optimizer(extractor, settings)
    kept: dict[str, ExampleSets] = {}
    history: list[dict[str, float]] = []  # one row per log_every steps
    window: list[dict[str, float]] = []  # the steps since the last row
    start = 0
    saved = resume_run(checkpoint_path, key, extractor, optimizer, device)
    if saved:
        kept = {k: ExampleSets.from_plain(v) for k, v in saved["kept_sets"].items()}
        history, window, start = saved["history"], saved["window"], saved["step"]
    scorer = SentenceScorer(config.sentence_model, device) if config.needs_similarity_sets else None
    live = open_live(live_dir, history, _log_row)

    def save(step: int) -> None:
        save_checkpoint(
            {
                **extractor.checkpoint(),
                "optimizer": optimizer.state_dict(),
                "step": step,
                "rng": rng_state(),
                "kept_sets": {k: v.as_plain() for k, v in kept.items()},
                "history": history,
                "window": window,
                "run_key": key,
            },
            checkpoint_path,
        )

    extractor.train()
    started = time.perf_counter()
    for step in range(start, settings.steps):
        batch = batch_at(examples, step, settings.batch_size, settings.seed)
        histories, golds = [e.history for e in batch], [e.persona for e in batch]
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, settings) * group["lr_scale"]
        if scorer is not None and step % config.refresh_every == 0:
            for example, sets in zip(batch, extractor.refresh_sets(histories, golds, scorer)):
                kept[example.example_id] = sets
        losses = extractor.losses(histories, golds, [kept.get(e.example_id) for e in batch])
        optimizer.zero_grad(set_to_none=True)
        losses.total.backward()
        torch.nn.utils.clip_grad_norm_(extractor.parameters(), settings.grad_clip)
        optimizer.step()
        window.append(
            {
                "loss": losses.total.item(),
                "nll": losses.nll.item(),
                "completeness": losses.completeness.item(),
                "consistency": losses.consistency.item(),
                **losses.stats,
            }
        )
        if (step + 1) % settings.log_every == 0 or step + 1 == settings.steps:
            names = sorted({name for w in window for name in w})
            row = {"step": step + 1, **{k: float(np.mean([w[k] for w in window if k in w])) for k in names}}
            history.append(row)
            window = []
            if live is not None:
                _log_row(live, row)
        if (step + 1) % settings.checkpoint_every == 0 or step + 1 == settings.steps:
            save(step + 1)
    if live is not None:
        live.end()
    elapsed = time.perf_counter() - started
    save_checkpoint({**extractor.checkpoint(), "run_key": key, "steps": settings.steps}, model_path)
    trained = settings.steps - start
    return {
        "steps": settings.steps,
        "steps_this_run": trained,
        "resumed_from": start,
        "seconds_this_run": round(elapsed, 1),
        "seconds_per_step": round(elapsed / trained, 3) if trained else None,
        "train_examples": len(examples),
        "kept_sets": len(kept),
        "final": history[-1] if history else {},
        "config": asdict(config),
        "settings": asdict(settings),
        "parameters": sum(p.numel() for p in extractor.parameters()),
    }


def _log_row(live, row: dict[str, float]) -> None:
    live.step = int(row["step"])
    for name, value in row.items():
        if name != "step":
            live.log_metric(f"train/{name}", value)
    live.make_summary()


# ---------------------------------------------------------------------------------------------
# stage


def train_pess(
    corpus: dict[str, Any],
    data_hashes: dict[str, str],
    config: dict[str, Any],
    settings: dict[str, Any],
    model_path: str,
    checkpoint_path: str,
    metrics_path: str,
    live_dir: str | None,
) -> str:
    """Pure stage body: data -> trained extractor + metrics. data_hashes only keys the cache."""
    examples = [e for e in load_persona_examples(**corpus) if e.split == "train"]
    summary = train_extractor(examples, PessConfig(**config), TrainSettings(**settings), model_path, checkpoint_path, live_dir)
    write_json(summary, metrics_path)
    return model_path


train_pess_task = stage_task(train_pess)


def run_paths(variant: str | None = None, seed: int | None = None) -> dict[str, str]:
    """Where a run writes: the default run (pess.variant, pess.train.seed) under artifacts/pess/,
    an explicit variant or seed under artifacts/pess/<variant>[-seed<seed>]/ (e.g. the `base`
    extractor the generator compares against: artifacts/pess/base/model.pt)."""
    name = "-".join(([variant] if variant else []) + ([f"seed{seed}"] if seed is not None else []))
    folder = Path("artifacts/pess") / name
    suffix = f"_{name}" if name else ""
    return {
        "model_path": str(folder / "model.pt"),
        "checkpoint_path": str(folder / "checkpoints" / "last.pt"),
        "metrics_path": f"metrics/pess_train{suffix}.json",
        "live_dir": f"dvclive/pess_train{suffix}",
    }


@flow(name="pess_train")
def pess_train_flow(variant: str | None = None, seed: int | None = None) -> str:
    params = load_params()
    corpus = corpus_settings(params)
    paths = run_paths(variant, seed)
    return run_stage(
        train_pess_task,
        outputs=[paths["model_path"], paths["metrics_path"]],
        corpus=corpus,
        data_hashes=fingerprint(*corpus["paths"]),
        config=asdict(pess_config(params, variant)),
        settings=asdict(train_settings(params, seed)),
        **paths,
    )


if __name__ == "__main__":
    # `python -m flows.pess_train [variant]`: the default run, or e.g. the `base` ablation
    pess_train_flow(*sys.argv[1:2])
