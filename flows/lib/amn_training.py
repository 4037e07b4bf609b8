"""Training one AMN (models/amn.py) on trope data, nanoGPT style: settings dataclass, the
variant presets of params.yaml, the optimizer, and one loop that early-stops on validation
accuracy and scores the best epoch on the test split.

An example is one character with up to N_diag of its snippets from one split: training draws
them afresh every epoch, validation and test use one fixed seeded draw. Every epoch ends in an
atomic checkpoint (weights, optimizer, scheduler, RNG states, history), so a killed run restarts
where it stopped and ends with the same weights as an unbroken one. model.pt carries the config,
the vocabulary, the trope ids and how the model reads snippets (max_tokens, eval_seed)."""
from __future__ import annotations

import dataclasses
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from flows import PROJECT_ROOT
from flows.lib.config import PARAMS_FILE, file_sha256, json_sha256, out_path, param
from flows.lib.description_embeddings import load_description_embeddings
from flows.lib.errors import PipelineInputError
from flows.lib.live import open_live
from flows.lib.metrics import classification_metrics
from flows.lib.trope_data import SPLITS, TropeData, draw_snippets, encode_snippets, fixed_draw, load_trope_data, \
    make_batch, table_paths
from models.amn import AMN, ENCODERS, INPUTS, MEMORIES, STREAMS, TRIPLETS, AMNConfig
from models.runtime import load_checkpoint, pick_device, rng_state, save_checkpoint, seed_everything, set_rng_state
from models.vocab import build_vocab, glove_embeddings

SWITCHES = {"encoder": ENCODERS, "inputs": INPUTS, "triplet": TRIPLETS, "memory": MEMORIES}
# The code a trained model depends on: part of every run's identity (checkpoints, sweep cache).
SOURCE_FILES = [PROJECT_ROOT / f for f in ("flows/lib/amn_training.py", "flows/lib/trope_data.py", "models/amn.py",
                                           "models/memory.py", "models/vocab.py")]

log = logging.getLogger(__name__)


@dataclass
class TrainSettings:
    seed: int = 0
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 0.01
    max_epochs: int = 30
    patience: int = 8  # epochs without a better val accuracy before stopping
    draws_per_epoch: int = 1  # how often each training character is drawn per epoch
    max_tokens: int = 48  # T: words kept per stream of a snippet
    min_count: int = 2  # a training word needs this many occurrences to enter the vocabulary
    max_vocab: int = 20000
    grad_clip: float = 1.0
    eval_seed: int = 7  # the fixed draw of val/test snippets
    device: str = "auto"
    threads: int = 0  # torch CPU threads; 0 keeps torch's default


# --- settings from params.yaml (sections amn, train) ----------------------------------------
def _checked_fields(cls: type, values: dict[str, Any], where: str) -> dict[str, Any]:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise PipelineInputError(f"{PARAMS_FILE}: unknown key '{where}.{unknown[0]}'; valid: {', '.join(sorted(known))}")
    return values


def variant_options(params: dict[str, Any], variant: str | None = None) -> tuple[str, dict[str, Any]]:
    """(variant name, AMNConfig keyword arguments): the shared `amn.model` sizes plus the
    variant's switches from `amn.variants`. An unknown name lists the valid ones."""
    presets = param(params, "amn.variants", dict)
    name = variant or param(params, "amn.variant", str)
    if name not in presets:
        raise PipelineInputError(f"{PARAMS_FILE}: unknown AMN variant {name!r}; valid: {', '.join(presets)}")
    switches = _checked_fields(AMNConfig, dict(presets[name]), f"amn.variants.{name}")
    for key, allowed in SWITCHES.items():
        if str(switches.get(key, "")) not in allowed:
            raise PipelineInputError(
                f"{PARAMS_FILE}: amn.variants.{name}.{key} is {switches.get(key)!r}; valid: {', '.join(allowed)}"
            )
    sizes = _checked_fields(AMNConfig, dict(param(params, "amn.model", dict)), "amn.model")
    return name, {**sizes, **{k: (str(v) if k in SWITCHES else v) for k, v in switches.items()}}


def train_settings(params: dict[str, Any], seed: int | None = None) -> TrainSettings:
    settings = TrainSettings(**_checked_fields(TrainSettings, dict(param(params, "train", dict)), "train"))
    return settings if seed is None else dataclasses.replace(settings, seed=seed)


def training_job(params: dict[str, Any], variant: str | None = None, seed: int | None = None) -> dict[str, Any]:
    """Everything one training run needs, as paths and plain values (what a Prefect task takes)."""
    name, options = variant_options(params, variant)
    return {
        **{key: str(path) for key, path in table_paths(params).items()},
        "descriptions_cache": str(out_path(params, "description_embeddings")),
        "embed_model": param(params, "embed.model", str),
        "variant": name,
        "model_options": options,
        "settings": dataclasses.asdict(train_settings(params, seed)),
    }


