"""CSV files with a header, the form DVC plots read (plots/confusion.csv, plots/per_trope.csv)."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from flows.lib.errors import PipelineInputError
from flows.lib.schemas import atomic_path


def write_csv(rows: list[dict[str, Any]], path: str | Path, columns: list[str]) -> Path:
    """Rows written atomically, in `columns` order."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows({column: row[column] for column in columns} for row in rows)
    return path


def read_csv(path: str | Path) -> list[dict[str, str]]:
    path = Path(path)
    if not path.exists():
        raise PipelineInputError(f"{path}: file not found; run the evaluate stage")
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
