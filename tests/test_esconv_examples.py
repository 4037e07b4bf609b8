import json
from collections import Counter

import pytest

from flows.lib.errors import PipelineInputError
from flows.lib.esconv_examples import (
    ESCONV_FILES,
    build_examples,
    conversation_from_dialog,
    load_split,
    load_strategies,
    persona_point,
    persona_points,
    read_esconv,
)
from flows.lib.persona_data import format_history
from models.generator import SEEKER, SUPPORTER

METADATA = {"emotion_type": "anxiety", "problem_type": "job crisis", "situation": "I may lose my job."}
# Every text carries a word of its own ("s7" is turn 7), so a leak is a plain substring test.
DIALOG = [
    {"speaker": "sys", "text": "hello s0", "strategy": "Question"},
    {"speaker": "usr", "text": "i feel low u1"},
    {"speaker": "sys", "text": "why s2", "strategy": "Question"},
    {"speaker": "usr", "text": "my job u3"},
    {"speaker": "usr", "text": "and my dog u4"},
    {"speaker": "sys", "text": "that sounds hard s5", "strategy": "Reflection of feelings"},
    {"speaker": "sys", "text": "i lost a job once s6", "strategy": "Self-disclosure"},
    {"speaker": "usr", "text": "really u7"},
    {"speaker": "sys", "text": "try a walk s8", "strategy": "Providing Suggestions"},
    {"speaker": "usr", "text": "ok u9"},
    {"speaker": "usr", "text": "maybe u10"},
    {"speaker": "usr", "text": "thanks u11"},
    {"speaker": "sys", "text": "you are welcome s12", "strategy": "Others"},
]


@pytest.fixture(scope="module")
def strategies(shared_data):
    return load_strategies(shared_data / "esconv" / "strategy.json")


@pytest.fixture(scope="module")
def conversation(strategies):
    return conversation_from_dialog("esconv-test-0000", "test", DIALOG, strategies, "fixture")


def test_one_example_per_supporter_turn_that_follows_a_seeker_turn(conversation):
    examples = build_examples([conversation], None, context_turns=3, persona_every=3)
    assert [e.turn_index for e in examples] == [2, 5, 6, 8, 12]  # the opening greeting has no context
    assert [e.seeker_turns for e in examples] == [1, 3, 3, 4, 7]
    assert [e.strategy for e in examples] == ["[Question]", "[Reflection of feelings]", "[Self-disclosure]",
                                              "[Providing Suggestions]", "[Others]"]
    assert all(e.persona == () and e.persona_turns == 0 for e in examples)


@pytest.mark.parametrize("context_turns", [1, 2, 5, 50])
def test_context_is_the_last_turns_before_the_supporter_turn(conversation, context_turns):
    for example in build_examples([conversation], None, context_turns, persona_every=3):
        before = conversation.turns[: example.turn_index]
        assert example.context == before[-context_turns:]
        assert example.context[-1] == conversation.turns[example.turn_index - 1]
    sixth = build_examples([conversation], None, 2, 3)[2]  # a supporter turn right after another one
    assert [(t.speaker, t.strategy) for t in sixth.context] == [(SEEKER, ""), (SUPPORTER, "[Reflection of feelings]")]


def test_persona_is_the_latest_inferred_before_the_turn(conversation):
    assert persona_points(conversation, 3) == [3, 6]  # 7 seeker turns precede the last supporter turn
    assert persona_points(conversation, 2) == [2, 4, 6]
    assert [persona_point(n, 3) for n in (0, 2, 3, 5, 6, 7)] == [0, 0, 3, 3, 6, 6]
    personas = {("esconv-test-0000", 3): ["i have a job."], ("esconv-test-0000", 6): ["i have a dog."]}
    examples = build_examples([conversation], personas, context_turns=2, persona_every=3)
    assert [e.persona_turns for e in examples] == [0, 3, 3, 3, 6]
    assert [e.persona for e in examples] == [(), ("i have a job.",), ("i have a job.",), ("i have a job.",), ("i have a dog.",)]
    assert all(e.persona_turns <= e.seeker_turns for e in examples)


