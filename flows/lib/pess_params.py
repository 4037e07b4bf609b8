"""params.yaml -> the settings of the PESS stages (pess_train, pess_eval, pess_apply,
pess_sweep), bench_pess and flows/lib/gen_params.py: section `pess`, the ESConv folder
(`esconv.dir`), the paths of `paths:`. Every range check names the param."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from flows.lib.config import choice, data_path, out_path, param
from flows.lib.errors import PipelineInputError
from models.backbone import BackboneConfig
from models.pess import PessConfig
from models.persona_selector import SelectorConfig
from models.trainer import TrainSettings, run_files

# which auxiliary losses each ablation keeps: (completeness, consistency)
VARIANTS = {"base": (False, False), "completeness": (True, False), "consistency": (False, True), "full": (True, True)}


# ---------------------------------------------------------------------------------------------
# PESS


def corpus_settings(params: dict[str, Any]) -> dict[str, Any]:
    """The data half of every PESS stage (the keyword arguments of
    flows.lib.persona_data.load_persona_examples): which reader, which files, how to split."""
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


def backbone_config(params: dict[str, Any]) -> BackboneConfig:
    """The backbone of pess.model, which the generator shares (with lengths of its own)."""
    for key, low in (("pess.model.max_source_len", 8), ("pess.model.max_target_len", 2)):
        if param(params, key, int) < low:
            raise PipelineInputError(f"params.yaml: param '{key}' must be >= {low}, got {param(params, key)}")
    return BackboneConfig(
        backbone=param(params, "pess.model.backbone", str),
        max_source_len=param(params, "pess.model.max_source_len", int),
        max_target_len=param(params, "pess.model.max_target_len", int),
        tiny_d_model=param(params, "pess.model.tiny.d_model", int),
        tiny_layers=param(params, "pess.model.tiny.layers", int),
        tiny_heads=param(params, "pess.model.tiny.heads", int),
        tiny_ffn_dim=param(params, "pess.model.tiny.ffn_dim", int),
        cross_attention_init=choice(params, "pess.model.cross_attention_init", ["random", "self_attention"]),
        sentence_model=param(params, "embed.model", str),
    )


def pess_config(params: dict[str, Any], variant: str | None = None, tau: float | None = None) -> PessConfig:
    """PessConfig from params; `variant` (default pess.variant) zeroes the losses it drops."""
    variant = variant or choice(params, "pess.variant", list(VARIANTS))
    if variant not in VARIANTS:
        raise PipelineInputError(f"pess variant {variant!r}; valid: {', '.join(VARIANTS)}")
    keep_completeness, keep_consistency = VARIANTS[variant]
    for key, low in (("pess.loss.refresh_every", 1), ("pess.model.max_sentence_len", 1), ("pess.generate.num_beams", 1)):
        if param(params, key, int) < low:
            raise PipelineInputError(f"params.yaml: param '{key}' must be >= {low}, got {param(params, key)}")
    if not 0 <= param(params, "pess.loss.decoder_token_dropout", (int, float)) < 1:
        raise PipelineInputError(f"params.yaml: param 'pess.loss.decoder_token_dropout' must be in [0, 1), got {param(params, 'pess.loss.decoder_token_dropout')}")
    for key in ("pess.loss.temperature", "pess.loss.tau"):
        if not 0 < param(params, key, (int, float)) <= 1:
            raise PipelineInputError(f"params.yaml: param '{key}' must be in (0, 1], got {param(params, key)}")
    return PessConfig(
        **asdict(backbone_config(params)),
        max_sentence_len=param(params, "pess.model.max_sentence_len", int),
        tau=float(tau if tau is not None else param(params, "pess.loss.tau", (int, float))),
        lambda_completeness=float(param(params, "pess.loss.lambda_completeness", (int, float))) * keep_completeness,
        lambda_consistency=float(param(params, "pess.loss.lambda_consistency", (int, float))) * keep_consistency,
        temperature=float(param(params, "pess.loss.temperature", (int, float))),
        refresh_every=param(params, "pess.loss.refresh_every", int),
        decoder_token_dropout=float(param(params, "pess.loss.decoder_token_dropout", (int, float))),
        num_beams=param(params, "pess.generate.num_beams", int),
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
    """pess.train, with the seed and the number of steps of a sweep run when given."""
    settings = read_train_settings(params, "pess.train")
    if seed is not None:
        settings.seed = seed
    if steps is not None:
        settings.steps = steps
    return settings


def run_paths(params: dict[str, Any], variant: str | None = None, seed: int | None = None) -> dict[str, Path]:
    """Where a pess_train run writes: the default run (pess.variant, pess.train.seed) in
    paths.pess_dir, an explicit variant or seed in <pess_dir>/<variant>[-seed<seed>]/ (e.g. the
    `base` extractor the generator compares against): model.pt and checkpoints/
    (models.trainer.run_files); its metrics and dvclive folder are paths.pess_train_metrics and
    paths.pess_train_live with the suffix _<run>."""
    name = "-".join(([variant] if variant else []) + ([f"seed{seed}"] if seed is not None else []))
    run_dir = out_path(params, "pess_dir") / name
    metrics, live = out_path(params, "pess_train_metrics"), out_path(params, "pess_train_live")
    suffix = f"_{name}" if name else ""
    return {
        "run_dir": run_dir,
        "model_path": run_files(run_dir)[0],
        "metrics_path": metrics.with_name(f"{metrics.stem}{suffix}{metrics.suffix}"),
        "live_dir": live.with_name(f"{live.name}{suffix}"),
    }


def sweep_runs(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """pess_sweep: run name -> {variant, tau, seed, config, settings}, ablations first; the run
    an ablation shares with the tau sweep appears once."""
    default_tau = float(param(params, "pess.loss.tau", (int, float)))
    steps = param(params, "pess.sweep.steps", int)
    grid = [(variant, default_tau) for variant in param(params, "pess.sweep.variants", list)]
    grid += [("full", float(tau)) for tau in param(params, "pess.sweep.taus", list)]
    runs: dict[str, dict[str, Any]] = {}
    for seed in param(params, "pess.sweep.seeds", list):
        for variant, tau in grid:
            name = f"{variant}-tau{tau:g}-seed{seed}"
            runs.setdefault(name, {
                "variant": variant,
                "tau": tau,
                "seed": int(seed),
                "config": pess_config(params, variant, tau),
                "settings": train_settings(params, seed=int(seed), steps=steps),
            })
    return runs


def selector_config(params: dict[str, Any]) -> SelectorConfig:
    """pess.select: the grounded selector's settings and the grids val chooses from."""
    raw = dict(param(params, "pess.select", dict))
    unknown = set(raw) - set(SelectorConfig.__dataclass_fields__)
    if unknown:
        raise PipelineInputError(f"params.yaml: unknown keys under pess.select: {', '.join(sorted(unknown))}")
    if not 0 < raw.get("tau", 0.7) <= 1:
        raise PipelineInputError(f"params.yaml: param 'pess.select.tau' must be in (0, 1], got {raw['tau']}")
    for name, value in raw.items():
        if isinstance(value, list):
            if not value:
                raise PipelineInputError(f"params.yaml: param 'pess.select.{name}' must list at least one value")
            raw[name] = tuple(value)
    return SelectorConfig(sentence_model=param(params, "embed.model", str), **raw)


def esconv_dir(params: dict[str, Any]) -> Path:
    """The ESConv folder (train.txt, valid.txt, test.txt, strategy.json) under data.root."""
    return data_path(params, param(params, "esconv.dir", str))
