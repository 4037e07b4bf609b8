"""ESConv (Liu et al. 2021) for the PESS and PESS-GEN stages: the one reader of its JSON-lines
files, and its supporter turns as generation examples.

A conversation is read with its emotion, problem, situation and turns; a supporter turn carries
its strategy as the generator's token ("Question" -> "[Question]", checked against
strategy.json). A generation example is one supporter turn, holding the dialogue context before
it, the seeker persona inferred so far, the gold strategy and the gold response. The response is
only ever the target: nothing at or after the supporter turn enters the context or the persona.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from flows.lib.errors import PipelineInputError
from flows.lib.schemas import GEN_PERSONAS, read_table
from models.generator import SEEKER, SUPPORTER, Turn

NO_PERSONA = "none"  # the persona source of the variant that sees no persona
ESCONV_FILES = {"train": "train.txt", "val": "valid.txt", "test": "test.txt"}
ESCONV_SPLITS = {name: split for split, name in ESCONV_FILES.items()}
METADATA = ("emotion_type", "problem_type", "situation")


@dataclass(frozen=True)
class EsconvConversation:
    conversation_id: str  # "esconv-<split>-<line index>", e.g. "esconv-test-0017"
    split: str  # train | val | test
    turns: tuple[Turn, ...]
    emotion_type: str = ""
    problem_type: str = ""
    situation: str = ""


@dataclass(frozen=True)
class SupportExample:
    conversation_id: str
    turn_index: int  # position of the supporter turn in the conversation
    seeker_turns: int  # seeker utterances before this supporter turn
    persona_turns: int  # seeker utterances the persona was inferred from (0: no persona yet)
    persona: tuple[str, ...]  # persona sentences inferred from the first `persona_turns` seeker utterances
    context: tuple[Turn, ...]  # the last `context_turns` turns before this one, oldest first
    strategy: str  # gold strategy token
    response: str  # gold response: the target, never part of the input


def load_strategies(path: str | Path) -> list[str]:
    """The 8 strategy tokens of strategy.json, in file order (e.g. "[Question]")."""
    path = Path(path)
    try:
        strategies = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise PipelineInputError(f"{path}: not a readable JSON list of strategies ({error})") from error
    if not (isinstance(strategies, list) and strategies and all(
            isinstance(s, str) and s.startswith("[") and s.endswith("]") for s in strategies)):
        raise PipelineInputError(f"{path}: expected a JSON list of '[Strategy]' strings")
    return strategies


def strategy_token(name: str, strategies: Sequence[str], where: str) -> str:
    """ESConv stores "Question"; the model's token is "[Question]"."""
    token = name if name.startswith("[") else f"[{name}]"
    if token not in strategies:
        raise PipelineInputError(f"{where}: unknown strategy {name!r}; valid: {', '.join(strategies)}")
    return token


def conversation_from_dialog(conversation_id: str, split: str, dialog: Iterable[Mapping],
                             strategies: Sequence[str], where: str, **metadata: str) -> EsconvConversation:
    """One ESConv `dialog` list ({"text", "speaker": "usr"|"sys", "strategy"}) as turns."""
    turns = []
    for position, entry in enumerate(dialog):
        if not isinstance(entry, Mapping):
            raise PipelineInputError(f"{where} turn {position}: expected an object with 'speaker' and 'text'")
        speaker = entry.get("speaker")
        text = " ".join(str(entry.get("text", "")).split())
        if speaker == "usr":
            turns.append(Turn(SEEKER, text))
        elif speaker == "sys":
            turns.append(Turn(SUPPORTER, text, strategy_token(str(entry.get("strategy", "")), strategies,
                                                              f"{where} turn {position} field 'strategy'")))
        else:
            raise PipelineInputError(f"{where} turn {position}: field 'speaker' is {speaker!r}, expected usr or sys")
    return EsconvConversation(conversation_id, split, tuple(turns), **metadata)


