"""data/narrative.json (stage narrative): its writer and reader, and who is who in it."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flows.lib.errors import PipelineInputError
from flows.lib.schemas import atomic_path


def person_tropes(characters: list[dict[str, Any]]) -> dict[str, list[str]]:
    """freebase id -> every trope the person is listed under (narrative.json characters)."""
    tropes: dict[str, list[str]] = {}
    for character in characters:
        tropes.setdefault(character["person"], []).append(character["trope"])
    return tropes


def write_narrative(payload: dict[str, Any], path: str | Path) -> Path:
    """Compact JSON, written atomically: the word weights would triple in size indented."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, separators=(",", ":"), sort_keys=True))
    return path


def read_narrative(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise PipelineInputError(f"{path}: file not found; run the narrative stage (python -m flows.narrative)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise PipelineInputError(f"{path}: not valid JSON ({error})") from error
