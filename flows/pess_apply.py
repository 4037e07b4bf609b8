"""Stage pess_apply: personas from the trained PESS extractor for everyone the project studies.

- Every ESConv seeker (all 1,300 conversations of train/valid/test.txt), from the whole
  conversation -> data/esconv_personas.parquet (ESCONV_PERSONAS).
- Every movie character with dialogue snippets, from the character's own lines (the D column
  of data/snippets_<data.source>.parquet) -> data/character_personas.parquet (CHARACTER_PERSONAS).

A history longer than the extractor's input is cut into windows of whole turns
(flows.gen_personas.history_windows, the same windows the generator's personas use); at most
pess.apply.max_chunks of them, evenly spaced over the history, are decoded. The persona is the
windows' sentences in order, a sentence dropped when its MiniLM cosine to one already kept
reaches pess.loss.tau (the same "states the same fact" test the training sets use).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

import pyarrow as pa
from prefect import flow

from flows.lib.config import data_path, load_params, param, write_json
from flows.lib.esconv_examples import SEEKER
from flows.gen_personas import decode_windows, history_windows
from flows.lib.orchestration import fingerprint, run_stage, stage_task
from flows.lib.persona_data import ESCONV_SPLITS, read_esconv
from flows.pess_eval import load_extractor
from flows.pess_train import run_paths
from flows.lib.schemas import CHARACTER_PERSONAS, ESCONV_PERSONAS, SNIPPETS, read_table, write_table
from models.pess import PersonaExtractor, SentenceScorer

ESCONV_OUT = "data/esconv_personas.parquet"
CHARACTERS_OUT = "data/character_personas.parquet"
METRICS_PATH = "metrics/pess_apply.json"


def evenly_spaced(items: Sequence[Any], limit: int) -> list[Any]:
    """At most `limit` items (0: all), first and last included, spread evenly."""
    if limit <= 0 or len(items) <= limit:
        return list(items)
    if limit == 1:
        return [items[0]]
    return [items[round(n * (len(items) - 1) / (limit - 1))] for n in range(limit)]


def merge_sentences(groups: list[list[str]], scorer: SentenceScorer, tau: float) -> list[list[str]]:
    """Per group: its sentences in order, each kept unless its cosine to a kept one is >= tau."""
    unique = sorted({s for group in groups for s in group})
    vectors = dict(zip(unique, scorer.embed(unique)))
    merged = []
    for group in groups:
        kept: list[str] = []
        for sentence in group:
            if all(float(vectors[sentence] @ vectors[other]) < tau for other in kept):
                kept.append(sentence)
        merged.append(kept)
    return merged


def infer_personas(
    extractor: PersonaExtractor,
    scorer: SentenceScorer,
    histories: list[Sequence[tuple[str, str]]],
    include_partner: bool,
    max_chunks: int,
    tau: float,
    batch_size: int,
) -> list[tuple[int, list[str]]]:
    """(windows decoded, persona sentences) per history; the SEEKER turns are the persona's owner."""
    windows = [evenly_spaced(history_windows(turns, extractor, include_partner), max_chunks) for turns in histories]
    decoded = decode_windows(extractor, [w for owner in windows for w in owner], batch_size, {})
    personas = merge_sentences([[s for w in owner for s in decoded[w]] for owner in windows], scorer, tau)
    return [(len(owner), persona) for owner, persona in zip(windows, personas)]


def character_lines(snippets: pa.Table) -> list[dict[str, Any]]:
    """Per character: movie and distinct lines (first occurrence, scene order; overlapping
    snippet windows repeat lines)."""
    rows = sorted(snippets.select(["char_id", "movie", "scene", "snippet_id", "D"]).to_pylist(),
                  key=lambda r: (r["char_id"], r["scene"], r["snippet_id"]))
    characters: dict[str, dict[str, Any]] = defaultdict(lambda: {"lines": [], "seen": set()})
    for row in rows:
        character = characters[row["char_id"]]
        character["movie"] = row["movie"]
        for line in row["D"]:
            if line.strip() and line not in character["seen"]:
                character["seen"].add(line)
                character["lines"].append(line)
    return [{"char_id": char_id, "movie": c["movie"], "lines": c["lines"]} for char_id, c in characters.items() if c["lines"]]


