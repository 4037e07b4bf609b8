"""Personas from a trained extractor: the grounded selector of the speaker's own sentences
(models/persona_selector.py: it reads every seeker utterance at once), or a seq2seq PESS
extractor (models/pess.py) for histories longer than its input, as follows.

A history is cut into windows of whole turns, packed greedily from the start into the
extractor's max_source_len tokens (a window needs a turn of the persona's owner, the SEEKER);
each distinct window is decoded once. Two ways to merge the windows' sentences:

- `merged_persona` (gen_personas, `personas chat`): the sentences in order, a repeat (same
  normalised text) kept once. Windows are fixed from the start of a conversation, so the full
  ones are shared by later inference points and decoded once.
- `window_personas` (pess_apply): at most max_chunks windows, evenly spaced over the history;
  a sentence is dropped when its MiniLM cosine to one already kept reaches tau (the "states the
  same fact" test of the training sets).
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa

from flows.lib.config import file_sha256
from flows.lib.errors import PipelineInputError
from flows.lib.esconv_examples import EsconvConversation, persona_points
from flows.lib.persona_data import format_history
from flows.lib.schemas import GEN_PERSONAS, write_table
from models.generator import SEEKER
from models.pess import PersonaExtractor, SentenceScorer, load_extractor, persona_sentences, persona_text
from models.persona_selector import PersonaSelector, is_selector_checkpoint
from models.runtime import load_checkpoint, save_checkpoint

log = logging.getLogger(__name__)


Extractor = PersonaExtractor | PersonaSelector


def load_persona_extractor(path: str | Path, num_beams: int | None = None, device: str = "auto",
                           scorer: SentenceScorer | None = None) -> Extractor:
    """The extractor saved at `path`, by the checkpoint's kind; a selector embeds with `scorer`
    when given (a caching one shares its vectors with the caller)."""
    if is_selector_checkpoint(path):
        return PersonaSelector.load(path, scorer)
    return load_extractor(path, num_beams, device)


def seeker_lines(turns: Sequence[tuple[str, str]]) -> list[str]:
    """What a selector reads: the persona owner's (SEEKER's) utterances, in order."""
    return [text for who, text in turns if who == SEEKER]


def own_line_personas(extractor: Extractor, histories: Sequence[Sequence[tuple[str, str]]]) -> list[list[str]] | None:
    """One persona per history from an extractor of own lines (a selector, or any `.extract`
    of the SEEKER's utterances, read all at once); None for a seq2seq PersonaExtractor, which
    reads windows of the history instead."""
    if isinstance(extractor, PersonaExtractor):
        return None
    return extractor.extract([seeker_lines(turns) for turns in histories])


# ---------------------------------------------------------------------------------------------
# windows


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


# ---------------------------------------------------------------------------------------------
# gen_personas: the seeker's persona so far at every inference point of a conversation


def prefix_turns(conversation: EsconvConversation, seeker_turns: int) -> list[tuple[str, str]]:
    """The turns up to and including the `seeker_turns`-th seeker utterance."""
    seen = 0
    for index, turn in enumerate(conversation.turns):
        seen += turn.speaker == SEEKER
        if seen == seeker_turns:
            return [(t.speaker, t.text) for t in conversation.turns[: index + 1]]
    raise PipelineInputError(f"{conversation.conversation_id}: fewer than {seeker_turns} seeker turns")


def conversation_personas(
    conversations: Sequence[EsconvConversation],
    extractor: Extractor,
    every: int,
    include_partner: bool,
    batch_size: int,
) -> list[dict[str, Any]]:
    """Rows {conversation_id, split, seeker_turns, persona} for every inference point."""
    points = [(c, k, prefix_turns(c, k)) for c in conversations for k in persona_points(c, every)]
    personas = own_line_personas(extractor, [turns for _, _, turns in points])
    if personas is None:  # a seq2seq extractor: decode the windows of every history
        windows = [history_windows(turns, extractor, include_partner) for _, _, turns in points]
        decoded = decode_windows(extractor, [w for point in windows for w in point], batch_size, {})
        personas = [merged_persona(point, decoded) for point in windows]
    return [{"conversation_id": c.conversation_id, "split": c.split, "seeker_turns": k, "persona": persona}
            for (c, k, _), persona in zip(points, personas)]


def write_gen_personas(
    conversations: Sequence[EsconvConversation],
    extractors: dict[str, str],
    every: int,
    include_partner: bool,
    batch_size: int,
    save_every: int,
    device: str,
    partial_path: str | Path,
    out_path: str | Path,
) -> Path:
    """The personas of every extractor (source -> checkpoint) at every inference point of the
    conversations -> out_path (GEN_PERSONAS). Resumable: finished conversations are kept in
    partial_path every `save_every` conversations, with a key of the extractors' weights, the
    conversations and the settings; the file goes once the table is written."""
    key = hashlib.sha256(json.dumps([{source: file_sha256(path) for source, path in extractors.items()},
                                     [asdict(c) for c in conversations], every, include_partner],
                                    sort_keys=True).encode()).hexdigest()
    partial = Path(partial_path)
    done: dict[str, list[dict[str, Any]]] = {}  # "<source>/<conversation_id>" -> its rows
    if partial.exists():
        saved = load_checkpoint(partial)
        if saved.get("key") == key:
            done = saved["done"]
            log.info("gen_personas: resuming with %d conversations done", len(done))
    for source, path in extractors.items():
        extractor = load_persona_extractor(path, device=device)
        todo = [c for c in conversations if f"{source}/{c.conversation_id}" not in done]
        for start in range(0, len(todo), save_every):
            chunk = todo[start : start + save_every]
            rows = conversation_personas(chunk, extractor, every, include_partner, batch_size)
            for conversation in chunk:
                done[f"{source}/{conversation.conversation_id}"] = [
                    {**r, "source": source} for r in rows if r["conversation_id"] == conversation.conversation_id]
            save_checkpoint({"key": key, "done": done}, partial)
    rows = [row for source in extractors for c in conversations for row in done[f"{source}/{c.conversation_id}"]]
    write_table(pa.Table.from_pylist(rows, schema=GEN_PERSONAS), out_path, GEN_PERSONAS)
    partial.unlink(missing_ok=True)
    return Path(out_path)


# ---------------------------------------------------------------------------------------------
# pess_apply: one persona per ESConv seeker and per movie character


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


def window_personas(
    extractor: Extractor,
    scorer: SentenceScorer,
    histories: list[Sequence[tuple[str, str]]],
    include_partner: bool,
    max_chunks: int,
    tau: float,
    batch_size: int,
) -> list[tuple[int, list[str]]]:
    """(windows decoded, persona sentences) per history; the SEEKER turns are the persona's owner.
    A selector reads all of them at once (one window)."""
    own = own_line_personas(extractor, histories)
    if own is not None:
        return [(1, persona) for persona in own]
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


def seeker_persona_rows(extractor: Extractor, scorer: SentenceScorer, conversations: Sequence[EsconvConversation],
                        include_partner: bool, max_chunks: int, tau: float, batch_size: int) -> list[dict[str, Any]]:
    """ESCONV_PERSONAS rows: every seeker's persona from the whole conversation."""
    histories = [[(t.speaker, t.text) for t in c.turns] for c in conversations]
    personas = window_personas(extractor, scorer, histories, include_partner, max_chunks, tau, batch_size)
    return [
        {"conversation_id": c.conversation_id, "split": c.split, "emotion_type": c.emotion_type,
         "problem_type": c.problem_type, "seeker_turns": sum(t.speaker == SEEKER for t in c.turns),
         "windows": windows, "persona": persona}
        for c, (windows, persona) in zip(conversations, personas)
    ]


def character_persona_rows(extractor: Extractor, scorer: SentenceScorer, snippets: pa.Table,
                           include_partner: bool, max_chunks: int, tau: float, batch_size: int) -> list[dict[str, Any]]:
    """CHARACTER_PERSONAS rows: every movie character's persona from its own lines (column D)."""
    characters = character_lines(snippets)
    own_lines = [[(SEEKER, line) for line in c["lines"]] for c in characters]
    personas = window_personas(extractor, scorer, own_lines, include_partner, max_chunks, tau, batch_size)
    return [
        {"char_id": c["char_id"], "movie": c["movie"], "lines": len(c["lines"]), "windows": windows, "persona": persona}
        for c, (windows, persona) in zip(characters, personas)
    ]


def persona_summary(esconv_rows: list[dict[str, Any]], character_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """metrics/pess_apply.json: how many personas, how many empty, sentences per persona."""
    return {
        "esconv_seekers": len(esconv_rows),
        "esconv_empty_personas": sum(not r["persona"] for r in esconv_rows),
        "esconv_sentences_mean": sum(len(r["persona"]) for r in esconv_rows) / max(1, len(esconv_rows)),
        "characters": len(character_rows),
        "character_empty_personas": sum(not r["persona"] for r in character_rows),
        "character_sentences_mean": sum(len(r["persona"]) for r in character_rows) / max(1, len(character_rows)),
    }
