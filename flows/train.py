"""Stage `train`: fit one AMN variant (params `amn.variant`, a preset of `amn.variants`) on the
dialogue snippets, early-stop on validation accuracy, and score the best epoch on the test split.

An example is one character with up to N_diag of its snippets from one split: training draws
them afresh every epoch, validation and test use one fixed seeded draw. Every epoch ends in an
atomic checkpoint (weights, optimizer, scheduler, RNG states, history), so a killed run restarts
where it stopped and ends with the same weights as an unbroken one.

Writes artifacts/amn/model.pt (best weights + config + vocab), artifacts/amn/checkpoints/,
metrics/train.json and the dvclive curves in dvclive/train."""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from prefect import flow
from tqdm.auto import tqdm

from flows import PROJECT_ROOT
from flows.lib.config import file_sha256, load_params, param, write_json
from flows.embed_descriptions import CACHE_PATH as DESCRIPTIONS_CACHE
from flows.embed_descriptions import load_description_embeddings
from flows.lib.errors import PipelineInputError
from flows.lib.live import open_live
from flows.lib.orchestration import fingerprint, run_stage, stage_task
from flows.lib.schemas import CHARACTERS, SNIPPETS, TROPES, read_table
from models.amn import AMN, ENCODERS, INPUTS, MEMORIES, STREAMS, TRIPLETS, AMNConfig
from models.runtime import load_checkpoint, pick_device, rng_state, save_checkpoint, seed_everything, set_rng_state
from models.vocab import Vocab, build_vocab, glove_embeddings

SPLITS = ("train", "val", "test")
SWITCHES = {"encoder": ENCODERS, "inputs": INPUTS, "triplet": TRIPLETS, "memory": MEMORIES}
OUT_DIR = Path("artifacts/amn")
METRICS_PATH = Path("metrics/train.json")
LIVE_DIR = Path("dvclive/train")
# The code a trained model depends on: part of every cache key and checkpoint identity.
SOURCE_FILES = [PROJECT_ROOT / f for f in ("flows/train.py", "models/amn.py", "models/memory.py", "models/vocab.py")]

log = logging.getLogger(__name__)


# --- data ----------------------------------------------------------------------------------
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


# --- metrics -------------------------------------------------------------------------------
def classification_metrics(y_true: list[int] | np.ndarray, y_pred: list[int] | np.ndarray) -> dict[str, float]:
    """Accuracy, support-weighted precision/recall/F1 (as the paper's Table 2) and macro-F1."""
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    precision, recall, f1, _ = precision_recall_fscore_support(y_true, y_pred, average="weighted", zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "f1_macro": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }


# --- settings ------------------------------------------------------------------------------
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


def _checked_fields(cls: type, values: dict[str, Any], where: str) -> dict[str, Any]:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise PipelineInputError(f"params.yaml: unknown key '{where}.{unknown[0]}'; valid: {', '.join(sorted(known))}")
    return values


def variant_options(params: dict[str, Any], variant: str | None = None) -> tuple[str, dict[str, Any]]:
    """(variant name, AMNConfig keyword arguments): the shared `amn.model` sizes plus the
    variant's switches from `amn.variants`. An unknown name lists the valid ones."""
    presets = param(params, "amn.variants", dict)
    name = variant or param(params, "amn.variant", str)
    if name not in presets:
        raise PipelineInputError(f"params.yaml: unknown AMN variant {name!r}; valid: {', '.join(presets)}")
    switches = _checked_fields(AMNConfig, dict(presets[name]), f"amn.variants.{name}")
    for key, allowed in SWITCHES.items():
        if str(switches.get(key, "")) not in allowed:
            raise PipelineInputError(
                f"params.yaml: amn.variants.{name}.{key} is {switches.get(key)!r}; valid: {', '.join(allowed)}"
            )
    sizes = _checked_fields(AMNConfig, dict(param(params, "amn.model", dict)), "amn.model")
    return name, {**sizes, **{k: (str(v) if k in SWITCHES else v) for k, v in switches.items()}}


def train_settings(params: dict[str, Any], seed: int | None = None) -> TrainSettings:
    settings = TrainSettings(**_checked_fields(TrainSettings, dict(param(params, "train", dict)), "train"))
    return settings if seed is None else dataclasses.replace(settings, seed=seed)


# --- training ------------------------------------------------------------------------------
def _batches(examples: list[tuple[int, np.ndarray]], picks: list[np.ndarray], order: np.ndarray, size: int) -> Iterator:
    for start in range(0, len(order), size):
        chosen = order[start : start + size]
        yield [picks[i] for i in chosen], [examples[i][0] for i in chosen]


def fixed_draw(examples: list[tuple[int, np.ndarray]], n_diag: int, eval_seed: int, split: str) -> list[np.ndarray]:
    rng = np.random.default_rng([eval_seed, SPLITS.index(split)])
    return [draw_snippets(rng, rows, n_diag) for _, rows in examples]


@torch.no_grad()
def evaluate(model: AMN, encoded, examples, picks, batch_size: int, device: torch.device) -> tuple[dict[str, float], float]:
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


