"""The grounded persona extractors: the extractive rule and the trained selector (real MiniLM,
fitted on 150 real Synthetic-Persona-Chat train examples, tuned on 50 val ones)."""
import pytest

from flows.lib.errors import PipelineInputError
from flows.lib.persona_extractive import ExtractiveExtractor, extractive_personas
from models.pess import normalise_sentence

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def corpus(shared_data):
    from flows.lib.persona_data import load_persona_examples

    files = [shared_data / "persona_chat" / f"Synthetic-Persona-Chat_{name}.csv" for name in ("valid", "test")]
    examples = load_persona_examples("synthetic", files, include_partner=True, seed=13, val=0.1, test=0.1)
    return {split: [e for e in examples if e.split == split] for split in ("train", "val")}


@pytest.fixture(scope="module")
def scorer():
    from models.pess import SentenceScorer

    return SentenceScorer()


@pytest.fixture(scope="module")
def selector(corpus, scorer):
    import torch

    from models.persona_selector import SelectorConfig, fit_selector

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fit_selector(corpus["train"][:150], corpus["val"][:50], scorer, SelectorConfig())
    finally:
        torch.set_num_threads(before)


def test_extractive_rule_keeps_self_statements_and_drops_questions_and_greetings():
    said = ["Hi!", "How are you?", "I work as a nurse.", "Me too!", "That sounds fun."]
    assert extractive_personas(said) == ["I work as a nurse."]
    assert ExtractiveExtractor().extract([said, []]) == [["I work as a nurse."], []]


def test_candidates_trim_fillers_and_split_clauses():
    from models.persona_selector import SelectorConfig, candidates

    texts = [c.text for c in candidates(["yeah, i love dogs", "I've never tried knitting, but I love cookies!"],
                                        SelectorConfig())]
    assert texts == ["I love dogs.", "I've never tried knitting, but I love cookies!", "I've never tried knitting.",
                     "I love cookies!"]
    said = ["I've never tried knitting, but I love cookies!"]
    whole = [c.text for c in candidates(said, SelectorConfig(clauses=False))]
    assert whole == ["I've never tried knitting, but I love cookies!"]


def test_every_selected_sentence_is_the_speakers_own_and_grounded(selector, corpus, scorer):
    from flows.lib.persona_data import speaker_sentences
    from models.persona_selector import grounded_candidates

    speakers = [list(e.own_turns) for e in corpus["val"][50:90]]
    personas = selector.extract(speakers)
    assert len(personas) == len(speakers) and sum(map(len, personas)) > 0
    for said, persona, allowed in zip(speakers, personas, grounded_candidates(speakers, scorer, selector.config)):
        assert len(persona) <= selector.choice.max_sentences
        spoken = " ".join(" ".join(said).lower().split())
        for sentence in persona:
            assert sentence in allowed
            assert normalise_sentence(sentence) in spoken  # the speaker's words, modulo trimming
    # grounded as the pipeline defines it: MiniLM cosine >= tau to one of the speaker's sentences
    for similarity in scorer.matrices([(speaker_sentences(said), persona) for said, persona in zip(speakers, personas)]):
        # (less 1e-4: a text encoded in another batch differs in the last float digits)
        assert similarity.size == 0 or (similarity.max(axis=0) >= selector.config.tau - 1e-4).all()


def test_selector_choice_is_on_the_grid_and_scored_on_val(selector):
    config, choice = selector.config, selector.choice
    assert choice.weight_decay in config.weight_decays and choice.threshold in config.thresholds
    assert 1 <= choice.epochs <= config.epochs
    assert choice.max_sentences in config.max_sentences_grid and choice.min_sentences in config.min_sentences_grid
    assert 0 < choice.val["similarity_f1"] <= 1


def test_save_load_roundtrip_extracts_the_same(selector, corpus, scorer, tmp_path):
    from models.persona_selector import PersonaSelector

    path = selector.save(tmp_path / "selector.pt")
    loaded = PersonaSelector.load(path, scorer)
    speakers = [list(e.own_turns) for e in corpus["val"][:20]]
    assert loaded.choice == selector.choice and loaded.config == selector.config
    assert loaded.extract(speakers) == selector.extract(speakers)


def test_a_checkpoint_of_another_kind_is_a_one_line_error(tmp_path):
    import torch

    from models.persona_selector import PersonaSelector
    from models.runtime import save_checkpoint

    path = save_checkpoint({"config": {"backbone": "tiny-bart"}, "model": {"w": torch.zeros(2)}}, tmp_path / "pess.pt")
    with pytest.raises(PipelineInputError) as error:
        PersonaSelector.load(path)
    message = str(error.value)
    assert str(path) in message and "persona-selector" in message and "\n" not in message
