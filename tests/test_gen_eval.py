import json
import math

import pyarrow.parquet as pq
import pytest

from flows.lib.config import load_params, out_path
from flows.lib.errors import PipelineInputError
from flows.lib.esconv_examples import SupportExample
from flows.lib.generator_eval import decoded_rows, likelihood_scores, other_personas, sample_rows, strategy_scores
from flows.lib.gen_params import decoding_settings, planned_source, planner_seeds, variant_settings
from gen_tiny import save_tiny_models, write_tiny_params
from models.generator import Turn

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on one thread (conftest)


def test_samples_come_from_turns_late_enough_for_a_persona():
    examples = [SupportExample("c", n, n, 0, (), (Turn("seeker", "x"),), "[Question]", "y") for n in range(1, 13)]
    chosen = [examples[n] for n in sample_rows(examples, 3, persona_every=3)]
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
    assert variants["oracle"] == {"persona": "select", "oracle_strategy": True}
    assert variants["none"]["persona"] == "none"
    assert decoding_settings(params, "beam").method == "beam" and decoding_settings(params).top_k == 10  # PAL's sampling
    params["gen"]["variants"]["bad"] = {"persona": "gold"}
    with pytest.raises(PipelineInputError, match="gen.variants.bad.persona must be one of gen.train.persona_sources"):
        variant_settings(params)
    assert planned_source(params) == "select"
    params["gen"]["planned"]["persona"] = "gold"
    with pytest.raises(PipelineInputError, match="gen.planned.persona must be one of gen.train.persona_sources"):
        planned_source(params)
    assert planner_seeds(params) == [13, 14, 15]
    for bad in ([], [13, 13], [13, "14"], [True]):
        params["gen"]["planner"]["seeds"] = bad
        with pytest.raises(PipelineInputError, match=r"^params.yaml: param 'gen.planner.seeds' must be distinct integers"):
            planner_seeds(params)


