from collections import Counter

import pytest
from conftest import FIXTURES

from flows.lib.errors import PipelineInputError
from flows.lib.persona_data import (
    assign_splits,
    load_persona_examples,
    read_convai2,
    read_synthetic_persona_chat,
)

PESS_FIXTURES = FIXTURES / "pess"
HEADER = "user 1 personas,user 2 personas,Best Generated Conversation\n"


def test_synthetic_reader_parses_labels_continuations_and_skips_unlabelled(caplog):
    conversations = read_synthetic_persona_chat(PESS_FIXTURES / "synthetic_tiny.csv")
    assert len(conversations) == 5  # row 4 has no "User N:" label
    assert "row 4: no 'User N:' turns" in caplog.text
    first = conversations[0]
    assert first.personas == {"user 1": ("I have two dogs.", "I work as a nurse."),
                              "user 2": ("I love to bake cookies.", "I live in Paris.")}
    assert first.turns[2] == ("user 1", "Nice. I just walked my two dogs after a long shift at the hospital.")
    # markdown stars around the labels, blank lines and "* * *" rules
    assert [who for who, _ in conversations[1].turns] == ["user 1", "user 2", "user 1", "user 2"]
    assert conversations[2].turns[0] == ("user 1", "I ran twenty miles today.")
    assert len(conversations[2].turns) == 4


def test_two_examples_per_conversation_with_marked_partner_turns():
    examples = load_persona_examples("synthetic", [PESS_FIXTURES / "synthetic_tiny.csv"], True, 13, 0.2, 0.2)
    assert len(examples) == 10
    by_id = {e.example_id: e for e in examples}
    speaker_two = by_id["synthetic_tiny-0001/user2"]
    assert speaker_two.persona == "I love to bake cookies. I live in Paris."
    assert speaker_two.history.startswith("partner: Hi! How are you? self: Great, I just baked cookies.")
    own_only = load_persona_examples("synthetic", [PESS_FIXTURES / "synthetic_tiny.csv"], False, 13, 0.2, 0.2)
    assert {e.example_id: e.history for e in own_only}["synthetic_tiny-0001/user2"] == (
        "self: Great, I just baked cookies. self: Paris is lovely for walks.")
    # both speakers of a conversation share its split
    splits = {}
    for example in examples:
        assert splits.setdefault(example.conversation_id, example.split) == example.split
    assert Counter(splits.values()) == {"train": 3, "val": 1, "test": 1}


def test_split_is_seeded_and_by_conversation():
    ids = [f"c{n}" for n in range(100)]
    first, again, other = assign_splits(ids, 13, 0.1, 0.1), assign_splits(list(reversed(ids)), 13, 0.1, 0.1), assign_splits(ids, 14, 0.1, 0.1)
    assert first == again and first != other
    assert Counter(first.values()) == {"train": 80, "val": 10, "test": 10}
    with pytest.raises(PipelineInputError, match="pess.split"):
        assign_splits(ids, 13, 0.6, 0.5)


def test_real_synthetic_persona_chat(shared_data):
    folder = shared_data / "persona_chat"
    paths = [folder / "Synthetic-Persona-Chat_valid.csv", folder / "Synthetic-Persona-Chat_test.csv"]
    examples = load_persona_examples("synthetic", paths, True, 13, 0.1, 0.1)
    # 1,968 conversations, two of them without speaker labels (test rows 321 and 511)
    assert len({e.conversation_id for e in examples}) == 1966
    assert len(examples) == 2 * 1966
    assert all(e.persona and e.history for e in examples)


def test_missing_column_is_a_one_line_error(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text('user 1 personas,Best Generated Conversation\n"I ski.","User 1: hi"\n')
    with pytest.raises(PipelineInputError) as error:
        read_synthetic_persona_chat(path)
    assert str(error.value) == f"{path}: missing column 'user 2 personas'"


def test_empty_persona_names_file_and_row(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text(HEADER + '"I ski.","I read.","User 1: hi\nUser 2: hello"\n"I swim."," \n ","User 1: hi"\n')
    with pytest.raises(PipelineInputError) as error:
        read_synthetic_persona_chat(path)
    assert str(error.value) == f"{path}: row 2: empty 'user 2 personas'"


def test_convai2_self_original_sample(shared_data):
    conversations = read_convai2(shared_data / "persona_chat" / "BoB_sample_train_self_original_no_cands.txt")
    assert len(conversations) == 9
    assert conversations[0].personas["self"][0] == "i like to remodel homes."
    assert conversations[0].turns[:2] == (
        ("partner", "hi , how are you doing ? i'm getting ready to do some cheetah chasing to stay in shape ."),
        ("self", "you must be very fast . hunting is one of my favorite hobbies ."),
    )


def test_convai2_both_personas_give_two_examples_and_silence_is_dropped():
    conversations = read_convai2(PESS_FIXTURES / "convai2_both_tiny.txt")
    assert [sorted(c.personas) for c in conversations] == [["partner", "self"], ["self"]]
    assert conversations[1].turns[0] == ("self", "hi , i bake bread every morning .")
    examples = load_persona_examples("convai2", [PESS_FIXTURES / "convai2_both_tiny.txt"], True, 13, 0.0, 0.0)
    partner_view = {e.example_id: e for e in examples}["convai2_both_tiny-0000/partner"]
    assert partner_view.persona == "i am a doctor. i love jazz."
    assert partner_view.history.startswith("self: hello , do you ski ? partner: yes , i ski every winter .")


def test_convai2_bad_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("1 your persona: i ski.\n2 hello there\n")
    with pytest.raises(PipelineInputError, match=r"bad\.txt: line 2: expected 'partner utterance<TAB>own response'$"):
        read_convai2(path)


def test_unknown_corpus_names_the_param():
    with pytest.raises(PipelineInputError, match=r"param 'pess.corpus' is 'reddit'; valid: synthetic, convai2"):
        load_persona_examples("reddit", [], True, 13, 0.1, 0.1)
