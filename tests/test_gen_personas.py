import pyarrow.parquet as pq
import pytest

import flows.lib.persona_inference as persona_inference
from flows.lib.errors import PipelineInputError
from flows.lib.esconv_examples import build_examples, load_personas, load_split, persona_points
from flows.lib.persona_data import format_history
from flows.lib.persona_inference import history_windows, merged_persona, prefix_turns, write_gen_personas
from models.generator import SEEKER, SUPPORTER
from flows.lib.schemas import GEN_PERSONAS
from models.runtime import save_checkpoint
from gen_tiny import strategies, tiny_extractor

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on one thread (conftest)


@pytest.fixture(scope="module")
def extractor():
    return tiny_extractor().eval()


@pytest.fixture(scope="module")
def conversations(shared_data):
    return load_split(shared_data / "esconv", "train", strategies(shared_data), 3)


def test_prefix_stops_at_the_kth_seeker_turn(conversations):
    conversation = conversations[0]
    for k in persona_points(conversation, 3):
        prefix = prefix_turns(conversation, k)
        assert prefix[-1][0] == SEEKER and sum(who == SEEKER for who, _ in prefix) == k
        assert prefix == [(t.speaker, t.text) for t in conversation.turns[: len(prefix)]]
    with pytest.raises(PipelineInputError, match="fewer than 999 seeker turns"):
        prefix_turns(conversation, 999)


def test_the_persona_of_an_example_is_read_from_turns_before_it(conversations):
    points = {(c.conversation_id, k): ["x."] for c in conversations for k in persona_points(c, 3)}
    examples = build_examples(conversations, points, context_turns=6, persona_every=3)
    assert any(e.persona_turns for e in examples)
    by_id = {c.conversation_id: c for c in conversations}
    for example in examples:
        if example.persona_turns:
            assert len(prefix_turns(by_id[example.conversation_id], example.persona_turns)) <= example.turn_index


def test_windows_pack_whole_turns_of_the_prefix_into_the_extractor_input(extractor, conversations):
    turns = [(t.speaker, t.text) for t in conversations[0].turns[:20]]
    windows = history_windows(turns, extractor, include_partner=True)
    assert len(windows) > 1  # 20 turns do not fit 32 tokens
    full, position = format_history(turns, SEEKER, True), 0
    for window in windows:  # whole turns, in order, nothing else
        position = full.index(window, position) + len(window)
    assert all(any(f"self: {text}" in w for w in windows) for who, text in turns if who == SEEKER)
    budget = extractor.config.max_source_len - 2
    sizes = [len(extractor.tokenizer(w, add_special_tokens=False)["input_ids"]) for w in windows]
    single = [len(extractor.tokenizer(format_history([t], SEEKER, True), add_special_tokens=False)["input_ids"]) > budget
              for t in turns]
    assert all(size <= budget for size in sizes) or any(single)
    seeker_only = history_windows(turns, extractor, include_partner=False)
    assert all("partner:" not in w for w in seeker_only)
    assert history_windows([(SUPPORTER, "hello")], extractor, include_partner=True) == []


def test_merged_persona_keeps_first_occurrences():
    decoded = {"w1": ["i have a dog.", "i am tall."], "w2": ["I have a dog.", "i like tea."]}
    assert merged_persona(["w1", "w2"], decoded) == ["i have a dog.", "i am tall.", "i like tea."]


@pytest.mark.slow
def test_personas_at_every_point_and_resume_after_a_crash(tmp_path, shared_data, extractor, monkeypatch):
    checkpoint = save_checkpoint(extractor.checkpoint(), tmp_path / "extractor.pt")
    subset = [*load_split(shared_data / "esconv", "train", strategies(shared_data), 2),
              *load_split(shared_data / "esconv", "test", strategies(shared_data), 1)]
    arguments = dict(conversations=subset, extractors={"pess": str(checkpoint)}, every=3, include_partner=True,
                     batch_size=8, save_every=1, device="cpu", partial_path=str(tmp_path / "partial.pt"))
    real = persona_inference.conversation_personas
    calls = []

    def crash_on_second_chunk(chunk, *args):
        calls.append([c.conversation_id for c in chunk])
        if len(calls) == 2:
            raise RuntimeError("killed")
        return real(chunk, *args)

    monkeypatch.setattr(persona_inference, "conversation_personas", crash_on_second_chunk)
    with pytest.raises(RuntimeError, match="killed"):
        write_gen_personas(**arguments, out_path=str(tmp_path / "personas.parquet"))
    assert (tmp_path / "partial.pt").exists() and not (tmp_path / "personas.parquet").exists()
    out = write_gen_personas(**arguments, out_path=str(tmp_path / "personas.parquet"))
    assert calls == [["esconv-train-0000"], ["esconv-train-0001"], ["esconv-train-0001"], ["esconv-test-0000"]]
    assert not (tmp_path / "partial.pt").exists()

    table = pq.read_table(out)
    assert table.schema.equals(GEN_PERSONAS)
    rows = table.to_pylist()
    expected = [(c.conversation_id, c.split, k) for c in subset for k in persona_points(c, 3)]
    assert [(r["conversation_id"], r["split"], r["seeker_turns"]) for r in rows] == expected
    assert {r["source"] for r in rows} == {"pess"} and all(isinstance(r["persona"], list) for r in rows)
    fresh = write_gen_personas(**{**arguments, "partial_path": str(tmp_path / "other.pt")}, out_path=str(tmp_path / "again.parquet"))
    assert pq.read_table(fresh).to_pylist() == rows  # the resumed run wrote what an uninterrupted one writes
    personas = load_personas(out, "pess")
    assert set(personas) == {(cid, k) for cid, _, k in expected}
    with pytest.raises(PipelineInputError, match="no personas of source 'base'; it has pess"):
        load_personas(out, "base")


def test_an_own_lines_extractor_reads_only_the_seeker_utterances_so_far(conversations):
    from flows.lib.persona_data import speaker_sentences
    from flows.lib.persona_extractive import ExtractiveExtractor
    from flows.lib.persona_inference import conversation_personas

    rows = conversation_personas(conversations, ExtractiveExtractor(), 3, include_partner=True, batch_size=4)
    by_id = {c.conversation_id: c for c in conversations}
    assert [(r["conversation_id"], r["seeker_turns"]) for r in rows] == [
        (c.conversation_id, k) for c in conversations for k in persona_points(c, 3)]
    for row in rows:
        said = speaker_sentences([text for who, text in prefix_turns(by_id[row["conversation_id"]], row["seeker_turns"])
                                  if who == SEEKER])
        assert set(row["persona"]) <= set(said)  # grounded: the seeker's own sentences up to this point, nothing later
