"""Stage `pess_apply`: personas from the trained PESS extractor for everyone the project studies.

Reads <paths.pess_dir>/model.pt, the three ESConv files (esconv.dir under data.root) and the
snippet table of `data.source`; writes paths.esconv_personas (every ESConv seeker, from the
whole conversation), paths.character_personas (every movie character with dialogue, from its
own lines) and the counts in paths.pess_apply_metrics. A long history is cut into windows, at
most pess.apply.max_chunks of them decoded, and their sentences merged at pess.loss.tau
(flows/lib/persona_inference.py).
"""
from __future__ import annotations

import pyarrow as pa
from prefect import flow

from flows.lib.config import load_params, out_path, param, snippets_path, write_json
from flows.lib.esconv_examples import ESCONV_FILES, load_strategies, load_split
from flows.lib.orchestration import task_of
from flows.lib.persona_inference import character_persona_rows, persona_summary, seeker_persona_rows
from flows.lib.pess_params import esconv_dir, run_paths
from flows.lib.schemas import CHARACTER_PERSONAS, ESCONV_PERSONAS, SNIPPETS, read_table, write_table
from models.pess import SentenceScorer, load_extractor


@flow(name="pess_apply")
def pess_apply_flow() -> dict:
    params = load_params()
    esconv = esconv_dir(params)
    strategies = load_strategies(esconv / "strategy.json")
    conversations = [c for split in ESCONV_FILES for c in load_split(esconv, split, strategies)]
    snippets = read_table(snippets_path(params), SNIPPETS)
    extractor = load_extractor(run_paths(params)["model_path"], param(params, "pess.generate.num_beams", int))
    scorer = SentenceScorer(extractor.config.sentence_model, extractor.device)
    settings = (param(params, "pess.include_partner", bool), param(params, "pess.apply.max_chunks", int),
                float(param(params, "pess.loss.tau", (int, float))), param(params, "pess.generate.batch_size", int))
    seekers = task_of(seeker_persona_rows)(extractor, scorer, conversations, *settings)
    characters = task_of(character_persona_rows)(extractor, scorer, snippets, *settings)
    write_table(pa.Table.from_pylist(seekers, schema=ESCONV_PERSONAS), out_path(params, "esconv_personas"), ESCONV_PERSONAS)
    write_table(pa.Table.from_pylist(characters, schema=CHARACTER_PERSONAS), out_path(params, "character_personas"),
                CHARACTER_PERSONAS)
    summary = persona_summary(seekers, characters)
    write_json(summary, out_path(params, "pess_apply_metrics"))
    return summary


if __name__ == "__main__":
    pess_apply_flow()
