import math
from dataclasses import replace

import pytest
import torch

from flows.lib.errors import PipelineInputError
from flows.lib.esconv_examples import SupportExample, build_examples, load_split
from flows.lib.generator_eval import length_ordered_scores
from models.generator import (CONTEXT_MARK, PERSONA_MARK, SEEKER, SUPPORTER, Decoding, GeneratorConfig, ResponseGenerator, Turn,
                              load_text_normaliser)
from models.runtime import load_checkpoint, save_checkpoint
from gen_tiny import SHORT_DECODING, strategies, tiny_generator

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on one thread (conftest)


@pytest.fixture(scope="module")
def generator(shared_data):
    return tiny_generator(shared_data).eval()  # no dropout: inference is deterministic


@pytest.fixture(scope="module")
def examples(shared_data):
    conversations = load_split(shared_data / "esconv", "test", strategies(shared_data), 2)
    return build_examples(conversations, None, context_turns=4, persona_every=3)


def example(persona=(), context=(Turn(SEEKER, "i lost my job"),), strategy="[Question]", response="how are you?"):
    return SupportExample("c", len(context), 1, 0, tuple(persona), tuple(context), strategy, response)


def test_strategy_tokens_are_added_as_single_special_tokens(generator):
    tokenizer = generator.tokenizer
    ids = generator.strategy_ids.tolist()
    assert len(set(ids)) == 8 and min(ids) >= tokenizer.vocab_size  # new ids, not WordPiece pieces
    for strategy, token_id in zip(generator.config.strategies, ids):
        assert tokenizer.tokenize(f"so {strategy} then") == ["so", strategy, "then"]
        assert tokenizer.convert_tokens_to_ids(strategy) == token_id
    assert generator.model.get_input_embeddings().num_embeddings == len(tokenizer)


def test_target_is_strategy_then_response_then_end(generator):
    target = generator.target_ids("[Self-disclosure]", "i once felt the same")
    assert target[0] == generator.tokenizer.convert_tokens_to_ids("[Self-disclosure]")
    assert target[-1] == generator.end_id and len(target) > 3
    long = generator.target_ids("[Question]", "why " * 100)
    assert len(long) == generator.config.max_target_len and long[-1] == generator.end_id
    labels = generator.labels([example(), example(response="ok")])  # [B, T], strategy first
    assert labels[:, 0].tolist() == [generator.strategy_id("[Question]")] * 2 and labels[1, 3:].eq(-100).all()
    with pytest.raises(PipelineInputError, match="unknown strategy 'Question'"):
        generator.target_ids("Question", "hi")


def test_source_holds_persona_then_the_latest_context_and_never_the_response(generator):
    context = tuple(Turn(SEEKER if n % 2 else SUPPORTER, f"turn{n} " + "words " * 6, "" if n % 2 else "[Question]")
                    for n in range(12))
    ids = generator.source_ids(["i have a dog.", "i am a nurse."], context)
    tokens = generator.tokenizer.convert_ids_to_tokens(ids)
    assert len(ids) == generator.config.max_source_len
    assert tokens[1] == PERSONA_MARK and tokens.count(PERSONA_MARK) == 2
    context_start = tokens.index(CONTEXT_MARK)
    assert "nurse" in tokens[:context_start]
    kept = generator.tokenizer.decode(ids[context_start + 1:])
    assert "turn11" in kept and "turn0 " not in kept  # cut from the left: the latest turns stay
    ex = example(persona=["i like tea."], response="zebra unicorn")
    decoded = generator.tokenizer.decode(generator.sources([ex])["input_ids"][0])
    assert "zebra" not in decoded and "tea" in decoded and "job" in decoded


def test_decoding_starts_with_the_predicted_strategy(generator, examples):
    batch = examples[:3]
    output = generator.decode_ids(batch, SHORT_DECODING)  # [B, 2 + new]
    assert output[:, 0].eq(generator.start_id).all()
    predicted = generator.strategy_ids[generator.strategy_logits(generator.sources(batch)).argmax(-1)]
    assert output[:, 1].tolist() == predicted.tolist()
    assert not torch.isin(output[:, 2:], generator.strategy_ids).any()  # one strategy, then words
    strategies, responses = generator.respond(batch, SHORT_DECODING)
    assert strategies == [generator.parse_strategy(row) for row in output.tolist()]
    assert all(len(r) == 1 and isinstance(r[0], str) for r in responses)


