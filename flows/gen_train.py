"""Stage gen_train: train the PESS-GEN response generator once per persona source.

Persona sources (gen.train.persona_sources): `none` (no persona), `base` (personas from the
extractor trained without the PESS losses), `pess` (the full PESS extractor); the personas
come from data/gen_personas.parquet (stage gen_personas). The oracle-strategy variant needs
no model of its own: teacher forcing already feeds the gold strategy, so it is the `pess`
model decoded with the gold strategy forced (gen_eval). Each source writes
<gen.artifacts>/<source>/model.pt and resumes from <source>/checkpoints/last.pt (weights,
optimizer, step, RNG states) when that checkpoint was written by the same settings and data.
"""
from __future__ import annotations

import csv
import hashlib
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from prefect import flow

from flows.lib.config import load_params, param, write_json
from flows.lib.errors import PipelineInputError
from flows.lib.esconv_examples import NO_PERSONA, SupportExample, esconv_dir, load_strategies, split_examples
from flows.lib.orchestration import fingerprint, run_stage, stage_task
from flows.pess_train import TrainSettings, _optimizer, batch_at, learning_rate, pess_config, read_train_settings, resume_run
from flows.lib.schemas import atomic_path
from models.generator import GeneratorConfig, ResponseGenerator
from models.runtime import pick_device, rng_state, save_checkpoint, seed_everything

METRICS_PATH = "metrics/gen_train.json"
PLOT_PATH = "plots/gen_train.csv"


# ---------------------------------------------------------------------------------------------
# params -> settings (shared by the gen stages and `personas chat`)


def generator_config(params: dict[str, Any]) -> GeneratorConfig:
    """Lengths from gen.model; the backbone and its tiny sizes are PESS's (pess.model)."""
    backbone = pess_config(params)
    return GeneratorConfig(
        strategies=load_strategies(esconv_dir(params) / "strategy.json"),
        backbone=backbone.backbone,
        max_source_len=param(params, "gen.model.max_source_len", int),
        max_persona_len=param(params, "gen.model.max_persona_len", int),
        max_target_len=param(params, "gen.model.max_target_len", int),
        tiny_d_model=backbone.tiny_d_model,
        tiny_layers=backbone.tiny_layers,
        tiny_heads=backbone.tiny_heads,
        tiny_ffn_dim=backbone.tiny_ffn_dim,
        cross_attention_init=backbone.cross_attention_init,
        sentence_model=backbone.sentence_model,
    )


def gen_train_settings(params: dict[str, Any]) -> TrainSettings:
    return read_train_settings(params, "gen.train", ignore=("persona_sources",))


def persona_sources(params: dict[str, Any]) -> list[str]:
    sources = param(params, "gen.train.persona_sources", list)
    allowed = [NO_PERSONA, *param(params, "gen.extractors", dict)]
    for source in sources:
        if source not in allowed:
            raise PipelineInputError(f"params.yaml: gen.train.persona_sources has {source!r}; valid: {', '.join(allowed)}")
    return sources


def model_path(artifacts: str | Path, source: str) -> Path:
    return Path(artifacts) / source / "model.pt"


# ---------------------------------------------------------------------------------------------
# the loop