def _records(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number from 1, parsed JSON) per non-empty line."""
    if not path.exists():
        raise PipelineInputError(f"{path}: file not found")
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as error:
                raise PipelineInputError(f"{path}: line {number}: not JSON ({error.msg})") from error


def read_esconv(path: str | Path, strategies: Sequence[str]) -> list[EsconvConversation]:
    """The conversations of an ESConv JSON-lines file (train.txt / valid.txt / test.txt), with
    ids "esconv-<split>-<line from 0>"; a bad line or field is a one-line error naming both."""
    path = Path(path)
    split = ESCONV_SPLITS.get(path.name, path.stem)
    conversations = []
    for number, record in _records(path):
        where = f"{path}: line {number}"
        try:
            metadata = {key: str(record[key]) for key in METADATA}
            dialog = record["dialog"]
        except (KeyError, TypeError) as error:
            raise PipelineInputError(f"{where}: missing field {error}") from error
        conversations.append(conversation_from_dialog(f"esconv-{split}-{number - 1:04d}", split, dialog, strategies,
                                                      where, **metadata))
    return conversations


def load_split(esconv: str | Path, split: str, strategies: Sequence[str], limit: int = 0) -> list[EsconvConversation]:
    """The first `limit` conversations of a split's file (0: all), in file order."""
    conversations = read_esconv(Path(esconv) / ESCONV_FILES[split], strategies)
    return conversations[:limit] if limit > 0 else conversations


def seeker_utterances(conversation: EsconvConversation, before: int | None = None) -> list[str]:
    """The seeker's utterances among the first `before` turns (all when None): the only text a
    persona may be inferred from."""
    return [t.text for t in conversation.turns[:before] if t.speaker == SEEKER]


def persona_points(conversation: EsconvConversation, every: int) -> list[int]:
    """Seeker-utterance counts after which a persona is inferred: every, 2·every, … (PAL starts at
    the 3rd seeker utterance), up to the last count a supporter turn can use."""
    if every < 1:
        raise PipelineInputError(f"params.yaml: param 'gen.persona_every' must be >= 1, got {every}")
    last_supporter = max((i for i, t in enumerate(conversation.turns) if t.speaker == SUPPORTER), default=0)
    usable = len(seeker_utterances(conversation, before=last_supporter))
    return list(range(every, usable + 1, every))


def persona_point(seeker_turns: int, every: int) -> int:
    """The latest inference point not after `seeker_turns` seeker utterances (0: none yet)."""
    return (seeker_turns // every) * every


def build_examples(
    conversations: Iterable[EsconvConversation],
    personas: Mapping[tuple[str, int], Sequence[str]] | None,
    context_turns: int,
    persona_every: int,
) -> list[SupportExample]:
    """One example per supporter turn that follows at least one seeker utterance.

    `personas` maps (conversation_id, seeker utterances seen) -> persona sentences, as cached by
    gen_personas; None builds examples without persona (the no-persona variant). A missing
    inference point is an error rather than a silent empty persona."""
    if context_turns < 1:
        raise PipelineInputError(f"params.yaml: param 'gen.context_turns' must be >= 1, got {context_turns}")
    examples = []
    for conversation in conversations:
        seeker_turns = 0
        for index, turn in enumerate(conversation.turns):
            if turn.speaker == SEEKER:
                seeker_turns += 1
                continue
            if seeker_turns == 0:
                continue  # an opening greeting has nothing to respond to
            point = persona_point(seeker_turns, persona_every) if personas is not None else 0
            persona: tuple[str, ...] = ()
            if point:
                key = (conversation.conversation_id, point)
                if key not in personas:
                    raise PipelineInputError(
                        f"gen personas: no persona for conversation {key[0]} after {point} seeker turns; "
                        "rerun gen_personas with the same 'gen.persona_every'")
                persona = tuple(personas[key])
            examples.append(SupportExample(
                conversation_id=conversation.conversation_id,
                turn_index=index,
                seeker_turns=seeker_turns,
                persona_turns=point,
                persona=persona,
                context=conversation.turns[max(0, index - context_turns):index],
                strategy=turn.strategy,
                response=turn.text,
            ))
    return examples


# ---------------------------------------------------------------------------------------------
# the examples of the gen stages: a split's subset with the personas of one source (gen_personas)


def load_personas(path: str | Path, source: str) -> dict[tuple[str, int], list[str]]:
    """(conversation_id, seeker_turns) -> persona sentences of one source (base | pess | …)."""
    rows = read_table(path, GEN_PERSONAS).to_pylist()
    personas = {(r["conversation_id"], r["seeker_turns"]): r["persona"] for r in rows if r["source"] == source}
    if not personas and rows:
        raise PipelineInputError(f"{path}: no personas of source {source!r}; it has {', '.join(sorted({r['source'] for r in rows}))}")
    return personas


def split_examples(esconv: str | Path, personas_path: str | Path, source: str, split: str, limit: int,
                   strategies: Sequence[str], context_turns: int, persona_every: int) -> list[SupportExample]:
    """The examples of a split's subset with the personas of `source` (none: no persona)."""
    conversations = load_split(esconv, split, strategies, limit)
    personas = None if source == NO_PERSONA else load_personas(personas_path, source)
    return build_examples(conversations, personas, context_turns, persona_every)