def test_a_missing_inference_point_is_an_error(conversation):
    with pytest.raises(PipelineInputError, match="after 6 seeker turns"):
        build_examples([conversation], {("esconv-test-0000", 3): ["x."]}, context_turns=2, persona_every=3)


def test_the_gold_response_never_enters_the_input(conversation):
    personas = {("esconv-test-0000", 3): ["p3."], ("esconv-test-0000", 6): ["p6."]}
    for example in build_examples([conversation], personas, context_turns=50, persona_every=3):
        own_word = example.response.split()[-1]  # s<index> of this turn
        assert own_word == f"s{example.turn_index}"
        inputs = " ".join([*example.persona, *(t.text for t in example.context)])
        assert own_word not in inputs.split()
        later = [t.text.split()[-1] for t in conversation.turns[example.turn_index + 1:]]
        assert not set(later) & set(inputs.split())


def test_real_esconv_test_split(shared_data, strategies):
    conversations = read_esconv(shared_data / "esconv" / "test.txt", strategies)
    assert len(conversations) == 195
    assert conversations[0].conversation_id == "esconv-test-0000" and conversations[0].split == "test"
    supporter = [t for c in conversations for t in c.turns if t.speaker == SUPPORTER]
    assert {t.strategy for t in supporter} == set(strategies)
    examples = build_examples(conversations[:20], None, context_turns=6, persona_every=3)
    assert examples and all(len(e.context) <= 6 and e.response == c.turns[e.turn_index].text
                            for e in examples for c in conversations[:20] if c.conversation_id == e.conversation_id)
    assert load_split(shared_data / "esconv", "test", strategies, 3) == conversations[:3]


def test_bad_files_name_file_line_and_field(tmp_path, strategies):
    broken = tmp_path / "test.txt"
    broken.write_text(json.dumps({**METADATA, "dialog": DIALOG}) + "\n{not json\n")
    with pytest.raises(PipelineInputError, match=r"test.txt: line 2: not JSON"):
        read_esconv(broken, strategies)
    unknown = [{"speaker": "usr", "text": "hi"}, {"speaker": "sys", "text": "yo", "strategy": "Shouting"}]
    broken.write_text(json.dumps({**METADATA, "dialog": unknown}) + "\n")
    with pytest.raises(PipelineInputError, match=r"line 1 turn 1 field 'strategy': unknown strategy 'Shouting'"):
        read_esconv(broken, strategies)
    broken.write_text(json.dumps({**METADATA, "dialog": [{"speaker": "bot", "text": "hi"}]}) + "\n")
    with pytest.raises(PipelineInputError, match=r"test\.txt: line 1 turn 0: field 'speaker' is 'bot', expected usr or sys$"):
        read_esconv(broken, strategies)
    broken.write_text('{"emotion_type": "anger", "dialog": []}\n')
    with pytest.raises(PipelineInputError, match=r"test\.txt: line 1: missing field 'problem_type'$"):
        read_esconv(broken, strategies)
    (tmp_path / "strategy.json").write_text('["Question"]')
    with pytest.raises(PipelineInputError, match="strategy.json"):
        load_strategies(tmp_path / "strategy.json")


def test_esconv_all_conversations(shared_data, strategies):
    conversations = [c for split in ESCONV_FILES for c in load_split(shared_data / "esconv", split, strategies)]
    assert len(conversations) == 1300
    assert Counter(c.split for c in conversations) == {"train": 910, "val": 195, "test": 195}
    assert conversations[0].conversation_id == "esconv-train-0000" and conversations[0].emotion_type == "anxiety"
    assert {t.speaker for c in conversations for t in c.turns} == {SEEKER, SUPPORTER}
    seeker_history = format_history([(t.speaker, t.text) for t in conversations[0].turns], SEEKER, include_partner=False)
    assert seeker_history.startswith("self: Hello good afternoon. self: I'm feeling anxious")
