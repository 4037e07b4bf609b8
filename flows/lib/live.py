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


class TrainingCurves:
    """The history rows of models.trainer.train as dvclive metrics train/<name> at their step
    (a models.trainer.RowLog)."""

    def __init__(self, live_dir: str | Path):
        self.live_dir = live_dir
        self.live = None

    def start(self, history: list[dict[str, float]]) -> None:
        self.live = open_live(self.live_dir, history, _log_row)

    def log(self, row: dict[str, float]) -> None:
        _log_row(self.live, row)

    def end(self) -> None:
        self.live.end()


def _log_row(live, row: dict[str, float]) -> None:
    live.step = int(row["step"])
    for name, value in row.items():
        if name != "step":
            live.log_metric(f"train/{name}", value)
    live.make_summary()
