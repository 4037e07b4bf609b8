"""How a stage becomes a restartable Prefect task: results persisted under PREFECT_HOME,
keyed on the task's inputs (paths *and* content hashes) and on its source code."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from prefect import task
from prefect.cache_policies import INPUTS, TASK_SOURCE

from flows.config import file_sha256


def stage_task(fn: Callable | None = None, *, retries: int = 1, **options: Any):
    """Decorate a stage's pure function as a cached, persisted, retried Prefect task."""

    def wrap(inner: Callable):
        return task(
            inner,
            name=inner.__name__,
            persist_result=True,
            cache_policy=INPUTS + TASK_SOURCE,
            retries=retries,
            retry_delay_seconds=2,
            **options,
        )

    return wrap(fn) if fn is not None else wrap


def fingerprint(*paths: str | Path) -> dict[str, str]:
    """Content hashes of input files (folders: of every file inside), so that the cache
    key changes when the data does even if the path does not."""
    hashes: dict[str, str] = {}
    for path in map(Path, paths):
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            hashes[str(file)] = file_sha256(file) if file.exists() else "missing"
    return hashes


def run_stage(stage: Any, outputs: list[str | Path], **kwargs: Any) -> Any:
    """Call a stage task; bypass its cached result when an output it promised is gone,
    as after `dvc repro` removes outs before rerunning a stage."""
    missing = any(not Path(out).exists() for out in outputs)
    return stage.with_options(refresh_cache=missing)(**kwargs)
