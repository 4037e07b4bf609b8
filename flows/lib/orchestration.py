"""How a stage's library call becomes a Prefect task with retries.

DVC alone decides what reruns: `task_of` tasks keep no result cache. `stage_task` (persisted
results keyed on inputs and source) remains only for the Table 2 sweep on Dask, where a rerun
that skips finished (variant, seed) runs earns its cost; the crawl resumes from its own part
files (crawlers/resume.py)."""
from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from prefect import task
from prefect.cache_policies import INPUTS, NO_CACHE, CachePolicy

from flows.lib.config import file_sha256
from flows.lib.errors import PipelineInputError


@dataclass
class StageSource(CachePolicy):
    """Key on the whole file that defines the task, not only the task's own lines: a stage
    is one file, and an edit to a helper beside the task must invalidate its results too.
    A Dask worker gets the task function pickled by value, where `inspect.getsourcefile`
    answers '<dynamic-code>'; there the file comes from importing the module by name."""

    def compute_key(self, task_ctx: Any, inputs: Any, flow_parameters: Any, **kwargs: Any) -> str | None:
        if not task_ctx:
            return None
        fn = task_ctx.task.fn
        source = inspect.getsourcefile(fn)
        if not (source and Path(source).is_file()):
            source = importlib.import_module(fn.__module__).__file__
        return file_sha256(source)


def _retry_unless_bad_input(task: Any, task_run: Any, state: Any) -> bool:
    """Bad input fails the same way on every try; retry only what may be transient."""
    return not isinstance(state.data, PipelineInputError)


def task_of(fn: Callable, *, retries: int = 1, **options: Any):
    """`fn` as a Prefect task that retries what may be transient and caches nothing."""
    return task(
        fn,
        name=options.pop("name", fn.__name__),
        cache_policy=NO_CACHE,
        persist_result=False,
        retries=retries,
        retry_delay_seconds=2,
        retry_condition_fn=_retry_unless_bad_input,
        **options,
    )


def stage_task(fn: Callable | None = None, *, retries: int = 1, **options: Any):
    """Decorate a stage's pure function as a cached, persisted, retried Prefect task."""

    def wrap(inner: Callable):
        return task(
            inner,
            name=inner.__name__,
            persist_result=True,
            cache_policy=INPUTS + StageSource(),
            retries=retries,
            retry_delay_seconds=2,
            retry_condition_fn=_retry_unless_bad_input,
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


def refreshed_if_missing(stage: Any, outputs: list[str | Path]) -> Any:
    """`stage` set to bypass its cached result when an output it promised is gone (a sweep run
    whose folder was deleted must train again, not answer from the cache)."""
    return stage.with_options(refresh_cache=any(not Path(out).exists() for out in outputs))