def run_key(config: GeneratorConfig, settings: TrainSettings, examples: list[SupportExample]) -> str:
    """Identity of a training run: a checkpoint resumes only the run that wrote it."""
    data = hashlib.sha256(json.dumps([asdict(e) for e in examples], sort_keys=True).encode()).hexdigest()
    payload = {"config": asdict(config), "settings": {**asdict(settings), "device": None}, "examples": data}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def train_generator(
    examples: list[SupportExample],
    config: GeneratorConfig,
    settings: TrainSettings,
    out_path: str | Path,
    checkpoint_path: str | Path,
) -> dict[str, Any]:
    """Train on `examples` (resuming from checkpoint_path when it belongs to this run), write
    the final weights to out_path and return a summary with the loss history."""
    if not examples:
        raise PipelineInputError("gen_train: no training examples (check gen.conversations.train)")
    key = run_key(config, settings, examples)
    seed_everything(settings.seed)
    device = pick_device(settings.device)
    generator = ResponseGenerator(config).to(device)
    optimizer = _optimizer(generator, settings)
    saved = resume_run(checkpoint_path, key, generator, optimizer, device)
    history, start = (saved["history"], saved["step"]) if saved else ([], 0)
    generator.train()
    window: list[float] = []
    started = time.perf_counter()
    for step in range(start, settings.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, settings) * group["lr_scale"]
        loss = generator.loss(batch_at(examples, step, settings.batch_size, settings.seed))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(generator.parameters(), settings.grad_clip)
        optimizer.step()
        window.append(loss.item())
        if (step + 1) % settings.log_every == 0 or step + 1 == settings.steps:
            history.append({"step": step + 1, "loss": sum(window) / len(window)})
            window = []
        if (step + 1) % settings.checkpoint_every == 0 or step + 1 == settings.steps:
            save_checkpoint(
                {**generator.checkpoint(), "optimizer": optimizer.state_dict(), "step": step + 1,
                 "rng": rng_state(), "history": history, "run_key": key},
                checkpoint_path,
            )
    elapsed = time.perf_counter() - started
    save_checkpoint({**generator.checkpoint(), "run_key": key, "steps": settings.steps}, out_path)
    trained = settings.steps - start
    return {
        "steps": settings.steps,
        "steps_this_run": trained,
        "resumed_from": start,
        "seconds_per_step": round(elapsed / trained, 3) if trained else None,
        "train_examples": len(examples),
        "examples_with_persona": sum(1 for e in examples if e.persona),
        "parameters": sum(p.numel() for p in generator.parameters()),
        "history": history,
        "final_loss": history[-1]["loss"] if history else None,
    }


def write_loss_plot(summaries: dict[str, dict[str, Any]], path: str | Path) -> None:
    """plots/gen_train.csv: step, then one loss column per persona source."""
    steps = sorted({row["step"] for s in summaries.values() for row in s["history"]})
    losses = {source: {row["step"]: row["loss"] for row in s["history"]} for source, s in summaries.items()}
    with atomic_path(Path(path)) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", *summaries])
        for step in steps:
            writer.writerow([step, *(losses[source].get(step, "") for source in summaries)])


# ---------------------------------------------------------------------------------------------
# stage


def train_gen(
    esconv: str,
    personas_path: str,
    data_hashes: dict[str, str],
    sources: list[str],
    train_conversations: int,
    context_turns: int,
    persona_every: int,
    config: dict[str, Any],
    settings: dict[str, Any],
    artifacts: str,
    metrics_path: str,
    plot_path: str,
) -> dict[str, str]:
    """Pure stage body: one trained generator per persona source. data_hashes only keys the cache."""
    generator_settings = GeneratorConfig(**config)
    summaries = {}
    for source in sources:
        examples = split_examples(esconv, personas_path, source, "train", train_conversations,
                                  generator_settings.strategies, context_turns, persona_every)
        out = model_path(artifacts, source)
        summaries[source] = train_generator(examples, generator_settings, TrainSettings(**settings),
                                            out, out.parent / "checkpoints" / "last.pt")
    write_json({"config": config, "settings": settings, "sources": summaries}, metrics_path)
    write_loss_plot(summaries, plot_path)
    return {source: str(model_path(artifacts, source)) for source in sources}


train_gen_task = stage_task(train_gen)


@flow(name="gen_train")
def gen_train_flow(sources: list[str] | None = None) -> dict[str, str]:
    params = load_params()
    esconv = esconv_dir(params)
    personas_path = param(params, "gen.personas", str)
    artifacts = param(params, "gen.artifacts", str)
    sources = sources or persona_sources(params)
    return run_stage(
        train_gen_task,
        outputs=[METRICS_PATH, PLOT_PATH, *(model_path(artifacts, s) for s in sources)],
        esconv=str(esconv),
        personas_path=personas_path,
        data_hashes=fingerprint(esconv, personas_path),
        sources=sources,
        train_conversations=param(params, "gen.conversations.train", int),
        context_turns=param(params, "gen.context_turns", int),
        persona_every=param(params, "gen.persona_every", int),
        config=asdict(generator_config(params)),
        settings=asdict(gen_train_settings(params)),
        artifacts=artifacts,
        metrics_path=METRICS_PATH,
        plot_path=PLOT_PATH,
    )


if __name__ == "__main__":
    gen_train_flow()
