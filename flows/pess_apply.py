"""Stage `pess_apply`: personas for everyone the project studies, and how grounded they are.

Reads the extractor of pess.apply.extractor (the grounded selector by default, or a seq2seq
PESS extractor), the three ESConv files (esconv.dir under data.root) and the snippet table of
`data.source`; writes paths.esconv_personas (every ESConv seeker, from the whole
conversation), paths.character_personas (every movie character with dialogue, from its own
lines) and paths.pess_apply_metrics: counts, and the grounding rate of each (the share of
persona sentences whose MiniLM cosine to one of the speaker's own sentences reaches
pess.loss.tau, with a 95% interval). A seq2seq extractor cuts a long history into windows, at
most pess.apply.max_chunks of them decoded, and merges their sentences at pess.loss.tau
(flows/lib/persona_inference.py).
"""
from __future__ import annotations

import pyarrow as pa
from prefect import flow

from flows.lib.config import load_params, out_path, param, snippets_path, write_json
from flows.lib.esconv_examples import ESCONV_FILES, load_split, load_strategies, seeker_utterances
from flows.lib.orchestration import task_of
from flows.lib.persona_data import speaker_sentences
from flows.lib.persona_inference import (character_lines, character_persona_rows, load_persona_extractor, persona_summary,
                                         seeker_persona_rows)
from flows.lib.persona_metrics import CachedScorer, grounding_rate
from flows.lib.pess_params import esconv_dir
from flows.lib.schemas import CHARACTER_PERSONAS, ESCONV_PERSONAS, SNIPPETS, read_table, write_table


@flow(name="pess_apply")
def pess_apply_flow() -> dict:
    params = load_params()
    esconv = esconv_dir(params)
    strategies = load_strategies(esconv / "strategy.json")
    conversations = [c for split in ESCONV_FILES for c in load_split(esconv, split, strategies)]
    snippets = read_table(snippets_path(params), SNIPPETS)
    scorer = CachedScorer(param(params, "embed.model", str))  # one encoder for the selector and the grounding check
    extractor = load_persona_extractor(param(params, "pess.apply.extractor", str), param(params, "pess.generate.num_beams", int),
                                       scorer=scorer)
    tau = float(param(params, "pess.loss.tau", (int, float)))
    settings = (param(params, "pess.include_partner", bool), param(params, "pess.apply.max_chunks", int), tau,
                param(params, "pess.generate.batch_size", int))
    seekers = task_of(seeker_persona_rows)(extractor, scorer, conversations, *settings)
    characters = task_of(character_persona_rows)(extractor, scorer, snippets, *settings)
    write_table(pa.Table.from_pylist(seekers, schema=ESCONV_PERSONAS), out_path(params, "esconv_personas"), ESCONV_PERSONAS)
    write_table(pa.Table.from_pylist(characters, schema=CHARACTER_PERSONAS), out_path(params, "character_personas"),
                CHARACTER_PERSONAS)
    own = {"esconv_seekers": [speaker_sentences(seeker_utterances(c)) for c in conversations],
           "characters": [speaker_sentences(c["lines"]) for c in character_lines(snippets)]}
    summary = {"extractor": param(params, "pess.apply.extractor", str), **persona_summary(seekers, characters),
               "grounding": {name: task_of(grounding_rate)([r["persona"] for r in rows], own[name], scorer, tau)
                             for name, rows in (("esconv_seekers", seekers), ("characters", characters))}}
    write_json(summary, out_path(params, "pess_apply_metrics"))
    return summary


if __name__ == "__main__":
    pess_apply_flow()
