import csv
import json

import numpy as np
import pytest
import torch
from amn_tiny import TINY_MODEL
from eval_tiny import tiny_project

from flows.lib.config import load_params
from flows.lib.errors import PipelineInputError
from flows.lib.amn_inference import inference_settings, load_checked_model, run_model
from flows.lib.trope_data import encode_snippets, fixed_draw, load_trope_data
from models.amn import AMN, AMNConfig
from models.vocab import PAD_ID

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on one thread (conftest)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return tiny_project(tmp_path_factory)


def _random_batch(n_snippets=(3, 1), steps=7, vocab=40, seed=0):
    """tokens[s] [B, N, T] with ragged snippets and words, and the snippet mask [B, N]."""
    generator = torch.Generator().manual_seed(seed)
    batch, most = len(n_snippets), max(n_snippets)
    mask = torch.tensor([[i < n for i in range(most)] for n in n_snippets])
    tokens = {}
    for s, stream in enumerate("DEO"):
        ids = torch.randint(2, vocab, (batch, most, steps), generator=generator)
        lengths = torch.randint(1, steps + 1, (batch, most), generator=generator)
        ids[torch.arange(steps) >= lengths.unsqueeze(-1)] = PAD_ID
        if stream == "E":
            ids[0, 0] = PAD_ID  # a snippet without context lines
        tokens[stream] = ids * mask.unsqueeze(-1)
    return tokens, mask


@pytest.mark.parametrize("encoder", ["attn", "baseline"])
def test_attention_weights_are_distributions_over_real_snippets_and_words(encoder):
    torch.manual_seed(0)
    model = AMN(AMNConfig(vocab_size=40, n_tropes=4, **TINY_MODEL, encoder=encoder, n_diag=3)).eval()
    tokens, mask = _random_batch()
    weights = model.attention(tokens, mask)
    assert torch.allclose(weights["z"], model.encode(tokens, mask))  # the same pass as encode
    assert torch.allclose(weights["snippets"].sum(1), torch.ones(2)) and (weights["snippets"][~mask] == 0).all()
    if encoder == "baseline":  # no inter-snippet encoder: the masked mean
        assert torch.allclose(weights["snippets"][0], torch.full((3,), 1 / 3))
    for stream in "DEO":
        words = weights[f"words_{stream}"]  # [B, N, T]
        real = tokens[stream] != PAD_ID
        assert words.shape == tokens[stream].shape and (words[~real] == 0).all()
        totals = words.sum(-1)
        assert torch.allclose(totals[real.any(-1)], torch.ones(int(real.any(-1).sum())))
    # the hooks are gone: a plain forward afterwards is unchanged and records nothing
    assert all(not module._forward_hooks for module in model.modules())


@pytest.mark.slow
def test_evaluate_scores_the_same_draw_as_training(project):
    metrics = json.loads((project / "metrics" / "evaluate.json").read_text())
    trained = json.loads((project / "metrics" / "train.json").read_text())
    assert metrics["test"] == pytest.approx(trained["test"])  # same model, same fixed test draw
    assert metrics["variant"] == trained["variant"] and metrics["examples"] == trained["examples"]["test"]
    with open(project / "plots" / "confusion.csv", newline="") as handle:
        confusion = list(csv.DictReader(handle))
    assert len(confusion) == metrics["examples"]
    accuracy = np.mean([row["actual"] == row["predicted"] for row in confusion])
    assert accuracy == pytest.approx(metrics["test"]["accuracy"])
    with open(project / "plots" / "per_trope.csv", newline="") as handle:
        per_trope = {row["trope"]: row for row in csv.DictReader(handle)}
    assert sum(int(row["support"]) for row in per_trope.values()) == len(confusion)
    for trope, row in per_trope.items():
        mine = [r for r in confusion if r["actual"] == trope]
        recall = np.mean([r["predicted"] == trope for r in mine]) if mine else 0.0
        assert float(row["recall"]) == pytest.approx(recall)


@pytest.mark.slow
def test_run_model_keeps_example_order_and_per_example_attention(project):
    data = load_trope_data(project / "data" / "snippets_screenplays.parquet", project / "data" / "characters.parquet",
                           project / "data" / "tropes.parquet")
    trained = load_checked_model(project / "artifacts" / "amn" / "model.pt", data, torch.device("cpu"))
    model = trained.model
    encoded = encode_snippets(data, trained.vocab, 12)
    picks = fixed_draw(data.examples("test"), 4, 3, "test")
    together = run_model(model, encoded, picks, batch_size=5, device=torch.device("cpu"), attention=True)
    alone = [run_model(model, encoded, [pick], 1, torch.device("cpu")) for pick in picks]
    assert np.allclose(together.probs, np.concatenate([one.probs for one in alone]), atol=1e-5)
    assert np.allclose(together.z, np.concatenate([one.z for one in alone]), atol=1e-5)
    for pick, weights in zip(picks, together.attention):
        assert weights["snippets"].shape == (len(pick),) and weights["snippets"].sum() == pytest.approx(1, abs=1e-5)


@pytest.mark.slow
def test_a_model_trained_on_other_tropes_is_refused(project):
    data = load_trope_data(project / "data" / "snippets_screenplays.parquet", project / "data" / "characters.parquet",
                           project / "data" / "tropes.parquet")
    data.trope_ids = list(reversed(data.trope_ids))
    with pytest.raises(PipelineInputError, match=r"model\.pt: the model's tropes differ"):
        load_checked_model(project / "artifacts" / "amn" / "model.pt", data, torch.device("cpu"))


@pytest.mark.slow
def test_the_model_reads_snippets_as_it_was_trained(project):
    trained = load_checked_model(project / "artifacts" / "amn" / "model.pt", load_trope_data(
        project / "data" / "snippets_screenplays.parquet", project / "data" / "characters.parquet",
        project / "data" / "tropes.parquet"), torch.device("cpu"))
    settings = json.loads((project / "metrics" / "train.json").read_text())
    assert (trained.max_tokens, trained.eval_seed, trained.variant) == (12, 3, settings["variant"])


def test_inference_settings_read_the_inference_params():
    params = load_params()
    assert inference_settings(params) == params["inference"]
    params["inference"]["batch_size"] = 0
    with pytest.raises(PipelineInputError, match="inference.batch_size"):
        inference_settings(params)
