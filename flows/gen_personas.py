"""Stage gen_personas: infer the ESConv seeker's persona so far, once, with each trained extractor.

For every conversation of the ESConv subset (gen.conversations) and every inference point k
(after seeker utterances gen.persona_every, 2·gen.persona_every, …; PAL starts at the 3rd),
the extractor reads the conversation up to and including the k-th seeker utterance — never
past it — and writes the seeker's persona sentences. Rows go to data/gen_personas.parquet
(schema GEN_PERSONAS), one per (source, conversation, k).

A prefix longer than the extractor's input (pess.model.max_source_len) is cut into windows
of whole turns, packed greedily from the start; the persona so far is the union (first
occurrence kept) of the sentences of its windows. Windows are fixed from the start of the
conversation, so the full ones are shared by later points and decoded once.

Resumable: finished conversations are kept in <gen.artifacts>/personas/partial.pt (with a key
of the extractors and settings) every gen.personas_save_every conversations.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa
from prefect import flow

from flows.lib.config import file_sha256, load_params, param
from flows.lib.errors import PipelineInputError
from flows.lib.esconv_examples import SEEKER, Conversation, esconv_dir, load_split, load_strategies, persona_points
from flows.lib.orchestration import fingerprint, run_stage, stage_task
from flows.lib.persona_data import format_history
from flows.pess_eval import load_extractor
from flows.lib.schemas import GEN_PERSONAS, write_table
from models.pess import PersonaExtractor, persona_sentences, persona_text
from models.runtime import load_checkpoint, save_checkpoint

log = logging.getLogger(__name__)


def history_windows(turns: Sequence[tuple[str, str]], extractor: PersonaExtractor, include_partner: bool) -> list[str]:
    """The seeker's history over `turns` as extractor inputs: whole turns packed greedily from
    the start into windows of at most max_source_len tokens; a window needs a seeker turn."""
    budget = extractor.config.max_source_len - 2  # start and end tokens
    windows, current, used = [], [], 0
    for turn in turns:
        if turn[0] != SEEKER and not include_partner:
            continue
        size = len(extractor.tokenizer(format_history([turn], SEEKER, include_partner), add_special_tokens=False)["input_ids"])
        if current and used + size > budget:
            windows.append(current)
            current, used = [], 0
        current.append(turn)
        used += size
    if current:
        windows.append(current)
    return [format_history(w, SEEKER, include_partner) for w in windows if any(who == SEEKER for who, _ in w)]


def prefix_turns(conversation: Conversation, seeker_turns: int) -> list[tuple[str, str]]:
    """The turns up to and including the `seeker_turns`-th seeker utterance."""
    seen = 0
    for index, turn in enumerate(conversation.turns):
        seen += turn.speaker == SEEKER
        if seen == seeker_turns:
            return [(t.speaker, t.text) for t in conversation.turns[: index + 1]]
    raise PipelineInputError(f"{conversation.conversation_id}: fewer than {seeker_turns} seeker turns")


def decode_windows(extractor: PersonaExtractor, windows: Sequence[str], batch_size: int,
                   decoded: dict[str, list[str]]) -> dict[str, list[str]]:
    """Add the persona sentences of every window not yet in `decoded` (window -> sentences)."""
    pending = sorted(set(windows) - set(decoded))
    for start in range(0, len(pending), batch_size):
        chunk = pending[start : start + batch_size]
        decoded.update(zip(chunk, (persona_sentences(text) for text in extractor.generate(chunk))))
    return decoded


def merged_persona(windows: Sequence[str], decoded: dict[str, list[str]]) -> list[str]:
    """The persona so far: the windows' sentences in order, a repeated sentence kept once."""
    return persona_sentences(persona_text([s for w in windows for s in decoded[w]]))