def apply_pess(
    model_path: str,
    model_hash: dict[str, str],
    esconv_paths: list[str],
    snippets_path: str,
    data_hashes: dict[str, str],
    include_partner: bool,
    max_chunks: int,
    tau: float,
    num_beams: int,
    batch_size: int,
    esconv_out: str,
    characters_out: str,
    metrics_path: str,
) -> list[str]:
    """Pure stage body; the hashes only key the cache."""
    extractor = load_extractor(model_path, num_beams)
    scorer = SentenceScorer(extractor.config.sentence_model, extractor.device)
    dialogues = [d for path in esconv_paths for d in read_esconv(path)]
    seeker = infer_personas(extractor, scorer, [d.turns for d in dialogues], include_partner, max_chunks, tau, batch_size)
    esconv_rows = [
        {
            "conversation_id": d.conversation_id,
            "split": d.split,
            "emotion_type": d.emotion_type,
            "problem_type": d.problem_type,
            "seeker_turns": sum(who == SEEKER for who, _ in d.turns),
            "windows": windows,
            "persona": persona,
        }
        for d, (windows, persona) in zip(dialogues, seeker)
    ]
    write_table(pa.Table.from_pylist(esconv_rows, schema=ESCONV_PERSONAS), esconv_out, ESCONV_PERSONAS)
    characters = character_lines(read_table(snippets_path, SNIPPETS))
    own_lines = [[(SEEKER, line) for line in c["lines"]] for c in characters]
    inferred = infer_personas(extractor, scorer, own_lines, include_partner, max_chunks, tau, batch_size)
    character_rows = [
        {"char_id": c["char_id"], "movie": c["movie"], "lines": len(c["lines"]), "windows": windows, "persona": persona}
        for c, (windows, persona) in zip(characters, inferred)
    ]
    write_table(pa.Table.from_pylist(character_rows, schema=CHARACTER_PERSONAS), characters_out, CHARACTER_PERSONAS)
    write_json(
        {
            "esconv_seekers": len(esconv_rows),
            "esconv_empty_personas": sum(not r["persona"] for r in esconv_rows),
            "esconv_sentences_mean": sum(len(r["persona"]) for r in esconv_rows) / max(1, len(esconv_rows)),
            "characters": len(character_rows),
            "character_empty_personas": sum(not r["persona"] for r in character_rows),
            "character_sentences_mean": sum(len(r["persona"]) for r in character_rows) / max(1, len(character_rows)),
        },
        metrics_path,
    )
    return [esconv_out, characters_out]


apply_pess_task = stage_task(apply_pess)


@flow(name="pess_apply")
def pess_apply_flow() -> list[str]:
    params = load_params()
    model_path = run_paths()["model_path"]
    esconv_paths = [str(data_path(params, "esconv", name)) for name in ESCONV_SPLITS]
    snippets_path = f"data/snippets_{param(params, 'data.source', str)}.parquet"
    return run_stage(
        apply_pess_task,
        outputs=[ESCONV_OUT, CHARACTERS_OUT, METRICS_PATH],
        model_path=model_path,
        model_hash=fingerprint(model_path),
        esconv_paths=esconv_paths,
        snippets_path=snippets_path,
        data_hashes=fingerprint(*esconv_paths, snippets_path),
        include_partner=param(params, "pess.include_partner", bool),
        max_chunks=param(params, "pess.apply.max_chunks", int),
        tau=float(param(params, "pess.loss.tau", (int, float))),
        num_beams=param(params, "pess.generate.num_beams", int),
        batch_size=param(params, "pess.generate.batch_size", int),
        esconv_out=ESCONV_OUT,
        characters_out=CHARACTERS_OUT,
        metrics_path=METRICS_PATH,
    )


if __name__ == "__main__":
    pess_apply_flow()
