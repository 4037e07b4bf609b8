"""Stage `gen_train`: train the PESS-GEN response generator once per persona source.

Persona sources (gen.train.persona_sources): `none` (no persona), `base` (personas from the
extractor trained without the PESS losses), `pess` (the full PESS extractor); the personas come
from paths.gen_personas (stage gen_personas), the supporter turns from the first
gen.conversations.train conversations of ESConv's train file. The oracle-strategy variant needs
no model of its own: it is the `pess` model decoded with the gold strategy forced (gen_eval).
Each source writes <paths.gen_dir>/<source>/model.pt and resumes from
<source>/checkpoints/last.pt when the same settings, data and code wrote it; the summaries go
to paths.gen_train_metrics and the loss curves to paths.gen_train_plot.
"""
from __future__ import annotations

import csv
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import flow

from flows.lib.config import load_params, out_path, param, write_json
from flows.lib.esconv_examples import split_examples
from flows.lib.orchestration import task_of
from flows.lib.gen_params import gen_train_settings, generator_config, generator_dir, generator_path, persona_sources
from flows.lib.pess_params import esconv_dir
from flows.lib.schemas import atomic_path
from models.generator import train_generator


def write_loss_plot(summaries: dict[str, dict[str, Any]], path: str | Path) -> None:
    """step, then one loss column per persona source."""
    steps = sorted({row["step"] for s in summaries.values() for row in s["history"]})
    losses = {source: {row["step"]: row["loss"] for row in s["history"]} for source, s in summaries.items()}
    with atomic_path(Path(path)) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", *summaries])
        for step in steps:
            writer.writerow([step, *(losses[source].get(step, "") for source in summaries)])


@flow(name="gen_train")
def gen_train_flow(sources: list[str] | None = None) -> dict[str, str]:
    params = load_params()
    config, settings = generator_config(params), gen_train_settings(params)
    summaries, models = {}, {}
    for source in sources or persona_sources(params):
        examples = split_examples(esconv_dir(params), out_path(params, "gen_personas"), source, "train",
                                  param(params, "gen.conversations.train", int), config.strategies,
                                  param(params, "gen.context_turns", int), param(params, "gen.persona_every", int))
        summaries[source] = task_of(train_generator)(examples, config, settings, generator_dir(params, source))
        models[source] = str(generator_path(params, source))
    write_json({"config": asdict(config), "settings": asdict(settings), "sources": summaries},
               out_path(params, "gen_train_metrics"))
    write_loss_plot(summaries, out_path(params, "gen_train_plot"))
    return models


if __name__ == "__main__":
    gen_train_flow()