def infer_conversation_personas(
    conversations: Sequence[Conversation],
    extractor: PersonaExtractor,
    every: int,
    include_partner: bool,
    batch_size: int,
) -> list[dict[str, Any]]:
    """Rows {conversation_id, split, seeker_turns, persona} for every inference point."""
    points = [(c, k, history_windows(prefix_turns(c, k), extractor, include_partner))
              for c in conversations for k in persona_points(c, every)]
    decoded = decode_windows(extractor, [w for _, _, windows in points for w in windows], batch_size, {})
    return [
        {"conversation_id": c.conversation_id, "split": c.split, "seeker_turns": k, "persona": merged_persona(windows, decoded)}
        for c, k, windows in points
    ]


# ---------------------------------------------------------------------------------------------
# stage


def infer_personas(
    esconv: str,
    data_hashes: dict[str, str],
    extractors: dict[str, str],
    extractor_hashes: dict[str, str],
    conversations: dict[str, int],
    every: int,
    include_partner: bool,
    batch_size: int,
    save_every: int,
    device: str,
    partial_path: str,
    out_path: str,
) -> str:
    """Pure stage body: personas of every source at every point -> out_path. The hashes key
    the cache and the resume file."""
    strategies = load_strategies(Path(esconv) / "strategy.json")
    subset = [c for split, limit in conversations.items() for c in load_split(esconv, split, strategies, limit)]
    key = hashlib.sha256(json.dumps([extractor_hashes, data_hashes, conversations, every, include_partner],
                                    sort_keys=True).encode()).hexdigest()
    partial = Path(partial_path)
    done: dict[str, list[dict[str, Any]]] = {}  # "<source>/<conversation_id>" -> its rows
    if partial.exists():
        saved = load_checkpoint(partial)
        if saved.get("key") == key:
            done = saved["done"]
            log.info("gen_personas: resuming with %d conversations done", len(done))
    for source, path in extractors.items():
        extractor = load_extractor(path, device=device)
        todo = [c for c in subset if f"{source}/{c.conversation_id}" not in done]
        for start in range(0, len(todo), save_every):
            chunk = todo[start : start + save_every]
            rows = infer_conversation_personas(chunk, extractor, every, include_partner, batch_size)
            for conversation in chunk:
                done[f"{source}/{conversation.conversation_id}"] = [
                    {**r, "source": source} for r in rows if r["conversation_id"] == conversation.conversation_id]
            save_checkpoint({"key": key, "done": done}, partial)
    rows = [row for source in extractors for c in subset for row in done[f"{source}/{c.conversation_id}"]]
    write_table(pa.Table.from_pylist(rows, schema=GEN_PERSONAS), out_path, GEN_PERSONAS)
    partial.unlink(missing_ok=True)
    return out_path


infer_personas_task = stage_task(infer_personas)


def extractor_paths(params: dict[str, Any]) -> dict[str, str]:
    extractors = param(params, "gen.extractors", dict)
    missing = [f"{source}: {path}" for source, path in extractors.items() if not Path(path).exists()]
    if missing:
        raise PipelineInputError(f"params.yaml: gen.extractors checkpoint not found ({'; '.join(missing)}); run pess_train first")
    return {source: str(path) for source, path in extractors.items()}


@flow(name="gen_personas")
def gen_personas_flow() -> str:
    params = load_params()
    esconv = esconv_dir(params)
    extractors = extractor_paths(params)
    out_path = param(params, "gen.personas", str)
    return run_stage(
        infer_personas_task,
        outputs=[out_path],
        esconv=str(esconv),
        data_hashes=fingerprint(esconv),
        extractors=extractors,
        extractor_hashes={source: file_sha256(path) for source, path in extractors.items()},
        conversations={split: param(params, f"gen.conversations.{split}", int) for split in ("train", "test")},
        every=param(params, "gen.persona_every", int),
        include_partner=param(params, "pess.include_partner", bool),
        batch_size=param(params, "pess.generate.batch_size", int),
        save_every=param(params, "gen.personas_save_every", int),
        device=param(params, "gen.train.device", str),
        partial_path=str(Path(param(params, "gen.artifacts", str)) / "personas" / "partial.pt"),
        out_path=out_path,
    )


if __name__ == "__main__":
    gen_personas_flow()
