import json
import math

import pyarrow.parquet as pq
import pytest

from flows.lib.config import load_params, out_path
from flows.lib.errors import PipelineInputError
from flows.lib.esconv_examples import SupportExample
from flows.lib.generator_eval import other_personas, sample_examples
from flows.lib.gen_params import decoding_settings, variant_settings
from gen_tiny import save_tiny_models, write_tiny_params
from models.generator import Turn

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on one thread (conftest)


def test_samples_come_from_turns_late_enough_for_a_persona():
    examples = [SupportExample("c", n, n, 0, (), (Turn("seeker", "x"),), "[Question]", "y") for n in range(1, 13)]
    chosen = sample_examples(examples, 3, persona_every=3)
    assert len(chosen) == 3 and all(e.seeker_turns >= 3 for e in chosen)
    assert len({e.turn_index for e in chosen}) == 3


def test_other_personas_come_from_half_the_list_away():
    examples = [SupportExample("c", n, n, 3, (f"i am person {n}.",), (Turn("seeker", "x"),), "[Question]", "y") for n in range(5)]
    swapped = other_personas(examples)
    assert [e.persona[0] for e in swapped] == [f"i am person {n}." for n in (2, 3, 4, 0, 1)]
    assert [(e.turn_index, e.response) for e in swapped] == [(e.turn_index, e.response) for e in examples]
    assert other_personas(examples[:1]) == examples[:1]


def test_params_yaml_variants_and_decoding():
    params = load_params()
    variants = variant_settings(params)
    assert variants["oracle"] == {"persona": "pess", "oracle_strategy": True}
    assert variants["none"]["persona"] == "none"
    assert decoding_settings(params, "nucleus").method == "nucleus"
    params["gen"]["variants"]["bad"] = {"persona": "gold"}
    with pytest.raises(PipelineInputError, match="gen.variants.bad.persona"):
        variant_settings(params)


@pytest.mark.slow
def test_gen_flows_on_tiny_models(tmp_path, shared_data, monkeypatch):
    """gen_personas -> gen_train -> gen_eval as Prefect flows, from a tiny params file."""
    from flows.gen_eval import gen_eval_flow
    from flows.gen_personas import gen_personas_flow
    from flows.gen_train import gen_train_flow

    save_tiny_models(tmp_path, shared_data)
    params = load_params(write_tiny_params(tmp_path, shared_data))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PERSONAS_PARAMS", raising=False)

    gen_personas_flow()
    rows = pq.read_table(out_path(params, "gen_personas")).to_pylist()
    assert rows and {r["source"] for r in rows} == {"pess"} and {r["split"] for r in rows} == {"train", "test"}

    models = gen_train_flow()
    assert set(models) == {"none", "pess"} and all((tmp_path / p).exists() for p in models.values())
    trained = json.loads((tmp_path / out_path(params, "gen_train_metrics")).read_text())["sources"]
    assert trained["pess"]["examples_with_persona"] > 0 and trained["none"]["examples_with_persona"] == 0
    assert (tmp_path / out_path(params, "gen_train_plot")).read_text().startswith("step,none,pess")

    gen_eval_flow()
    metrics = json.loads((tmp_path / out_path(params, "gen_eval_metrics")).read_text())["variants"]
    assert set(metrics) == {"none", "pess", "oracle"}
    assert metrics["oracle"]["strategy_acc"] is None and 0 <= metrics["pess"]["strategy_acc"] <= 100
    for scores in metrics.values():
        assert scores["examples"] == 4 and scores["ppl"] > 1
        assert all(0 <= scores[k] <= 100 for k in ("bleu_1", "bleu_2", "bleu_4", "rouge_l", "dist_1", "dist_2"))
        assert -100 <= scores["minilm_embedding_f1"] <= 100  # cosines: a random model's can be negative
    assert metrics["none"]["persona_nll_gain"] == 0 and metrics["none"]["ppl_other_persona"] == metrics["none"]["ppl"]
    assert metrics["pess"]["persona_nll_gain"] == pytest.approx(
        math.log(metrics["pess"]["ppl_other_persona"]) - math.log(metrics["pess"]["ppl"]), abs=1e-9)
    outputs = json.loads((tmp_path / out_path(params, "gen_dir") / "eval" / "pess.json").read_text())["outputs"]
    assert len(outputs) == 4 and set(outputs[0]) == {"strategy", "response", "gold_strategy", "gold"}
    samples = (tmp_path / out_path(params, "gen_samples")).read_text()
    assert samples.count("## Context") == 2 and samples.count("### oracle") == 2
    assert samples.count("1. **[") == 6 and samples.count("2. **[") == 6  # 2 samples x 3 variants x 2 contexts
