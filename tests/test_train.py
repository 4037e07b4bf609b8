import argparse
import dataclasses
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from amn_tiny import TINY_MODEL, random_descriptions, tiny_settings, write_tiny_dataset

import flows.train as train_stage
from flows.lib.amn_inference import load_model
from flows.lib.amn_training import train_amn, variant_options
from flows.lib.config import load_params
from flows.lib.errors import PipelineInputError
from flows.lib.schemas import SNIPPETS, write_table
from flows.lib.trope_data import SPLITS, fixed_draw, load_trope_data
from models.runtime import load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on one thread (conftest)

KS_VARIANT = {**TINY_MODEL, "encoder": "attn", "inputs": "3", "triplet": "tropetrip500", "memory": "ks", "n_diag": 4}
RW_VARIANT = {**KS_VARIANT, "triplet": "tropetrip", "memory": "rw"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    paths = write_tiny_dataset(tmp_path_factory.mktemp("tiny"))
    return paths, load_trope_data(paths["snippets"], paths["characters"], paths["tropes"])


def test_unknown_variant_lists_the_valid_names():
    params = load_params()
    with pytest.raises(PipelineInputError) as error:
        variant_options(params, "attn4")
    message = str(error.value)
    assert "'attn4'" in message and "\n" not in message
    assert all(name in message for name in params["amn"]["variants"])
    parser = argparse.ArgumentParser()
    train_stage.add_arguments(parser)
    with pytest.raises(PipelineInputError, match="unknown AMN variant 'nope'; valid: baseline_char, "):
        train_stage.run(parser.parse_args(["--variant", "nope"]))


def test_bad_switch_or_key_in_a_preset_names_the_param():
    params = load_params()
    params["amn"]["variants"]["mine"] = {"encoder": "attn", "inputs": "3", "triplet": "none", "memory": "lstm",
                                         "n_diag": 4}
    with pytest.raises(PipelineInputError, match=r"amn\.variants\.mine\.memory is 'lstm'; valid: none, ks, rw"):
        variant_options(params, "mine")
    params["amn"]["model"]["hiden"] = 3
    with pytest.raises(PipelineInputError, match=r"unknown key 'amn\.model\.hiden'"):
        variant_options(params, "attn3")


def test_empty_snippets_table_is_a_one_line_error(tiny, tmp_path):
    paths, _ = tiny
    empty = write_table(pa.Table.from_pylist([], schema=SNIPPETS), tmp_path / "snippets.parquet", SNIPPETS)
    with pytest.raises(PipelineInputError, match=r"snippets\.parquet: no snippets$"):
        load_trope_data(empty, paths["characters"], paths["tropes"])


def test_snippets_of_unknown_characters_name_both_files(tiny, tmp_path):
    paths, _ = tiny
    rows = pa.Table.from_pylist([], schema=SNIPPETS).to_pylist() + [
        dict(snippet_id="x", char_id="/m/nobody|hero", movie="M", scene=0, D=["Hi."], E=[], O=[], split="train",
             source="screenplays")
    ]
    odd = write_table(pa.Table.from_pylist(rows, schema=SNIPPETS), tmp_path / "odd.parquet", SNIPPETS)
    with pytest.raises(PipelineInputError) as error:
        load_trope_data(odd, paths["characters"], paths["tropes"])
    assert str(error.value).startswith(f"{odd}: char_id '/m/nobody|hero' is not in {paths['characters']}")


def test_a_split_without_snippets_is_named(tiny, tmp_path):
    paths, _ = tiny
    table = pa.parquet.read_table(paths["snippets"])
    no_val = table.filter(pa.compute.not_equal(table["split"], "val"))
    path = write_table(no_val, tmp_path / "no_val.parquet", SNIPPETS)
    with pytest.raises(PipelineInputError, match=r"no_val\.parquet: no snippets in split 'val'"):
        load_trope_data(path, paths["characters"], paths["tropes"])


@pytest.mark.parametrize("unit", ["snippet", "character"])
def test_examples_follow_either_split_unit(tmp_path, unit):
    paths = write_tiny_dataset(tmp_path, chars_per_trope=3, unit=unit)
    data = load_trope_data(paths["snippets"], paths["characters"], paths["tropes"])
    examples = {split: data.examples(split) for split in SPLITS}
    for split, rows in examples.items():
        for label, snippet_rows in rows:
            assert (data.splits[snippet_rows] == split).all() and (data.labels[snippet_rows] == label).all()
    characters = {split: {data.char_ids[r[0]] for _, r in rows} for split, rows in examples.items()}
    if unit == "snippet":
        assert characters["train"] == characters["val"] == characters["test"]
    else:
        assert not (characters["train"] & characters["test"]) and not (characters["train"] & characters["val"])
    # the evaluation draw is fixed by its seed; training draws differ between epochs
    first = fixed_draw(examples["train"], 4, eval_seed=3, split="train")
    again = fixed_draw(examples["train"], 4, eval_seed=3, split="train")
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert all(len(p) == min(4, len(rows)) and (np.diff(p) > 0).all() for p, (_, rows) in zip(first, examples["train"]))


def test_tiny_training_writes_model_metrics_and_curves(tiny, tmp_path):
    _, data = tiny
    metrics = train_amn(data, random_descriptions(), RW_VARIANT, tiny_settings(max_epochs=3),
                        tmp_path / "out", tmp_path / "live", variant="tiny_rw", progress=False)
    assert set(metrics["test"]) == {"accuracy", "precision", "recall", "f1", "f1_macro"}
    assert metrics["examples"] == {"train": 8, "val": 8, "test": 8} and metrics["epochs"] == 3
    assert set(metrics["learned"]) >= {"gamma_D", "beta_ce", "beta_mem_rank", "beta_mem_ce", "margin"}
    trained = load_model(tmp_path / "out" / "model.pt")
    assert trained.trope_ids == data.trope_ids and len(trained.vocab) == trained.model.config.vocab_size
    assert (trained.model.memory.values >= 0).any()  # the Read-Write memory was written and saved
    checkpoint = load_checkpoint(tmp_path / "out" / "checkpoints" / "latest.pt")
    assert {"model", "optimizer", "scheduler", "rng", "config", "state"} <= set(checkpoint)
    assert len((tmp_path / "live" / "plots" / "metrics" / "val" / "accuracy.tsv").read_text().splitlines()) == 4


def test_a_checkpoint_of_another_run_is_not_resumed(tiny, tmp_path):
    _, data = tiny
    settings = tiny_settings(max_epochs=2)
    first = train_amn(data, random_descriptions(), KS_VARIANT, settings, tmp_path, progress=False)
    other = train_amn(data, random_descriptions(), KS_VARIANT, dataclasses.replace(settings, seed=1), tmp_path,
                      progress=False)
    assert other["seed"] == 1 and other["epochs"] == 2  # trained afresh, not "already done"
    again = train_amn(data, random_descriptions(), KS_VARIANT, settings, tmp_path / "b", progress=False)
    assert again == first  # same seed, same numbers


def test_progress_bar_on_a_terminal_only(tiny, tmp_path, monkeypatch, capfd):
    _, data = tiny
    train_amn(data, random_descriptions(), KS_VARIANT, tiny_settings(max_epochs=1), tmp_path / "log")
    assert "train custom" not in capfd.readouterr().err  # stderr is not a terminal here, as in a DVC log

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    train_amn(data, random_descriptions(), KS_VARIANT, tiny_settings(max_epochs=1), tmp_path / "terminal")
    assert "train custom" in terminal.getvalue()


RUN_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from amn_tiny import random_descriptions, tiny_settings
from flows.lib.amn_training import train_amn
from flows.lib.trope_data import load_trope_data
data = load_trope_data({snippets!r}, {characters!r}, {tropes!r})
train_amn(data, random_descriptions(), {options!r}, tiny_settings(max_epochs={epochs}), {out!r}, {live!r},
          progress=False)
"""


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights_and_metrics(tmp_path):
    paths = write_tiny_dataset(tmp_path / "data", chars_per_trope=6, snippets_per_split=(16, 3, 3))
    data = load_trope_data(paths["snippets"], paths["characters"], paths["tropes"])
    epochs = 6
    broken, unbroken = tmp_path / "broken", tmp_path / "unbroken"
    script = RUN_SCRIPT.format(tests=str(Path(__file__).parent), snippets=str(paths["snippets"]),
                               characters=str(paths["characters"]), tropes=str(paths["tropes"]), options=RW_VARIANT,
                               epochs=epochs, out=str(broken), live=str(broken / "live"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-c", script], env=env)
    checkpoint = broken / "checkpoints" / "latest.pt"
    deadline = time.time() + 120
    while not checkpoint.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)  # during the epoch after the first checkpoint
    process.wait()
    assert process.returncode == -signal.SIGKILL
    interrupted_at = load_checkpoint(checkpoint)["state"]["epoch"]
    print(f"killed after epoch {interrupted_at}")
    assert interrupted_at < epochs and not (broken / "model.pt").exists()

    resumed = train_amn(data, random_descriptions(), RW_VARIANT, tiny_settings(max_epochs=epochs), broken,
                        broken / "live", progress=False)
    straight = train_amn(data, random_descriptions(), RW_VARIANT, tiny_settings(max_epochs=epochs), unbroken,
                         unbroken / "live", progress=False)
    assert resumed == straight
    weights = [load_checkpoint(run / "model.pt")["model"] for run in (broken, unbroken)]
    assert weights[0].keys() == weights[1].keys()
    for name in weights[0]:
        assert torch.equal(weights[0][name], weights[1][name]), name
    for curve in ("train/loss.tsv", "val/accuracy.tsv"):
        assert (broken / "live/plots/metrics" / curve).read_text() == (unbroken / "live/plots/metrics" / curve).read_text()