@pytest.mark.parametrize("method", ["beam", "nucleus"])
def test_oracle_forces_the_gold_strategy_as_decoder_prefix(generator, examples, method):
    batch = examples[:2]
    forced = ["[Information]", "[Others]"]
    decoding = replace(SHORT_DECODING, method=method, num_return_sequences=3)
    output = generator.decode_ids(batch, decoding, forced)  # [B * 3, 2 + new]
    assert output.shape[0] == 6
    assert [generator.parse_strategy(row) for row in output.tolist()] == ["[Information]"] * 3 + ["[Others]"] * 3
    strategies, responses = generator.respond(batch, decoding, forced)
    assert strategies == forced and [len(r) for r in responses] == [3, 3]


def test_parse_strategy(generator):
    question = generator.strategy_id("[Question]")
    assert generator.parse_strategy([generator.start_id, question, 2001]) == "[Question]"
    assert generator.parse_strategy([question, 2001]) == "[Question]"
    assert generator.parse_strategy([generator.start_id, 2001]) is None
    assert generator.parse_strategy([generator.start_id]) is None


def test_bad_decoding_method_names_the_param():
    with pytest.raises(PipelineInputError, match="gen.decoding.method"):
        Decoding(method="greedy")


def test_training_steps_lower_the_loss(shared_data, examples):
    model = tiny_generator(shared_data, seed=1)
    batch = examples[:4]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for _ in range(8):
        loss = model.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.5


def test_response_perplexity_counts_response_tokens_only(generator, examples):
    batch = examples[:2]
    nll, count, predicted = generator.score(batch)
    assert count == [len(generator.target_ids(e.strategy, e.response)) - 1 for e in batch]
    assert all(math.isfinite(x) and x > 0 for x in nll)
    alone, _, _ = generator.score(batch[:1])  # padding in a batch changes nothing
    assert alone[0] == pytest.approx(nll[0], rel=1e-4)
    first_step = generator.strategy_logits(generator.sources(batch)).argmax(-1).tolist()  # what decoding picks
    assert predicted == [generator.config.strategies[k] for k in first_step]


def test_length_ordered_scores_come_back_in_input_order(generator, examples):
    batch = examples[:7]
    assert len({len(generator.source_ids(e.persona, e.context)) for e in batch}) > 1  # the order changes something
    nll, tokens, strategies = length_ordered_scores(generator, batch, batch_size=3)
    for n, example in enumerate(batch):
        alone = generator.score([example])
        assert (tokens[n], strategies[n]) == (alone[1][0], alone[2][0])
        assert nll[n] == pytest.approx(alone[0][0], rel=1e-4)


def test_checkpoint_round_trip(generator, examples, tmp_path):
    path = save_checkpoint(generator.checkpoint(), tmp_path / "model.pt")
    restored = ResponseGenerator.from_checkpoint(load_checkpoint(path)).eval()  # weights_only=True
    assert restored.config == generator.config and isinstance(restored.config, GeneratorConfig)
    assert restored.strategy_ids.tolist() == generator.strategy_ids.tolist()
    sources = generator.sources(examples[:2])
    assert torch.equal(restored.strategy_logits(sources), generator.strategy_logits(sources))
    assert restored.respond(examples[:2], SHORT_DECODING) == generator.respond(examples[:2], SHORT_DECODING)


def test_text_normaliser_from_the_tokenizer_alone_matches_the_loaded_generator(shared_data, tmp_path):
    """gen_eval normalises references without building the model: same text as the whole generator's."""
    path = save_checkpoint(tiny_generator(shared_data).checkpoint(), tmp_path / "model.pt")
    conversations = load_split(shared_data / "esconv", "test", strategies(shared_data), 6)
    responses = [t.text for c in conversations for t in c.turns if t.speaker == SUPPORTER]
    responses.append("Café  NAÏVE [Question] <persona> so")  # accents, case, runs of spaces, added tokens
    normalise, loaded = load_text_normaliser(path), ResponseGenerator.load(path)
    normalised = [normalise(text) for text in responses]
    assert normalised == [loaded.as_decoded(text) for text in responses]
    assert normalised[-1] == "cafe naive so" and sum(n != r for n, r in zip(normalised, responses)) > len(responses) // 2
