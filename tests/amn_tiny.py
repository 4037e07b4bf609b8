"""A tiny, learnable trope data set as real Parquet files (CHARACTERS, TROPES, SNIPPETS), and
tiny AMN/training settings, for the AMN, training, baseline and Table 2 tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from flows.lib.schemas import CHARACTERS, SNIPPETS, TROPES, write_table
from flows.lib.amn_training import TrainSettings

# Each trope's characters favour its own words; filler words are shared by everyone.
TROPE_WORDS = {
    "dumb_muscle": ["punch", "lift", "muscles", "gym", "smash", "strong"],
    "absent_minded_professor": ["equation", "theory", "experiment", "forgot", "laboratory", "formula"],
    "corrupt_corporate_executive": ["profit", "shares", "board", "merger", "contract", "money"],
    "loveable_rogue": ["heist", "charm", "steal", "darling", "escape", "trick"],
}
FILLER = ["the", "a", "you", "i", "we", "to", "and", "is", "it", "that", "what", "now", "here", "well"]


TINY_MODEL = {"embed_dim": 50, "hidden": 16, "attn_dim": 8, "dropout": 0.1, "proj_dim": 12, "n_hops": 1,
              "rw_slots": 32, "rw_top_k": 4}


def tiny_settings(**overrides) -> TrainSettings:
    base = dict(seed=0, batch_size=4, lr=0.01, max_epochs=3, patience=5, max_tokens=12, min_count=1,
                eval_seed=3, device="cpu", threads=1)
    return TrainSettings(**{**base, **overrides})


def _sentence(rng: np.random.Generator, words: list[str], length: int = 6) -> str:
    pool = words + FILLER
    weights = np.array([4.0] * len(words) + [1.0] * len(FILLER))
    chosen = rng.choice(pool, size=length, p=weights / weights.sum())
    return " ".join(chosen).capitalize() + "."


def write_tiny_dataset(
    folder: Path, chars_per_trope: int = 2, snippets_per_split: tuple[int, int, int] = (8, 3, 3),
    unit: str = "snippet", seed: int = 0,
) -> dict[str, Path]:
    """characters.parquet, tropes.parquet, snippets.parquet under `folder`. unit='snippet':
    every character has snippets in all three splits; unit='character': each character's
    snippets all lie in one split (the last two characters of every trope: val, test)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    tropes = list(TROPE_WORDS)
    trope_rows = [dict(trope=t, title=t.title().replace("_", ""), description=" ".join(TROPE_WORDS[t]),
                       description_kind="full", laconic="", url="", source="test") for t in tropes]
    characters, snippets = [], []
    for t_index, trope in enumerate(tropes):
        for c in range(chars_per_trope):
            char_id = f"/m/{t_index}{c}|{trope}"
            char_split = "train"
            if unit == "character" and c >= chars_per_trope - 2:  # needs chars_per_trope >= 3
                char_split = "val" if c == chars_per_trope - 2 else "test"
            characters.append(dict(char_id=char_id, trope=trope, character=f"Char {t_index}{c}",
                                   movie=f"Movie {t_index}", actor="", freebase_id=f"/m/{t_index}{c}",
                                   split=char_split))
            counts = dict(zip(("train", "val", "test"), snippets_per_split))
            splits = [s for s, n in counts.items() for _ in range(n)]
            if unit == "character":
                splits = [char_split] * sum(snippets_per_split)
            for k, split in enumerate(splits):
                context = [] if k % 3 == 0 else [_sentence(rng, [], 4)]  # some snippets have no context
                snippets.append(dict(
                    snippet_id=f"{char_id}#{k}", char_id=char_id, movie=f"Movie {t_index}", scene=k,
                    D=[_sentence(rng, TROPE_WORDS[trope]) for _ in range(1 + k % 2)],
                    E=context,
                    O=[dict(speaker="OTHER", text=_sentence(rng, TROPE_WORDS[trope][:2], 5))],
                    split=split, source="screenplays",
                ))
    return {
        "tropes": write_table(pa.Table.from_pylist(trope_rows), folder / "tropes.parquet", TROPES),
        "characters": write_table(pa.Table.from_pylist(characters), folder / "characters.parquet", CHARACTERS),
        "snippets": write_table(pa.Table.from_pylist(snippets), folder / "snippets.parquet", SNIPPETS),
    }


def random_descriptions(n_tropes: int = len(TROPE_WORDS), dim: int = 384, seed: int = 0) -> np.ndarray:
    """Unit-norm stand-ins for MiniLM description embeddings, float32 [n_tropes, dim]."""
    vectors = np.random.default_rng(seed).normal(size=(n_tropes, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def write_description_cache(tropes_path: Path, cache_path: Path, model: str = "all-MiniLM-L6-v2") -> Path:
    """An embed_descriptions cache (EMBEDDINGS schema) holding random_descriptions() for the
    tropes' descriptions, so flows.lib.description_embeddings.load_description_embeddings reads them."""
    from flows.lib.embedding_cache import text_sha256
    from flows.lib.schemas import EMBEDDINGS, TROPES, read_table

    texts = read_table(tropes_path, TROPES).column("description").to_pylist()
    vectors = random_descriptions(len(texts))
    rows = [dict(model=model, text_sha256=text_sha256(t), embedding=v.tolist()) for t, v in zip(texts, vectors)]
    return write_table(pa.Table.from_pylist(rows), cache_path, EMBEDDINGS)
