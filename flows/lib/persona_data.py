"""Readers for the dialogue corpora of the PESS stages, and the (history, persona) examples.

- Synthetic-Persona-Chat CSV (columns `user 1 personas`, `user 2 personas`,
  `Best Generated Conversation`): two examples per conversation, one per speaker.
- ConvAI2 / Persona-Chat text format (`N your persona: ...`, `N partner<TAB>self`): one example
  per dialogue, two where `partner's persona:` lines are present (the *_both_* files). Real
  Persona-Chat drops in by setting `pess.corpus: convai2` and listing its files.

A history marks whose turn each is: `self: ...` for the speaker whose persona is wanted,
`partner: ...` for the other. Rows in error messages count data rows from 1 (header excluded).
"""
from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from flows.lib.errors import PipelineInputError
from flows.lib.schemas import PERSONA_SPLITS, read_table
from models.pess import persona_sentences, persona_text

log = logging.getLogger(__name__)

SYNTHETIC_COLUMNS = {"user 1": "user 1 personas", "user 2": "user 2 personas"}
SYNTHETIC_CONVERSATION = "Best Generated Conversation"
# "User 1: hi", "*User 1:* hi", "* * User 2: * * hi": markdown stars around the speaker label
_SYNTHETIC_TURN = re.compile(r"^[\s*]*user\s*([12])\s*\**\s*:[\s*]*(.*)$", re.IGNORECASE)
_CONVAI2_LINE = re.compile(r"^(\d+) (.*)$")


@dataclass(frozen=True)
class PersonaConversation:
    conversation_id: str
    turns: tuple[tuple[str, str], ...]  # (speaker, text) in order
    personas: dict[str, tuple[str, ...]]  # speaker -> persona sentences, for speakers that have one


@dataclass(frozen=True)
class PersonaExample:
    example_id: str  # <conversation_id>/<speaker>
    conversation_id: str
    history: str
    persona: str  # gold persona sentences serialised as the decoder target
    split: str  # train | val | test
    own_turns: tuple[str, ...] = ()  # the speaker's own utterances, in order (what a persona may be grounded in)


def format_history(turns: Sequence[tuple[str, str]], speaker: str, include_partner: bool) -> str:
    """The extractor's input: `speaker`'s turns as "self: ...", the others' as "partner: ..."
    (left out unless include_partner)."""
    return " ".join(
        f"{'self' if who == speaker else 'partner'}: {text}"
        for who, text in turns
        if who == speaker or include_partner
    )


def speaker_sentences(utterances: Sequence[str]) -> list[str]:
    """A speaker's own sentences, in order, a repeat kept once: what their persona can be
    grounded in (the sentence split of models/pess.py). Each utterance is closed with a full
    stop where it has no end punctuation first: otherwise an unpunctuated utterance ("i lost my
    job"), common in ESConv, runs into the next one as a single sentence."""
    return persona_sentences(persona_text(list(utterances)))


def _persona_lines(cell: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in cell.split("\n") if line.strip())