@pytest.mark.slow
def test_gen_flows_on_tiny_models(tmp_path, shared_data, monkeypatch):
    """gen_personas -> gen_references (-> strategy_planner) -> gen_train -> gen_eval as Prefect flows, from a tiny params file."""
    from flows.gen_eval import gen_eval_flow
    from flows.gen_personas import gen_personas_flow
    from flows.gen_references import gen_references_flow
    from flows.gen_train import gen_train_flow
    from flows.strategy_planner import strategy_planner_flow

    save_tiny_models(tmp_path, shared_data)
    params = load_params(write_tiny_params(tmp_path, shared_data))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PERSONAS_PARAMS", raising=False)

    gen_personas_flow()
    rows = pq.read_table(out_path(params, "gen_personas")).to_pylist()
    assert rows and {r["source"] for r in rows} == {"pess"} and {r["split"] for r in rows} == {"train", "test"}

    references = gen_references_flow()
    assert references["examples"]["val"] > 0 and references["classifier_val"]["C"] == 1.0
    assert (tmp_path / out_path(params, "gen_retriever")).exists()

    planned = strategy_planner_flow()  # the named stage of sweeps/dvc.yaml, beside the references it reads
    planner_metrics = json.loads((tmp_path / out_path(params, "strategy_planner_metrics")).read_text())
    test_turns = json.loads((tmp_path / out_path(params, "gen_reference_outputs")).read_text())
    assert planner_metrics["test"]["n"] == len(test_turns) == len(planner_metrics["predictions"])
    assert [p["gold"] for p in planner_metrics["predictions"]] == [r["gold"] for r in test_turns]
    assert planned["planner_minus_classifier"] == pytest.approx(
        planned["planner_strategy_acc"] - planned["classifier_strategy_acc"], abs=0.02)
    low, high = planner_metrics["val"]["strategy_acc_ci95"]
    assert planner_metrics["val"]["n"] > 0 and low <= planner_metrics["val"]["strategy_acc"] <= high
    planner_dir = tmp_path / out_path(params, "gen_planner_dir")
    assert set(planner_metrics["train"]) == set(planner_metrics["val"]["seeds_strategy_acc"]) == {"0", "1"}
    assert all(planner_metrics["train"][s]["steps"] == 2 and (planner_dir / f"seed-{s}" / "model.pt").exists() for s in ("0", "1"))

    models = gen_train_flow()
    assert set(models) == {"none", "pess"} and all((tmp_path / p).exists() for p in models.values())
    trained = json.loads((tmp_path / out_path(params, "gen_train_metrics")).read_text())["sources"]
    assert trained["pess"]["examples_with_persona"] > 0 and trained["none"]["examples_with_persona"] == 0
    assert (tmp_path / out_path(params, "gen_train_plot")).read_text().startswith("step,none,pess")

    gen_eval_flow()
    table = json.loads((tmp_path / out_path(params, "gen_eval_metrics")).read_text())
    reference_rows = json.loads((tmp_path / out_path(params, "gen_reference_outputs")).read_text())
    n = table["examples"]
    assert n == len(reference_rows)
    assert table["decoded"] == min(4, n)
    systems = table["systems"]
    assert set(systems) == {"majority", "prior", "classifier", "retrieval", "none", "pess", "oracle"}
    assert systems["oracle"]["strategy_acc"] is None
    for name, scores in systems.items():
        assert scores["examples"] == n
        if scores["strategy_acc"] is not None:
            low, high = scores["strategy_acc_ci95"]
            assert 0 <= low <= scores["strategy_acc"] <= high <= 100, name
    for name in ("retrieval", "none", "pess", "oracle"):  # the systems that write responses
        assert systems[name]["decoded"] == table["decoded"]
        assert all(0 <= systems[name]["pal"][k] <= 100 for k in ("bleu_1", "bleu_2", "rouge_l", "dist_2", "f1")), name
        assert 0 <= systems[name]["rouge_l"] <= 100
    assert systems["none"]["persona_nll_gain"] == 0 and systems["none"]["ppl_other_persona"] == systems["none"]["ppl"]
    assert systems["pess"]["persona_nll_gain"] == pytest.approx(
        math.log(systems["pess"]["ppl_other_persona"]) - math.log(systems["pess"]["ppl"]), abs=1e-3)
    predictions = table["predictions"]
    assert set(predictions["systems"]) == set(systems) - {"oracle"}
    assert all(len(p) == n for p in (predictions["gold"], *predictions["systems"].values()))
    gold = [predictions["strategies"][g] for g in predictions["gold"]]
    assert gold == [r["gold"] for r in reference_rows]  # every system is scored on the same supporter turns
    outputs = json.loads((tmp_path / out_path(params, "gen_dir") / "eval" / "pess.json").read_text())["outputs"]
    assert len(outputs) == n and sum(o["response"] is not None for o in outputs) == table["decoded"]
    samples = (tmp_path / out_path(params, "gen_samples")).read_text()
    assert samples.count("## Context") == 2 and samples.count("### oracle") == 2
    assert samples.count("1. **[") == 6 and samples.count("2. **[") == 6  # 2 samples x 3 variants x 2 contexts

    from flows.gen_planned import gen_planned_flow  # the named stage after strategy_planner

    planner_file = tmp_path / out_path(params, "strategy_planner_metrics")
    planner_file.rename(planner_file.with_suffix(".moved"))
    with pytest.raises(PipelineInputError, match=r"strategy_planner\.json: file not found; run the stage that writes it"):
        gen_planned_flow()
    planner_file.with_suffix(".moved").rename(planner_file)
    planned_scores = gen_planned_flow()
    planned = json.loads((tmp_path / out_path(params, "gen_planned_metrics")).read_text())
    plan = [p["planner"] for p in planner_metrics["predictions"]]
    strategies = planned["predictions"]["strategies"]
    assert [strategies[k] for k in planned["predictions"]["systems"]["planned"]] == plan  # the system's strategy is the plan
    assert planned_scores["strategy_acc"] == planner_metrics["test"]["planner_strategy_acc"]
    assert planned["systems"]["classifier"] == systems["classifier"] and planned["decoded"] == table["decoded"]
    kept = json.loads((tmp_path / out_path(params, "gen_planned_outputs")).read_text())
    decoded = [o for o in kept["outputs"] if o["response"] is not None]
    assert len(decoded) == table["decoded"] and all(isinstance(o["response"], str) for o in decoded)
    turns = [(p["conversation_id"], p["turn_index"]) for p in planner_metrics["predictions"]]
    assert kept["samples"] and all(  # the sampled responses follow the plan too
        sample["strategy"] == plan[turns.index((sample["example"]["conversation_id"], sample["example"]["turn_index"]))]
        for sample in kept["samples"])


def test_decoded_rows_spread_over_the_whole_split():
    assert decoded_rows(10, 0) == list(range(10)) and decoded_rows(10, 20) == list(range(10))
    rows = decoded_rows(100, 5)
    assert rows[0] == 0 and rows[-1] == 99 and len(rows) == 5


def test_strategy_and_likelihood_scores_with_intervals():
    gold = ["[Question]"] * 6 + ["[Others]"] * 4
    scores = strategy_scores(gold, ["[Question]"] * 10, n_resamples=200, seed=0)
    assert scores["strategy_acc"] == 60.0 and scores["strategy_acc_ci95"][0] <= 60.0 <= scores["strategy_acc_ci95"][1]
    # own NLL 1 nat/token, another persona's 1.5: the gain is 0.5 nats per token, weighted by tokens
    likelihood = likelihood_scores([2.0, 8.0], [3.0, 12.0], [2, 8], n_resamples=200, seed=0)
    assert likelihood["ppl"] == pytest.approx(math.e, abs=1e-4)
    assert likelihood["persona_nll_gain"] == pytest.approx(0.5, abs=1e-4)
    assert likelihood["persona_nll_gain_ci95"] == [0.5, 0.5]