def run_training_job(
    snippets_path: str, characters_path: str, tropes_path: str, descriptions_cache: str, embed_model: str,
    variant: str, model_options: dict[str, Any], settings: dict[str, Any],
    out_dir: str, live_dir: str | None = None, progress: bool = True,
) -> dict[str, Any]:
    """A training_job() run: load tables and description embeddings, train, return metrics."""
    data = load_trope_data(snippets_path, characters_path, tropes_path)
    trope_ids, descriptions = load_description_embeddings(tropes_path, descriptions_cache, embed_model)
    if list(trope_ids) != data.trope_ids:
        raise PipelineInputError(f"{descriptions_cache}: description embeddings are not in {tropes_path} order")
    return train_amn(data, descriptions, model_options, TrainSettings(**settings), out_dir, live_dir, variant, progress)


# --- the loop -------------------------------------------------------------------------------
def make_optimizer(model: AMN, settings: TrainSettings) -> torch.optim.AdamW:
    """Weight decay on matrices only (nanoGPT): not on biases, mixing logits or margins."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(
        [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": settings.weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ],
        lr=settings.lr,
    )


def _batches(examples: list[tuple[int, np.ndarray]], picks: list[np.ndarray], order: np.ndarray, size: int) -> Iterator:
    for start in range(0, len(order), size):
        chosen = order[start : start + size]
        yield [picks[i] for i in chosen], [examples[i][0] for i in chosen]


def _autocast(device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


@torch.no_grad()
def score_draws(model: AMN, encoded, examples, picks, batch_size: int, device: torch.device) -> tuple[dict[str, float], float]:
    """Metrics and mean loss of the model on fixed draws."""
    model.eval()
    predictions, total_loss = [], 0.0
    for batch_picks, labels in _batches(examples, picks, np.arange(len(examples)), batch_size):
        tokens, mask, target = make_batch(encoded, batch_picks, labels, device)
        with _autocast(device):
            out = model(tokens, mask, target)
        predictions += out.logits.argmax(-1).tolist()
        total_loss += out.loss.item() * len(labels)
    return classification_metrics([label for label, _ in examples], predictions), total_loss / len(examples)


def _log_epoch(live, row: dict[str, float]) -> None:
    for name, value in row.items():
        if name != "epoch":
            live.log_metric(name, value)
    live.next_step()


def _cpu_state(model: AMN) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items()}


def _run_key(data: TropeData, descriptions: np.ndarray, model_options: dict[str, Any], settings: TrainSettings) -> str:
    """Identity of a run: a checkpoint resumes only into the run that wrote it."""
    return json_sha256(
        [data.fingerprint, hashlib.sha256(descriptions.tobytes()).hexdigest(), model_options,
         [file_sha256(path) for path in SOURCE_FILES],
         {k: v for k, v in dataclasses.asdict(settings).items() if k not in ("device", "threads")}]
    )


def train_amn(
    data: TropeData,
    descriptions: np.ndarray,
    model_options: dict[str, Any],
    settings: TrainSettings,
    out_dir: str | Path,
    live_dir: str | Path | None = None,
    variant: str = "custom",
    progress: bool = True,
) -> dict[str, Any]:
    """Train one AMN; resume from out_dir/checkpoints/latest.pt when it belongs to the same run
    (same data, descriptions, options and settings). Writes out_dir/model.pt with the best
    weights and returns the metrics (test at the best val epoch, plus run details)."""
    out_dir = Path(out_dir)
    checkpoint_path = out_dir / "checkpoints" / "latest.pt"
    device = pick_device(settings.device)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    descriptions = np.asarray(descriptions, dtype=np.float32)
    if descriptions.shape[0] != len(data.trope_ids):
        raise PipelineInputError(
            f"description embeddings: {descriptions.shape[0]} rows for {len(data.trope_ids)} tropes"
        )
    run_key = _run_key(data, descriptions, model_options, settings)

    # model: vocabulary of the training split, GloVe-initialised embeddings, fixed descriptions
    seed_everything(settings.seed)
    train_rows = np.flatnonzero(data.splits == "train")
    vocab = build_vocab(
        (line for stream in STREAMS for row in train_rows for line in data.lines[stream][row]),
        settings.min_count,
        settings.max_vocab,
    )
    embeddings, glove_coverage = glove_embeddings(vocab, seed=settings.seed)
    config = AMNConfig(vocab_size=len(vocab), n_tropes=len(data.trope_ids), desc_dim=descriptions.shape[1], **model_options)
    model = AMN(config)
    with torch.no_grad():
        model.embed.weight.copy_(torch.from_numpy(embeddings))
        model.descriptions.copy_(torch.from_numpy(descriptions))
    model.to(device)
    optimizer = make_optimizer(model, settings)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, settings.max_epochs, eta_min=settings.lr * 0.05)

    # resume
    state: dict[str, Any] = {"epoch": 0, "best_accuracy": -1.0, "best_loss": float("inf"), "best_epoch": 0,
                             "best_model": _cpu_state(model), "history": [], "done": False}
    if checkpoint_path.exists():
        checkpoint = load_checkpoint(checkpoint_path, device)
        if checkpoint["run_key"] == run_key:
            model.load_state_dict(checkpoint["model"])
            optimizer.load_state_dict(checkpoint["optimizer"])
            scheduler.load_state_dict(checkpoint["scheduler"])
            set_rng_state(checkpoint["rng"])
            state = checkpoint["state"]
            log.info("resuming %s after epoch %d", checkpoint_path, state["epoch"])
        else:
            log.warning("%s belongs to another run; starting afresh", checkpoint_path)

    # data: word ids once, a fixed draw for val and test
    encoded = encode_snippets(data, vocab, settings.max_tokens)
    examples = {split: data.examples(split) for split in SPLITS}
    fixed = {split: fixed_draw(examples[split], config.n_diag, settings.eval_seed, split) for split in ("val", "test")}
    steps_per_epoch = -(-len(examples["train"]) * settings.draws_per_epoch // settings.batch_size)
    live = open_live(Path(live_dir) if live_dir else None, state["history"], _log_epoch)
    # disable=None: a bar on a terminal only, none in a log (dvc repro, a scheduled flow)
    bar = tqdm(total=settings.max_epochs * steps_per_epoch, initial=state["epoch"] * steps_per_epoch,
               desc=f"train {variant}", disable=None if progress else True, leave=False)
    while not state["done"]:
        model.train()
        # The draw depends on (seed, epoch) only, so a resumed epoch draws what the lost one did.
        rng = np.random.default_rng([settings.seed, state["epoch"]])
        order = np.concatenate([rng.permutation(len(examples["train"])) for _ in range(settings.draws_per_epoch)])
        picks = [draw_snippets(rng, rows, config.n_diag) for _, rows in examples["train"]]
        train_loss = 0.0
        for batch_picks, labels in _batches(examples["train"], picks, order, settings.batch_size):
            tokens, mask, target = make_batch(encoded, batch_picks, labels, device)
            with _autocast(device):
                out = model(tokens, mask, target)
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimizer.step()
            train_loss += out.loss.item() * len(labels)
            bar.update()
        scheduler.step()
        val, val_loss = score_draws(model, encoded, examples["val"], fixed["val"], settings.batch_size, device)
        state["epoch"] += 1
        # Early stopping on val accuracy; equal accuracy with a lower val loss also counts as better.
        if (val["accuracy"], -val_loss) > (state["best_accuracy"], -state["best_loss"]):
            state.update(best_accuracy=val["accuracy"], best_loss=val_loss, best_epoch=state["epoch"],
                         best_model=_cpu_state(model))
        row = {"epoch": state["epoch"], "train/loss": train_loss / len(order), "val/loss": val_loss,
               **{f"val/{k}": v for k, v in val.items()},
               **{f"learned/{k}": v for k, v in model.learned_weights().items()}}
        state["history"].append(row)
        state["done"] = state["epoch"] >= settings.max_epochs or state["epoch"] - state["best_epoch"] >= settings.patience
        save_checkpoint(
            {"run_key": run_key, "config": config.to_dict(), "vocab": list(vocab.tokens), "model": model.state_dict(),
             "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state(),
             "state": state},
            checkpoint_path,
        )
        if live is not None:
            _log_epoch(live, row)
        bar.set_postfix(loss=f"{row['train/loss']:.3f}", val_acc=f"{val['accuracy']:.3f}")
    bar.close()

    # the best epoch on the test split
    model.load_state_dict(state["best_model"])
    test, _ = score_draws(model, encoded, examples["test"], fixed["test"], settings.batch_size, device)
    metrics = {
        "variant": variant,
        "seed": settings.seed,
        "test": test,
        "val": next(row for row in state["history"] if row["epoch"] == state["best_epoch"]),
        "best_epoch": state["best_epoch"],
        "epochs": state["epoch"],
        "learned": model.learned_weights(),
        "examples": {split: len(examples[split]) for split in SPLITS},
        "vocab_size": len(vocab),
        "glove_coverage": round(glove_coverage, 4),
    }
    save_checkpoint(
        {"config": config.to_dict(), "vocab": list(vocab.tokens), "trope_ids": data.trope_ids,
         "reading": {"max_tokens": settings.max_tokens, "eval_seed": settings.eval_seed},
         "model": state["best_model"], "variant": variant, "metrics": metrics},
        out_dir / "model.pt",
    )
    if live is not None:
        for name, value in test.items():
            live.log_metric(f"test/{name}", value, plot=False)
        live.end()
    return metrics
