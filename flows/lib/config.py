"""params.yaml is the single home of every setting. Stages read their section here."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import yaml

from flows import PROJECT_ROOT
from flows.lib.errors import PipelineInputError
from flows.lib.schemas import atomic_path

PARAMS_FILE = "params.yaml"


def load_params(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Load params.yaml (from the working directory, where DVC runs stages)."""
    path = Path(path or os.environ.get("PERSONAS_PARAMS", PARAMS_FILE))
    if not path.exists():
        path = PROJECT_ROOT / PARAMS_FILE
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise PipelineInputError(f"{path}: not valid YAML ({error})") from error
    if not isinstance(params, dict):
        raise PipelineInputError(f"{path}: expected a mapping of sections")
    return params


def param(params: dict[str, Any], dotted: str, kind: type | tuple[type, ...] | None = None) -> Any:
    """Look up 'a.b.c' and check its type; a missing or mistyped value names the key."""
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise PipelineInputError(f"{PARAMS_FILE}: missing param '{dotted}'")
        node = node[part]
    if kind is not None and (not isinstance(node, kind) or (kind is int and isinstance(node, bool))):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise PipelineInputError(f"{PARAMS_FILE}: param '{dotted}' must be {expected}, got {node!r}")
    return node


def choice(params: dict[str, Any], dotted: str, allowed: list[str] | tuple[str, ...]) -> str:
    value = param(params, dotted, str)
    if value not in allowed:
        raise PipelineInputError(f"{PARAMS_FILE}: param '{dotted}' is {value!r}; valid: {', '.join(allowed)}")
    return value


def data_path(params: dict[str, Any], *parts: str) -> Path:
    """A file under the shared data folder named by `data.root` (relative to the project)."""
    root = Path(param(params, "data.root", str))
    if not root.is_absolute():
        root = Path.cwd() / root
    return root.joinpath(*parts)


def write_json(payload: Any, path: str | os.PathLike) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return path


def read_json(path: str | os.PathLike, required: bool = True) -> Any:
    """The JSON file another stage wrote; a one-line error naming it when it is missing or broken
    (None for a missing file that is not required)."""
    path = Path(path)
    if not path.exists():
        if required:
            raise PipelineInputError(f"{path}: file not found; run the stage that writes it first")
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise PipelineInputError(f"{path}: not valid JSON ({error})") from error


def json_sha256(payload: Any) -> str:
    """A content key of a JSON-able value (keys sorted): the identity of a run, a cache entry."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def out_path(params: dict[str, Any], key: str) -> Path:
    """The path `paths.<key>` of params.yaml: every file a stage writes is named there once."""
    return Path(param(params, f"paths.{key}", str))


def snippets_path(params: dict[str, Any], source: str | None = None) -> Path:
    """The snippet table of one dialogue source (default: `data.source`)."""
    source = source or param(params, "data.source", str)
    return out_path(params, "snippets_dir") / f"snippets_{source}.parquet"
