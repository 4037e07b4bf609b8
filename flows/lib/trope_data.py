"""The trope data every AMN stage reads: the snippet, character and trope tables joined into
one TropeData, and the helpers that turn it into model input (word ids, snippet draws, batches).

An example is one character with up to N_diag of its snippets from one split. Every draw is
seeded, and rows keep table order (story order), so the same seed gives the same batches."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flows.lib.config import file_sha256, out_path, snippets_path
from flows.lib.errors import PipelineInputError
from flows.lib.schemas import CHARACTERS, SNIPPETS, TROPES, read_table
from flows.lib.splits import SPLITS
from models.amn import STREAMS
from models.vocab import Vocab


@dataclass
class TropeData:
    """Snippets with their character's trope as a class id (tropes.parquet order)."""

    trope_ids: list[str]
    char_ids: list[str]  # per snippet
    splits: np.ndarray  # [n_snippets] str
    labels: np.ndarray  # [n_snippets] int64
    lines: dict[str, list[list[str]]]  # stream -> per snippet: D own lines, E context, O others' lines
    fingerprint: str  # content hash of the three tables

    def examples(self, split: str) -> list[tuple[int, np.ndarray]]:
        """(label, snippet rows in table order) per character with snippets in `split`,
        characters in char_id order."""
        rows_of: dict[str, list[int]] = {}
        for row in np.flatnonzero(self.splits == split):
            rows_of.setdefault(self.char_ids[row], []).append(int(row))
        return [(int(self.labels[rows[0]]), np.array(rows)) for _, rows in sorted(rows_of.items())]

    def characters(self) -> tuple[list[str], list[np.ndarray]]:
        """char_ids in sorted order and each one's snippet rows in table (story) order, all splits."""
        rows_of: dict[str, list[int]] = {}
        for row, char_id in enumerate(self.char_ids):
            rows_of.setdefault(char_id, []).append(row)
        char_ids = sorted(rows_of)
        return char_ids, [np.array(rows_of[char_id]) for char_id in char_ids]


def table_paths(params: dict[str, Any]) -> dict[str, Path]:
    """The three input tables of the trope stages (params `paths`); the snippets follow `data.source`."""
    return {"snippets_path": snippets_path(params), "characters_path": out_path(params, "characters"),
            "tropes_path": out_path(params, "tropes")}


def load_trope_data(snippets_path: str | Path, characters_path: str | Path, tropes_path: str | Path) -> TropeData:
    """Read and cross-check the three tables; any gap is a one-line error naming the file."""
    tropes = read_table(tropes_path, TROPES).column("trope").to_pylist()
    if not tropes:
        raise PipelineInputError(f"{tropes_path}: no tropes")
    class_of = {trope: i for i, trope in enumerate(tropes)}
    characters = read_table(characters_path, CHARACTERS).select(["char_id", "trope"]).to_pylist()
    trope_of = {row["char_id"]: row["trope"] for row in characters}
    unknown = sorted({t for t in trope_of.values() if t not in class_of})
    if unknown:
        raise PipelineInputError(f"{characters_path}: trope '{unknown[0]}' is not in {tropes_path} ({len(unknown)} such)")
    table = read_table(snippets_path, SNIPPETS)
    if table.num_rows == 0:
        raise PipelineInputError(f"{snippets_path}: no snippets")
    char_ids = table.column("char_id").to_pylist()
    missing = sorted({c for c in char_ids if c not in trope_of})
    if missing:
        raise PipelineInputError(
            f"{snippets_path}: char_id '{missing[0]}' is not in {characters_path} ({len(missing)} such characters)"
        )
    splits = np.array(table.column("split").to_pylist(), dtype=object)
    odd = sorted(set(splits) - set(SPLITS))
    if odd:
        raise PipelineInputError(f"{snippets_path}: column 'split' has value {odd[0]!r}; valid: {', '.join(SPLITS)}")
    for split in SPLITS:
        if not (splits == split).any():
            raise PipelineInputError(f"{snippets_path}: no snippets in split '{split}'")
    lines = {
        "D": table.column("D").to_pylist(),
        "E": table.column("E").to_pylist(),
        "O": [[line["text"] for line in others] for others in table.column("O").to_pylist()],
    }
    hashes = [file_sha256(p) for p in (snippets_path, characters_path, tropes_path)]
    return TropeData(
        trope_ids=tropes,
        char_ids=char_ids,
        splits=splits,
        labels=np.array([class_of[trope_of[c]] for c in char_ids], dtype=np.int64),
        lines=lines,
        fingerprint=hashlib.sha256("".join(hashes).encode()).hexdigest(),
    )


def unlabelled_snippets(lines: dict[str, list[list[str]]], trope_ids: list[str], name: str) -> TropeData:
    """One character's snippets that no table holds (a screenplay the model has not seen)."""
    count = len(lines["D"])
    return TropeData(trope_ids=trope_ids, char_ids=[name] * count, splits=np.array(["test"] * count),
                     labels=np.zeros(count, dtype=np.int64), lines=lines, fingerprint="")


def own_line_texts(data: TropeData, rows: list[np.ndarray]) -> list[list[str]]:
    """Per character: the own lines (D) of each of its snippets, one text per snippet."""
    return [[" ".join(data.lines["D"][row]) for row in picks] for picks in rows]


def encode_snippets(data: TropeData, vocab: Vocab, max_tokens: int) -> dict[str, np.ndarray]:
    """stream -> [n_snippets + 1, max_tokens] word ids, right-padded; the extra last row is all
    padding and stands in for missing snippets of characters with fewer than N_diag."""
    encoded = {}
    for stream in STREAMS:
        ids = np.zeros((len(data.char_ids) + 1, max_tokens), dtype=np.int64)
        for row, lines in enumerate(data.lines[stream]):
            words = vocab.encode(lines, max_tokens)
            ids[row, : len(words)] = words
        encoded[stream] = ids
    return encoded


def draw_snippets(rng: np.random.Generator, rows: np.ndarray, n_diag: int) -> np.ndarray:
    """n_diag of a character's snippets without replacement (all of them when it has fewer),
    kept in table order, i.e. story order."""
    if len(rows) <= n_diag:
        return rows
    return np.sort(rng.choice(rows, size=n_diag, replace=False))


def fixed_draw(examples: list[tuple[int, np.ndarray]], n_diag: int, eval_seed: int, split: str) -> list[np.ndarray]:
    """The one seeded draw of every example of `split` that validation and test read."""
    rng = np.random.default_rng([eval_seed, SPLITS.index(split)])
    return [draw_snippets(rng, rows, n_diag) for _, rows in examples]


def make_batch(
    encoded: dict[str, np.ndarray], picks: list[np.ndarray], labels: list[int], device: torch.device
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """-> tokens[s] [B, N, T], snippet_mask [B, N], labels [B]; N and T trimmed to what is used."""
    blank = len(encoded["D"]) - 1
    rows = np.full((len(picks), max(len(p) for p in picks)), blank)
    for i, pick in enumerate(picks):
        rows[i, : len(pick)] = pick
    tokens = {}
    for stream, ids in encoded.items():
        words = ids[rows]  # [B, N, T]
        used = max(1, int((words != 0).any(axis=(0, 1)).nonzero()[0].max(initial=0)) + 1)
        tokens[stream] = torch.from_numpy(words[:, :, :used]).to(device)
    return tokens, torch.from_numpy(rows != blank).to(device), torch.tensor(labels, device=device)