def read_synthetic_persona_chat(path: str | Path) -> list[PersonaConversation]:
    """Conversations of one Synthetic-Persona-Chat CSV. A conversation whose speakers cannot
    be told apart (empty, or no `User N:` label) is skipped with a warning; an empty persona
    or a missing column is an error."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise PipelineInputError(f"{path}: not a readable CSV ({error})") from error
    for column in (*SYNTHETIC_COLUMNS.values(), SYNTHETIC_CONVERSATION):
        if column not in frame.columns:
            raise PipelineInputError(f"{path}: missing column '{column}'")
    conversations = []
    for row, record in enumerate(frame.to_dict("records"), start=1):
        personas = {}
        for speaker, column in SYNTHETIC_COLUMNS.items():
            personas[speaker] = _persona_lines(record[column])
            if not personas[speaker]:
                raise PipelineInputError(f"{path}: row {row}: empty '{column}'")
        turns: list[tuple[str, str]] = []
        for line in record[SYNTHETIC_CONVERSATION].split("\n"):
            match = _SYNTHETIC_TURN.match(line)
            if match:
                turns.append((f"user {match.group(1)}", match.group(2).strip()))
            elif turns and re.search(r"\w", line):  # a wrapped line continues the turn before it
                turns[-1] = (turns[-1][0], f"{turns[-1][1]} {line.strip()}")
        if not turns:
            log.warning("%s: row %d: no 'User N:' turns, conversation skipped", path, row)
            continue
        conversations.append(PersonaConversation(f"{path.stem}-{row:04d}", tuple(turns), personas))
    return conversations


def read_convai2(path: str | Path) -> list[PersonaConversation]:
    """Dialogues of a ConvAI2 text file (self_original / both_original, with or without
    candidates: fields after the second tab are ignored)."""
    path = Path(path)
    if not path.exists():
        raise PipelineInputError(f"{path}: file not found")
    dialogues: list[dict] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        match = _CONVAI2_LINE.match(line)
        if not match:
            raise PipelineInputError(f"{path}: line {number}: expected '<turn number> <text>'")
        index, text = int(match.group(1)), match.group(2)
        if index == 1 or not dialogues:
            dialogues.append({"line": number, "self": [], "partner": [], "turns": []})
        dialogue = dialogues[-1]
        if text.startswith("your persona:"):
            dialogue["self"].append(text.removeprefix("your persona:").strip())
        elif text.startswith("partner's persona:"):
            dialogue["partner"].append(text.removeprefix("partner's persona:").strip())
        else:
            fields = text.split("\t")
            if len(fields) < 2:
                raise PipelineInputError(f"{path}: line {number}: expected 'partner utterance<TAB>own response'")
            if fields[0].strip() and fields[0].strip() != "__SILENCE__":
                dialogue["turns"].append(("partner", fields[0].strip()))
            dialogue["turns"].append(("self", fields[1].strip()))
    conversations = []
    for n, dialogue in enumerate(dialogues):
        if not dialogue["self"]:
            raise PipelineInputError(f"{path}: line {dialogue['line']}: dialogue without 'your persona:' lines")
        personas = {"self": tuple(dialogue["self"])}
        if dialogue["partner"]:
            personas["partner"] = tuple(dialogue["partner"])
        conversations.append(PersonaConversation(f"{path.stem}-{n:04d}", tuple(dialogue["turns"]), personas))
    return conversations


READERS = {"synthetic": read_synthetic_persona_chat, "convai2": read_convai2}


def assign_splits(conversation_ids: list[str], seed: int, val: float, test: float) -> dict[str, str]:
    """Conversation -> train | val | test; shuffled with `seed`, both speakers stay together."""
    if val < 0 or test < 0 or val + test >= 1:
        raise PipelineInputError(f"params.yaml: pess.split val={val} and test={test} must be >= 0 and sum below 1")
    order = sorted(conversation_ids)
    random.Random(seed).shuffle(order)
    n_test, n_val = round(test * len(order)), round(val * len(order))
    return {cid: "test" if n < n_test else "val" if n < n_test + n_val else "train" for n, cid in enumerate(order)}


def load_persona_examples(
    corpus: str, paths: list[str | Path], include_partner: bool, seed: int, val: float, test: float
) -> list[PersonaExample]:
    """All (history, persona) examples of the corpus's files, one per speaker with a persona."""
    if corpus not in READERS:
        raise PipelineInputError(f"params.yaml: param 'pess.corpus' is {corpus!r}; valid: {', '.join(READERS)}")
    conversations = [c for path in paths for c in READERS[corpus](path)]
    splits = assign_splits([c.conversation_id for c in conversations], seed, val, test)
    return [
        PersonaExample(
            example_id=f"{c.conversation_id}/{speaker.replace(' ', '')}",
            conversation_id=c.conversation_id,
            history=format_history(c.turns, speaker, include_partner),
            persona=persona_text(list(persona)),
            split=splits[c.conversation_id],
            own_turns=tuple(text for who, text in c.turns if who == speaker),
        )
        for c in conversations
        for speaker, persona in c.personas.items()
    ]


def read_split_assignment(path: str | Path) -> dict[str, str]:
    """example_id -> split, as the pess_split stage wrote it (schema PERSONA_SPLITS)."""
    return {row["example_id"]: row["split"] for row in read_table(path, PERSONA_SPLITS).to_pylist()}


def assigned_examples(corpus: dict[str, Any], assignment: dict[str, str] | None = None) -> list[PersonaExample]:
    """All examples of the corpus (`corpus`: the keyword arguments of load_persona_examples);
    `assignment` (read_split_assignment) replaces the random conversation split by the
    pess_split stage's."""
    examples = load_persona_examples(**corpus)
    if assignment is None:
        return examples
    missing = [e.example_id for e in examples if e.example_id not in assignment]
    if missing:
        raise PipelineInputError(f"persona splits: example {missing[0]} (and {len(missing) - 1} more) has no split; "
                                 "rerun pess_split")
    return [replace(e, split=assignment[e.example_id]) for e in examples]


def examples_of_split(examples: Sequence[PersonaExample], split: str, max_examples: int = 0) -> list[PersonaExample]:
    """The first `max_examples` (0: all) of `examples` in one split; an empty split is a
    one-line error."""
    chosen = [e for e in examples if e.split == split]
    if not chosen:
        raise PipelineInputError(f"params.yaml: the '{split}' split of pess.files is empty (see pess.split)")
    return chosen[:max_examples] if max_examples > 0 else chosen


def split_examples(corpus: dict[str, Any], split: str, max_examples: int = 0,
                   assignment: dict[str, str] | None = None) -> list[PersonaExample]:
    """The first `max_examples` (0: all) examples of one split of the corpus (assigned_examples,
    examples_of_split); a stage that needs several splits reads the corpus once with those two."""
    return examples_of_split(assigned_examples(corpus, assignment), split, max_examples)
