"""Tiny PESS-GEN pieces for the generator, gen stage and chat tests: random-init tiny BART
backbones (nothing downloaded), checkpoints of them, and the params that point at them."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch
import yaml

from flows import PROJECT_ROOT
from flows.lib.config import load_params
from flows.lib.esconv_examples import load_strategies
from models.generator import Decoding, GeneratorConfig, ResponseGenerator
from models.pess import PersonaExtractor, PessConfig
from models.runtime import save_checkpoint

TINY_BACKBONE = {"tiny_d_model": 32, "tiny_layers": 1, "tiny_heads": 2, "tiny_ffn_dim": 64}
TINY_PARAMS = {name.removeprefix("tiny_"): size for name, size in TINY_BACKBONE.items()}  # as pess.model.tiny
SHORT_DECODING = Decoding(num_beams=2, max_new_tokens=6, min_new_tokens=2)


def strategies(shared_data: Path) -> list[str]:
    return load_strategies(shared_data / "esconv" / "strategy.json")


def tiny_generator_config(shared_data: Path) -> GeneratorConfig:
    return GeneratorConfig(strategies=strategies(shared_data), backbone="tiny-bart", max_source_len=48,
                           max_persona_len=12, max_target_len=16, **TINY_BACKBONE)


def tiny_generator(shared_data: Path, seed: int = 0) -> ResponseGenerator:
    torch.manual_seed(seed)
    return ResponseGenerator(tiny_generator_config(shared_data))


def tiny_extractor(seed: int = 0) -> PersonaExtractor:
    torch.manual_seed(seed)
    return PersonaExtractor(PessConfig(backbone="tiny-bart", max_source_len=32, max_target_len=12, **TINY_BACKBONE))


def save_tiny_models(root: Path, shared_data: Path) -> dict[str, Path]:
    """A tiny extractor and a tiny `pess` generator under root, where params expect them."""
    paths = {"extractor": root / "artifacts" / "pess" / "model.pt", "generator": root / "artifacts" / "gen" / "pess" / "model.pt"}
    save_checkpoint(tiny_extractor().checkpoint(), paths["extractor"])
    save_checkpoint(tiny_generator(shared_data).checkpoint(), paths["generator"])
    return paths


def write_tiny_params(root: Path, shared_data: Path) -> Path:
    """A params file with the sections the gen stages and `personas chat` read, tiny sizes."""
    project = load_params(PROJECT_ROOT / "params.yaml")
    pess = project["pess"]  # the project's PESS settings, tiny backbone
    pess["model"].update(backbone="tiny-bart", max_source_len=32, max_target_len=12,
                         tiny=TINY_PARAMS)
    pess["generate"].update(num_beams=1, batch_size=8)
    params = {
        "data": {"root": str(shared_data)},
        "paths": project["paths"],
        "embed": {"model": "all-MiniLM-L6-v2"},
        "esconv": {"dir": "esconv"},
        "pess": pess,
        "gen": {
            "conversations": {"train": 2, "val": 1, "test": 1},
            "context_turns": 4,
            "persona_every": 3,
            "personas_save_every": 1,
            "extractors": {"pess": "artifacts/pess/model.pt"},
            "model": {"max_source_len": 48, "max_persona_len": 12, "max_target_len": 16},
            "train": {"persona_sources": ["none", "pess"], "steps": 2, "batch_size": 2, "lr": 1.0e-3, "warmup_steps": 1,
                      "weight_decay": 0.0, "grad_clip": 1.0, "seed": 0, "checkpoint_every": 1, "log_every": 1,
                      "device": "cpu"},
            "variants": {"none": {"persona": "none", "oracle_strategy": False},
                         "pess": {"persona": "pess", "oracle_strategy": False},
                         "oracle": {"persona": "pess", "oracle_strategy": True}},
            "decoding": asdict(SHORT_DECODING),
            "eval": {"split": "test", "decode_examples": 4, "bootstrap": 50, "batch_size": 4, "sample_contexts": 2,
                     "samples_per_variant": 2},
            "references": {"windows": [2], "classifier_window": 2, "c_grid": [1.0], "seed": 0},
            "planned": {"persona": "pess"},
            "planner": {"context_turns": 4, "max_len": 48, "seeds": [0, 1],
                        "train": {"steps": 2, "batch_size": 2, "lr": 1.0e-3, "encoder_lr_scale": 0.05, "warmup_steps": 1,
                                  "weight_decay": 0.0, "grad_clip": 1.0, "checkpoint_every": 1, "log_every": 1,
                                  "device": "cpu"}},
            "chat": {"supporter": "pess", "extractor": "pess"},
        },
    }
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path