def _autocast(device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


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


def _log_epoch(live, row: dict[str, float]) -> None:
    for name, value in row.items():
        if name != "epoch":
            live.log_metric(name, value)
    live.next_step()


def _cpu_state(model: AMN) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items()}


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
    run_key = hashlib.sha256(
        json.dumps(
            [data.fingerprint, hashlib.sha256(descriptions.tobytes()).hexdigest(), model_options,
             [file_sha256(path) for path in SOURCE_FILES],
             {k: v for k, v in dataclasses.asdict(settings).items() if k not in ("device", "threads")}],
            sort_keys=True,
        ).encode()
    ).hexdigest()

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

    encoded = encode_snippets(data, vocab, settings.max_tokens)
    examples = {split: data.examples(split) for split in SPLITS}
    fixed = {split: fixed_draw(examples[split], config.n_diag, settings.eval_seed, split) for split in ("val", "test")}
    steps_per_epoch = -(-len(examples["train"]) * settings.draws_per_epoch // settings.batch_size)
    live = open_live(Path(live_dir) if live_dir else None, state["history"], _log_epoch)
    bar = tqdm(total=settings.max_epochs * steps_per_epoch, initial=state["epoch"] * steps_per_epoch,
               desc=f"train {variant}", disable=not progress, leave=False)
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
        val, val_loss = evaluate(model, encoded, examples["val"], fixed["val"], settings.batch_size, device)
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

    model.load_state_dict(state["best_model"])
    test, _ = evaluate(model, encoded, examples["test"], fixed["test"], settings.batch_size, device)
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
         "model": state["best_model"], "variant": variant, "metrics": metrics},
        out_dir / "model.pt",
    )
    if live is not None:
        for name, value in test.items():
            live.log_metric(f"test/{name}", value, plot=False)
        live.end()
    return metrics


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[AMN, Vocab, list[str]]:
    """A trained AMN from model.pt, with its vocabulary and trope ids (class order)."""
    checkpoint = load_checkpoint(path, device)
    model = AMN(AMNConfig(**checkpoint["config"]))
    model.load_state_dict(checkpoint["model"])
    return model.to(device).eval(), Vocab(tuple(checkpoint["vocab"])), checkpoint["trope_ids"]


# --- stage ---------------------------------------------------------------------------------
def table_paths(params: dict[str, Any]) -> dict[str, str]:
    """The input tables of the trope stages; the snippets follow `data.source`."""
    return {"snippets_path": f"data/snippets_{param(params, 'data.source', str)}.parquet",
            "characters_path": "data/characters.parquet", "tropes_path": "data/tropes.parquet"}


def training_job(params: dict[str, Any], variant: str | None = None, seed: int | None = None) -> dict[str, Any]:
    """Everything one training run needs, as paths and plain values (what a Prefect task takes)."""
    name, options = variant_options(params, variant)
    return {
        **table_paths(params),
        "descriptions_cache": str(DESCRIPTIONS_CACHE),
        "embed_model": param(params, "embed.model", str),
        "variant": name,
        "model_options": options,
        "settings": dataclasses.asdict(train_settings(params, seed)),
    }


def job_fingerprint(job: dict[str, Any]) -> dict[str, str]:
    """Content hashes of a job's input files and of the model code, so that a Prefect cache key
    follows both."""
    inputs = (job["snippets_path"], job["characters_path"], job["tropes_path"], job["descriptions_cache"])
    return fingerprint(*inputs, *SOURCE_FILES)


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


@stage_task
def train_stage(
    job: dict[str, Any], inputs_hash: dict[str, str], out_dir: str, live_dir: str, metrics_path: str
) -> dict[str, Any]:
    metrics = run_training_job(**job, out_dir=out_dir, live_dir=live_dir)
    write_json(metrics, metrics_path)
    return metrics


@flow(name="train_flow")
def train_flow(variant: str | None = None, seed: int | None = None) -> dict[str, Any]:
    job = training_job(load_params(), variant, seed)
    return run_stage(
        train_stage,
        outputs=[OUT_DIR / "model.pt", METRICS_PATH],
        job=job,
        inputs_hash=job_fingerprint(job),
        out_dir=str(OUT_DIR),
        live_dir=str(LIVE_DIR),
        metrics_path=str(METRICS_PATH),
    )


# --- `personas train` ----------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variant", help="a preset of params.yaml amn.variants (default: amn.variant)")
    parser.add_argument("--seed", type=int, help="overrides train.seed")


def run(args: argparse.Namespace) -> int:
    variant_options(load_params(), args.variant)  # a bad name fails here, before Prefect starts
    metrics = train_flow(variant=args.variant, seed=args.seed)
    test = metrics["test"]
    print(f"{metrics['variant']} seed {metrics['seed']}: test accuracy {test['accuracy']:.3f}, "
          f"weighted F1 {test['f1']:.3f}, macro-F1 {test['f1_macro']:.3f} -> {METRICS_PATH}")
    return 0


if __name__ == "__main__":
    train_flow()
