"""dvclive curves of the resumable training stages (train, pess_train)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable


def open_live(live_dir: str | Path | None, history: list[dict[str, float]],
              log_row: Callable[[Any, dict[str, float]], None]):
    """A fresh dvclive folder (None without one) with the rows already logged replayed from the
    checkpoint's history through `log_row`, the stage's own logger of one row, so a resumed
    run's curves equal an unbroken run's."""
    if live_dir is None:
        return None
    from dvclive import Live

    live = Live(str(live_dir), resume=False, save_dvc_exp=False, dvcyaml=False)
    for row in history:
        log_row(live, row)
    return live
