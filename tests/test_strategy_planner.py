"""The strategy planner (models/strategy_planner.py) on real ESConv turns with the real MiniLM
encoder, and its scoring beside the references (flows/lib/strategy_planning.py)."""
import numpy as np
import pytest
import torch

from flows.lib.errors import PipelineInputError
from flows.lib.esconv_examples import SupportExample, build_examples, load_split, load_strategies
from flows.lib.strategy_planning import (STRATEGY_REFERENCES, mean_plan, planned_strategies, planner_scores,
                                         with_planned_strategies)
from models.generator import SUPPORTER, Turn
from models.runtime import load_checkpoint
from models.strategy_planner import TURN_MARK, PlannerConfig, StrategyPlanner, supporter_turn_number, train_planner
from models.trainer import TrainSettings, build_optimizer

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def esconv(shared_data):
    strategies = load_strategies(shared_data / "esconv" / "strategy.json")
    conversations = load_split(shared_data / "esconv", "train", strategies, 2)
    return strategies, build_examples(conversations, None, 8, 3), {c.conversation_id: c for c in conversations}


@pytest.fixture(scope="module")
def planner(esconv):
    torch.manual_seed(0)
    return StrategyPlanner(PlannerConfig(strategies=esconv[0], max_len=64))


def test_input_holds_the_turn_number_and_past_strategies_and_keeps_the_latest_tokens(esconv, planner):
    example = next(e for e in esconv[1] if sum(t.speaker == SUPPORTER for t in e.context) >= 2)
    ids = planner.input_ids(example)
    tokens = planner.tokenizer.convert_ids_to_tokens(ids)
    assert len(ids) <= 64 and ids[0] == planner.tokenizer.cls_token_id and ids[-1] == planner.tokenizer.sep_token_id
    latest = planner.tokenizer(example.context[-1].text, add_special_tokens=False)["input_ids"]
    assert ids[-1 - len(latest):-1] == latest[-(len(ids) - 2):]  # the latest turn's tokens end the input
    past = [t.strategy for t in example.context if t.speaker == SUPPORTER]
    kept = [t for t in tokens if t in esconv[0]]
    assert kept == past[len(past) - len(kept):]  # the latest strategies, in order
    long_planner_input = StrategyPlanner(PlannerConfig(strategies=esconv[0], max_len=512)).input_ids(example)
    assert planner.tokenizer.convert_ids_to_tokens(long_planner_input)[1] == TURN_MARK
    assert example.response not in planner.tokenizer.decode(long_planner_input)


def test_turn_numbers_count_the_supporter_turns_before(esconv):
    for example in esconv[1]:
        before = esconv[2][example.conversation_id].turns[:example.turn_index]
        assert supporter_turn_number(example) == 1 + sum(t.speaker == SUPPORTER for t in before)


def test_the_encoder_learns_at_its_scaled_rate_and_the_head_at_lr(planner):
    optimizer = build_optimizer(planner, TrainSettings(lr=1e-3, encoder_lr_scale=0.05))
    scales = {id(w): group["lr_scale"] for group in optimizer.param_groups for w in group["params"]}
    assert {scales[id(w)] for w in planner.model.parameters()} == {0.05}
    assert {scales[id(w)] for w in planner.head.parameters()} == {1.0}


@pytest.mark.slow
def test_training_lowers_the_loss_and_the_checkpoint_predicts_the_same(esconv, tmp_path):
    strategies, examples, _ = esconv
    batch = examples[:8]
    config = PlannerConfig(strategies=strategies, max_len=64)
    settings = TrainSettings(steps=12, batch_size=8, lr=1e-3, encoder_lr_scale=0.05, warmup_steps=1, seed=0,
                             checkpoint_every=6, log_every=1, device="cpu")
    summary = train_planner(batch, config, settings, tmp_path)
    losses = [row["loss"] for row in summary["history"]]
    assert losses[-1] < losses[0] / 2  # it fits 8 turns
    saved = load_checkpoint(tmp_path / "model.pt")
    assert saved["config"]["strategies"] == strategies
    planner = StrategyPlanner.load(tmp_path / "model.pt")  # rebuilt from its own config, no warm start
    assert all(torch.equal(weight, saved["model"][name]) for name, weight in planner.state_dict().items())
    gold = [e.strategy for e in batch]
    hits = sum(p == g for p, g in zip(planner.predict(batch), gold))
    assert hits > max(gold.count(s) for s in gold)  # better than the batch's own majority
    assert planner.predict(batch, batch_size=3) == planner.predict(batch)  # batching and ordering change nothing
    probabilities = planner.probabilities(batch)
    assert probabilities.shape == (8, len(strategies)) and np.allclose(probabilities.sum(1), 1, atol=1e-5)
    assert [strategies[k] for k in probabilities.argmax(1)] == planner.predict(batch)


