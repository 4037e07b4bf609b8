"""params.yaml -> the settings of the PESS-GEN stages (gen_personas, gen_train, gen_eval, and
the named stages strategy_planner and gen_planned),
`personas chat` and bench_gen: section `gen`, with the backbone of `pess.model` and the paths
of `paths:`. Every range check names the param."""
from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from flows.lib.config import choice, out_path, param
from flows.lib.errors import PipelineInputError
from flows.lib.esconv_examples import NO_PERSONA, SupportExample, load_strategies, split_examples
from flows.lib.pess_params import backbone_config, esconv_dir, read_train_settings
from models.generator import Decoding, GeneratorConfig
from models.strategy_planner import PlannerConfig
from models.trainer import TrainSettings, run_files


def generator_config(params: dict[str, Any]) -> GeneratorConfig:
    """Lengths from gen.model; the backbone and its tiny sizes are PESS's (pess.model)."""
    return GeneratorConfig(
        **{**asdict(backbone_config(params)),
           "max_source_len": param(params, "gen.model.max_source_len", int),
           "max_target_len": param(params, "gen.model.max_target_len", int)},
        strategies=load_strategies(esconv_dir(params) / "strategy.json"),
        max_persona_len=param(params, "gen.model.max_persona_len", int),
    )


def gen_train_settings(params: dict[str, Any]) -> TrainSettings:
    return read_train_settings(params, "gen.train", ignore=("persona_sources",))


def planner_config(params: dict[str, Any]) -> PlannerConfig:
    """gen.planner's lengths, the strategies of ESConv's strategy.json, embed.model's encoder."""
    return PlannerConfig(sentence_model=param(params, "embed.model", str),
                         strategies=load_strategies(esconv_dir(params) / "strategy.json"),
                         max_len=param(params, "gen.planner.max_len", int))


def planner_train_settings(params: dict[str, Any]) -> TrainSettings:
    """gen.planner.train; each planner's seed comes from gen.planner.seeds."""
    return read_train_settings(params, "gen.planner.train")


def planner_seeds(params: dict[str, Any]) -> list[int]:
    """gen.planner.seeds: one planner is trained per seed; distinct integers, at least one."""
    seeds = param(params, "gen.planner.seeds", list)
    if not seeds or len(set(seeds)) != len(seeds) or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise PipelineInputError(f"params.yaml: param 'gen.planner.seeds' must be distinct integers, at least one; got {seeds}")
    return seeds


def persona_sources(params: dict[str, Any]) -> list[str]:
    """gen.train.persona_sources, each `none` or a key of gen.extractors."""
    sources = param(params, "gen.train.persona_sources", list)
    allowed = [NO_PERSONA, *param(params, "gen.extractors", dict)]
    for source in sources:
        if source not in allowed:
            raise PipelineInputError(f"params.yaml: gen.train.persona_sources has {source!r}; valid: {', '.join(allowed)}")
    return sources


def extractor_paths(params: dict[str, Any]) -> dict[str, str]:
    """Persona source -> trained extractor checkpoint (gen.extractors), for the sources the
    generators read (gen.train.persona_sources), each checked to exist."""
    extractors = {source: param(params, f"gen.extractors.{source}", str) for source in persona_sources(params)
                  if source != NO_PERSONA}
    missing = [f"{source}: {path}" for source, path in extractors.items() if not Path(path).exists()]
    if missing:
        raise PipelineInputError(f"params.yaml: gen.extractors checkpoint not found ({'; '.join(missing)}); run pess_select / pess_train first")
    return {source: str(path) for source, path in extractors.items()}


def generator_dir(params: dict[str, Any], source: str) -> Path:
    """<paths.gen_dir>/<source>/: the run folder of the generator of one persona source
    (model.pt and checkpoints/: models.trainer.run_files)."""
    return out_path(params, "gen_dir") / source


def generator_path(params: dict[str, Any], source: str) -> Path:
    """The trained generator of one persona source."""
    return run_files(generator_dir(params, source))[0]


def decoding_settings(params: dict[str, Any], method: str | None = None) -> Decoding:
    """gen.decoding, its method replaced by `method` when given."""
    raw = dict(param(params, "gen.decoding", dict))
    unknown = set(raw) - set(Decoding.__dataclass_fields__)
    if unknown:
        raise PipelineInputError(f"params.yaml: unknown keys under gen.decoding: {', '.join(sorted(unknown))}")
    choice(params, "gen.decoding.method", ["beam", "nucleus"])
    settings = Decoding(**raw)
    return replace(settings, method=method) if method else settings


def variant_settings(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """variant -> {persona, oracle_strategy}, with the persona source checked against gen_train's."""
    variants = param(params, "gen.variants", dict)
    settings = {}
    for name, spec in variants.items():
        persona = trained_source(params, f"gen.variants.{name}.persona", spec.get("persona") if isinstance(spec, dict) else None)
        settings[name] = {"persona": persona, "oracle_strategy": bool(spec.get("oracle_strategy", False))}
    return settings


def trained_source(params: dict[str, Any], key: str, source: Any) -> str:
    """`source`, the value of param `key`, checked to be one of gen.train.persona_sources: a
    persona source that gen_train wrote a generator for."""
    trained = param(params, "gen.train.persona_sources", list)
    if source not in trained:
        raise PipelineInputError(f"params.yaml: {key} must be one of gen.train.persona_sources ({', '.join(trained)})")
    return source


def eval_examples(params: dict[str, Any], source: str) -> list[SupportExample]:
    """Every supporter turn of gen.eval.split (gen.conversations.test limits them) with the
    personas of `source`, as gen_eval and gen_planned score them."""
    return split_examples(esconv_dir(params), out_path(params, "gen_personas"), source, param(params, "gen.eval.split", str),
                          param(params, "gen.conversations.test", int), load_strategies(esconv_dir(params) / "strategy.json"),
                          param(params, "gen.context_turns", int), param(params, "gen.persona_every", int))


def planned_source(params: dict[str, Any]) -> str:
    """gen.planned.persona: the persona source whose generator decodes with the planner's strategies."""
    return trained_source(params, "gen.planned.persona", param(params, "gen.planned.persona", str))


def sample_decoding(params: dict[str, Any]) -> Decoding:
    """The nucleus decoding of reports/gen_samples.md: gen.eval.samples_per_variant responses."""
    return replace(decoding_settings(params, "nucleus"), num_return_sequences=param(params, "gen.eval.samples_per_variant", int))
