import csv

import pytest
import torch

import models.trainer as trainer
from flows.gen_train import write_loss_plot
from flows.lib.config import load_params
from flows.lib.errors import PipelineInputError
from flows.lib.esconv_examples import build_examples, load_split
from flows.lib.gen_params import gen_train_settings, generator_config, persona_sources
from models.generator import train_generator
from models.runtime import load_checkpoint
from models.trainer import TrainSettings
from gen_tiny import strategies, tiny_generator_config

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on one thread (conftest)


@pytest.fixture(scope="module")
def examples(shared_data):
    return build_examples(load_split(shared_data / "esconv", "train", strategies(shared_data), 1), None, 4, 3)


def settings(**overrides) -> TrainSettings:
    return TrainSettings(**{**dict(steps=4, batch_size=2, lr=1e-3, warmup_steps=1, weight_decay=0.01, grad_clip=1.0,
                                   seed=0, checkpoint_every=1, log_every=1, device="cpu"), **overrides})


@pytest.mark.slow
def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path, shared_data, examples, monkeypatch):
    config = tiny_generator_config(shared_data)
    straight = train_generator(examples, config, settings(), tmp_path / "a")
    assert straight["resumed_from"] == 0 and len(straight["history"]) == 4

    real_rate = trainer.learning_rate

    def killed_at_step_2(step, run_settings):
        if step == 2:
            raise KeyboardInterrupt
        return real_rate(step, run_settings)

    monkeypatch.setattr(trainer, "learning_rate", killed_at_step_2)
    with pytest.raises(KeyboardInterrupt):
        train_generator(examples, config, settings(), tmp_path / "b")
    assert load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")["step"] == 2 and not (tmp_path / "b" / "model.pt").exists()
    monkeypatch.setattr(trainer, "learning_rate", real_rate)
    resumed = train_generator(examples, config, settings(), tmp_path / "b")
    assert resumed["resumed_from"] == 2 and resumed["steps_this_run"] == 2
    assert resumed["history"] == straight["history"]
    a, b = load_checkpoint(tmp_path / "a" / "model.pt")["model"], load_checkpoint(tmp_path / "b" / "model.pt")["model"]
    assert all(torch.equal(a[name], b[name]) for name in a)

    other = train_generator(examples, config, settings(lr=5e-4), tmp_path / "b")
    assert other["resumed_from"] == 0  # a checkpoint of other settings is not resumed


def test_loss_plot_has_a_column_per_source(tmp_path):
    summaries = {"none": {"history": [{"step": 1, "loss": 3.0}, {"step": 2, "loss": 2.0}]},
                 "pess": {"history": [{"step": 2, "loss": 1.5}]}}
    write_loss_plot(summaries, tmp_path / "plot.csv")
    rows = list(csv.reader(open(tmp_path / "plot.csv")))
    assert rows == [["step", "none", "pess"], ["1", "3.0", ""], ["2", "2.0", "1.5"]]


def test_params_yaml_gen_section_builds_the_settings():
    params = load_params()
    config = generator_config(params)
    assert len(config.strategies) == 8 and config.backbone == params["pess"]["model"]["backbone"]
    assert gen_train_settings(params).steps == params["gen"]["train"]["steps"]
    assert persona_sources(params) == params["gen"]["train"]["persona_sources"]
    params["gen"]["train"]["persona_sources"] = ["none", "gold"]
    with pytest.raises(PipelineInputError, match="persona_sources has 'gold'"):
        persona_sources(params)
    params["gen"]["train"]["encoder_lr_scale"] = -1
    with pytest.raises(PipelineInputError, match=r"param 'gen.train.encoder_lr_scale' must be >= 0, got -1.0$"):
        gen_train_settings(params)
    params["gen"]["train"]["momentum"] = 0.9
    with pytest.raises(PipelineInputError, match="unknown keys under gen.train: momentum"):
        gen_train_settings(params)