def test_planners_plan_together_by_mean_probability():
    strategies = ["[Question]", "[Others]", "[Information]"]
    one = np.array([[0.5, 0.4, 0.1], [0.1, 0.2, 0.7]])
    two = np.array([[0.1, 0.35, 0.55], [0.2, 0.3, 0.5]])
    # the first turn: one alone picks [Question], two [Information], their mean [Others] (0.375)
    assert mean_plan([one, two], strategies) == ["[Others]", "[Information]"]
    assert mean_plan([one], strategies) == ["[Question]", "[Information]"]
    assert mean_plan([two], strategies) == ["[Information]", "[Information]"]


def rows(examples, **columns):
    return [{"conversation_id": e.conversation_id, "turn_index": e.turn_index, "gold": e.strategy,
             **{name: column[i] for name, column in columns.items()}} for i, e in enumerate(examples)]


def test_scores_are_paired_differences_from_each_reference(esconv):
    examples = esconv[1][:10]
    gold = [e.strategy for e in examples]
    wrong = [next(s for s in esconv[0] if s != g) for g in gold]
    half = gold[:5] + wrong[5:]
    references = {name: wrong for name in STRATEGY_REFERENCES} | {"classifier": half}
    scores = planner_scores(examples, gold, rows(examples, **references), 200, 0, "refs.json")
    assert scores["n"] == 10 and scores["planner_strategy_acc"] == 100 and scores["classifier_strategy_acc"] == 50
    assert scores["planner_minus_classifier"] == 50 and scores["planner_minus_majority"] == 100
    low, high = scores["planner_minus_classifier_ci95"]
    assert 0 < low <= 50 <= high <= 100
    assert np.isclose(scores["planner_minus_majority_ci95"], [100, 100]).all()


def test_reference_rows_of_other_turns_are_a_one_line_error(esconv):
    examples = esconv[1][:4]
    columns = {name: [e.strategy for e in examples] for name in STRATEGY_REFERENCES}
    with pytest.raises(PipelineInputError, match="refs.json: its turns are not the planner's test turns"):
        planner_scores(examples, [e.strategy for e in examples], rows(examples, **columns)[::-1], 10, 0, "refs.json")


def test_the_plan_must_cover_the_evaluated_turns_in_order():
    examples = [SupportExample("c", n, n, 1, (), (Turn("seeker", "x"),), "[Question]", "y") for n in (1, 3)]
    metrics = {"predictions": [{"conversation_id": "c", "turn_index": n, "gold": "[Question]", "planner": s}
                               for n, s in ((1, "[Others]"), (3, "[Question]"))]}
    assert planned_strategies(examples, metrics, "m.json") == ["[Others]", "[Question]"]
    with pytest.raises(PipelineInputError, match=r"^m\.json: its turns are not the evaluated turns"):
        planned_strategies(examples[::-1], metrics, "m.json")
    with pytest.raises(PipelineInputError, match=r"^m\.json: no 'predictions' list"):
        planned_strategies(examples, {"test": {}}, "m.json")
    result = {"outputs": [{"strategy": None, "response": "ok"}, {"strategy": None, "response": None}], "samples": []}
    assert [o["strategy"] for o in with_planned_strategies(result, ["[Others]", "[Question]"])["outputs"]] == ["[Others]", "[Question]"]
