import numpy as np
import pytest
import torch

from flows.lib.persona_data import load_persona_examples
from gen_tiny import TINY_BACKBONE
from models.pess import (
    ExampleSets,
    PersonaExtractor,
    PessConfig,
    SentenceScorer,
    completeness_target,
    info_nce,
    persona_sentences,
    persona_text,
    similarity_sets,
    train_extractor,
)
from models.runtime import load_checkpoint, save_checkpoint
from models.trainer import TrainSettings, build_optimizer
from test_persona_data import PESS_FIXTURES

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on one thread (conftest)

TINY = dict(backbone="tiny-bart", max_source_len=64, max_target_len=24, max_sentence_len=12, **TINY_BACKBONE)


@pytest.fixture(scope="module")
def scorer():
    return SentenceScorer()


def tiny_extractor(seed: int = 0, **overrides) -> PersonaExtractor:
    torch.manual_seed(seed)
    return PersonaExtractor(PessConfig(**{**TINY, **overrides}))


def test_sentences_split_dedupe_and_round_trip():
    assert persona_sentences("i like dogs . I like dogs! my car is red\nI swim?") == ["i like dogs .", "my car is red", "I swim?"]
    sentences = ["I ski.", "My car is red", "I swim!"]
    assert persona_text(sentences) == "I ski. My car is red. I swim!"
    assert persona_sentences(persona_text(sentences)) == ["I ski.", "My car is red.", "I swim!"]


def test_similarity_sets_on_hand_written_sentences(scorer):
    gold = ["I have two dogs.", "I love to bake cookies.", "I am a teacher."]
    generated = ["I own two canines.", "My favorite color is blue.", "Baking cookies is my hobby."]
    [matrix] = scorer.matrices([(gold, generated)])
    # MiniLM cosines: dogs~canines 0.88, cookies~baking 0.80, everything else below 0.4
    assert matrix[0, 0] > 0.8 and matrix[1, 2] > 0.75 and np.delete(matrix.ravel(), [0, 5]).max() < 0.45
    sets = similarity_sets(matrix, tau=0.7)
    assert sets.consistent == [0, 2]
    assert sets.inconsistent == [1]
    assert sets.missing == [2]
    assert sets.best_match == [0, 2, -1]


def test_similarity_sets_threshold_is_inclusive_and_edges():
    matrix = np.array([[0.7, 0.2], [0.1, 0.69]])
    sets = similarity_sets(matrix, tau=0.7)
    assert (sets.consistent, sets.inconsistent, sets.missing, sets.best_match) == ([0], [1], [1], [0, -1])
    nothing_generated = similarity_sets(np.zeros((2, 0)), 0.7)
    assert nothing_generated.missing == [0, 1] and nothing_generated.best_match == [-1, -1]
    no_gold = similarity_sets(np.zeros((0, 3)), 0.7)
    assert no_gold.inconsistent == [0, 1, 2] and no_gold.consistent == []


def test_completeness_target_in_gold_order_without_duplicates():
    gold = ["A is true.", "B is true.", "C is true.", "D is true.", "d is TRUE"]
    generated = ["gen C.", "gen A and B.", "noise."]
    # gen 1 is the best match of A and B; gen 0 of C; D (and its repeat) are missing; noise matches nothing
    matrix = np.array([
        [0.1, 0.9, 0.0],
        [0.2, 0.8, 0.1],
        [0.95, 0.1, 0.0],
        [0.1, 0.2, 0.3],
        [0.1, 0.2, 0.3],
    ])
    sets = similarity_sets(matrix, tau=0.7)
    assert sets.consistent == [0, 1] and sets.inconsistent == [2] and sets.missing == [3, 4]
    assert completeness_target(gold, generated, sets) == ["gen A and B.", "gen C.", "D is true."]


def test_info_nce_falls_as_positives_move_closer():
    torch.manual_seed(0)
    anchors, far = torch.randn(4, 16), torch.randn(4, 16)
    negatives, mask = torch.randn(4, 3, 16), torch.tensor([[True] * 3, [True] * 3, [True, True, False], [True, False, False]])
    losses = [info_nce(anchors, (1 - t) * far + t * anchors, negatives, mask, 0.1).item() for t in (0.0, 0.5, 0.9, 1.0)]
    assert all(a > b for a, b in zip(losses, losses[1:]))
    # masked negatives do not count: a padded slot filled with the anchor itself changes nothing
    padded = negatives.clone()
    padded[3, 2] = anchors[3]
    assert info_nce(anchors, far, padded, mask, 0.1).item() == pytest.approx(losses[0])


def example_sets() -> list[ExampleSets]:
    """Two examples: one with an anchor and a negative, one with no negative (adds nothing)."""
    gold = ["i have two dogs.", "i am a nurse."]
    return [
        ExampleSets(gold, ["i own two dogs.", "i like pizza."], similarity_sets(np.array([[0.9, 0.1], [0.2, 0.3]]), 0.7)),
        ExampleSets(gold, ["i have two dogs."], similarity_sets(np.array([[1.0], [0.2]]), 0.7)),
    ]


def test_consistency_loss_reaches_the_extractor_parameters():
    extractor = tiny_extractor(lambda_completeness=0.0, lambda_consistency=1.0)
    losses = extractor.losses(["self: i walk my dogs after my shift.", "self: hello"], ["i have two dogs. i am a nurse."] * 2, example_sets())
    assert losses.stats["contrast_anchors"] == 1.0  # only the first example has a negative
    assert losses.consistency.item() > 0
    losses.consistency.backward()
    grads = {name: p.grad for name, p in extractor.named_parameters()}
    assert grads["model.model.encoder.layers.0.self_attn.q_proj.weight"].abs().sum() > 0
    assert grads["model.model.decoder.layers.0.fc1.weight"].abs().sum() > 0
    assert grads["model.model.shared.weight"].abs().sum() > 0


def test_losses_combine_with_lambdas_and_skip_examples_without_sets():
    extractor = tiny_extractor(lambda_completeness=0.5, lambda_consistency=0.25).eval()
    histories, golds = ["self: i walk my dogs.", "self: hi"], ["i have two dogs. i am a nurse."] * 2
    full = extractor.losses(histories, golds, example_sets())
    assert full.total.item() == pytest.approx(
        full.nll.item() + 0.5 * full.completeness.item() + 0.25 * full.consistency.item(), rel=1e-5)
    bare = extractor.losses(histories, golds, [None, None])
    assert bare.total.item() == pytest.approx(bare.nll.item()) and bare.completeness.item() == 0.0
    assert bare.nll.item() == pytest.approx(full.nll.item(), rel=1e-5)


def test_nll_on_shared_encoder_states_equals_the_plain_seq2seq_loss():
    """The losses reuse one encoder pass; it must be the pass generate() and HF's loss make."""
    extractor = tiny_extractor(seed=4).eval()
    histories, golds = ["self: i walk my dogs.", "self: i am a nurse at night, partner: cool"], ["i have dogs.", "i am a nurse."]
    sources = extractor.encode_sources(histories)
    labels = extractor.labels(golds)
    shared = extractor.nll(extractor.encoder_states(sources), sources["attention_mask"], labels)
    plain = extractor.model(**sources, labels=labels).loss
    assert shared.item() == pytest.approx(plain.item(), rel=1e-6)


def test_decoder_token_dropout_masks_teacher_forced_inputs_in_training_only():
    extractor = tiny_extractor(seed=4, decoder_token_dropout=0.999999)
    histories, golds = ["self: i walk my dogs.", "self: i am a nurse at night."], ["i have dogs.", "i am a nurse."]
    sources = extractor.encode_sources(histories)
    labels = extractor.labels(golds)
    with torch.no_grad():
        encoded = extractor.encoder_states(sources)
    masked_inputs = torch.full_like(labels, extractor.mask_id)  # every input after the start token masked
    masked_inputs[:, 0] = extractor.start_id
    masked_inputs[:, 1:] = masked_inputs[:, 1:].masked_fill(labels[:, :-1] == -100, extractor.pad_id)
    extractor.train()
    torch.manual_seed(0)
    torch.rand(labels.shape)  # what nll draws for its mask, so that both passes get the same model dropout
    all_masked = extractor.model(encoder_outputs=(encoded,), attention_mask=sources["attention_mask"],
                                 decoder_input_ids=masked_inputs, labels=labels).loss
    torch.manual_seed(0)
    trained = extractor.nll(encoded, sources["attention_mask"], labels)
    assert trained.item() == pytest.approx(all_masked.item(), rel=1e-6)
    extractor.eval()
    plain = extractor.model(encoder_outputs=(encoded,), attention_mask=sources["attention_mask"], labels=labels).loss
    assert extractor.nll(encoded, sources["attention_mask"], labels).item() == pytest.approx(plain.item(), rel=1e-6)
    assert plain.item() != pytest.approx(all_masked.item(), rel=1e-3)


def test_encoder_lr_scale_scales_or_freezes_the_encoder_only():
    extractor = tiny_extractor(seed=5)
    encoder, decoder = extractor.model.get_encoder(), extractor.model.get_decoder()
    shared = {id(w) for w in decoder.parameters()}  # BART: embeddings the decoder shares
    encoder_only = [w for w in encoder.parameters() if id(w) not in shared]
    halved = build_optimizer(extractor, TrainSettings(encoder_lr_scale=0.5))
    scaled = {id(w) for group in halved.param_groups if group["lr_scale"] == 0.5 for w in group["params"]}
    assert scaled == {id(w) for w in encoder_only} and encoder_only
    assert sum(len(g["params"]) for g in halved.param_groups) == len(list(extractor.parameters()))

    frozen = build_optimizer(extractor, TrainSettings(encoder_lr_scale=0.0, lr=1e-2))
    before = {name: w.detach().clone() for name, w in extractor.named_parameters()}
    loss = extractor.losses(["self: i walk my dogs."], ["i have dogs."], [None]).nll
    loss.backward()
    frozen.step()
    changed = {name for name, w in extractor.named_parameters() if not torch.equal(w, before[name])}
    encoder_names = {name for name, w in extractor.named_parameters() if any(w is e for e in encoder_only)}
    assert not changed & encoder_names and not any(w.requires_grad for w in encoder_only)
    assert any(name.startswith("model.model.decoder.") for name in changed)


def test_checkpoint_round_trip_loads_weights_only(tmp_path):
    extractor = tiny_extractor(seed=3).eval()
    path = save_checkpoint(extractor.checkpoint(), tmp_path / "model.pt")
    restored = PersonaExtractor.from_checkpoint(load_checkpoint(path)).eval()  # weights_only=True
    assert restored.config == extractor.config
    for (name, a), (_, b) in zip(extractor.state_dict().items(), restored.state_dict().items()):
        assert torch.equal(a, b), name
    histories = ["self: i walk my two dogs every morning."]
    assert restored.generate(histories, max_new_tokens=8) == extractor.generate(histories, max_new_tokens=8)


@pytest.mark.slow
def test_minilm_bert2bert_warm_start_and_checkpoint(tmp_path):
    extractor = PersonaExtractor(PessConfig(backbone="minilm-bert2bert", max_source_len=32, max_target_len=8))
    assert type(extractor.model.encoder).__name__ == "BertModel"
    assert extractor.model.decoder.config.is_decoder and extractor.model.decoder.config.add_cross_attention
    assert (extractor.start_id, extractor.eos_id, extractor.pad_id) == (101, 102, 0)  # [CLS] [SEP] [PAD]
    restored = PersonaExtractor.from_checkpoint(load_checkpoint(save_checkpoint(extractor.checkpoint(), tmp_path / "m.pt")))
    assert torch.equal(restored.model.decoder.bert.encoder.layer[0].crossattention.self.query.weight,
                       extractor.model.decoder.bert.encoder.layer[0].crossattention.self.query.weight)
    histories = ["self: i walk my two dogs every morning."]
    assert restored.eval().generate(histories, 4) == extractor.eval().generate(histories, 4)


def test_minilm_cross_attention_can_start_as_the_self_attention():
    copied = PersonaExtractor(PessConfig(backbone="minilm-bert2bert", cross_attention_init="self_attention"))
    for layer in copied.model.decoder.bert.encoder.layer:
        cross, own = layer.crossattention.state_dict(), layer.attention.state_dict()
        assert cross.keys() == own.keys() and all(torch.equal(cross[k], own[k]) for k in own)
    torch.manual_seed(0)
    random_start = PersonaExtractor(PessConfig(backbone="minilm-bert2bert"))
    layer = random_start.model.decoder.bert.encoder.layer[0]
    assert not torch.equal(layer.crossattention.self.query.weight, layer.attention.self.query.weight)


@pytest.mark.slow
def test_history_reliance_separates_an_extractor_that_reads_its_history():
    # four speakers whose persona is stated in their history: telling them apart needs the input
    histories = [f"self: i {fact} every day." for fact in ("bake cookies", "ride horses", "fix cars", "sing opera")]
    golds = [f"I {fact}." for fact in ("bake cookies", "ride horses", "fix cars", "sing opera")]
    extractor = tiny_extractor(seed=6)
    untrained = extractor.history_reliance(histories, golds, batch_size=3)
    optimizer = torch.optim.Adam(extractor.parameters(), lr=3e-3)
    for _ in range(150):
        loss = extractor.losses(histories, golds, [None] * 4).nll
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    trained = extractor.history_reliance(histories, golds, batch_size=3)
    assert trained["nll_own_history"] < 0.5 * untrained["nll_own_history"]
    assert trained["history_nll_gain"] > 0.5 > abs(untrained["history_nll_gain"])
    assert trained["history_nll_gain"] == pytest.approx(trained["nll_other_history"] - trained["nll_own_history"])
    assert extractor.training  # the diagnostic leaves the mode as it found it
    assert extractor.history_reliance(histories[:1], golds[:1], batch_size=3)["history_nll_gain"] == 0.0


def tiny_examples():
    return load_persona_examples("synthetic", [PESS_FIXTURES / "synthetic_tiny.csv"], True, 13, 0.0, 0.0)


@pytest.mark.slow
def test_a_few_steps_of_full_pess_lower_the_loss(tmp_path):
    examples = tiny_examples()
    config = PessConfig(**TINY, refresh_every=2)
    settings = TrainSettings(steps=30, batch_size=4, lr=3e-3, warmup_steps=2, seed=5, checkpoint_every=10, log_every=5, device="cpu")
    summary = train_extractor(examples, config, settings, tmp_path)
    assert summary["kept_sets"] > 0
    torch.manual_seed(settings.seed)
    untrained = PersonaExtractor(config).eval()  # the same initial weights as the run
    trained = PersonaExtractor.from_checkpoint(load_checkpoint(tmp_path / "model.pt")).eval()
    histories, golds = [e.history for e in examples], [e.persona for e in examples]
    with torch.no_grad():
        before = untrained.losses(histories, golds, [None] * len(examples)).nll.item()
        after = trained.losses(histories, golds, [None] * len(examples)).nll.item()
    assert after < 0.8 * before


@pytest.mark.slow
def test_interrupted_training_resumes_to_the_same_weights(tmp_path, monkeypatch):
    examples = tiny_examples()
    config = PessConfig(**TINY, refresh_every=2)
    settings = TrainSettings(steps=6, batch_size=4, lr=1e-3, warmup_steps=1, seed=2, checkpoint_every=2, log_every=3, device="cpu")
    unbroken = train_extractor(examples, config, settings, tmp_path / "a")

    calls = {"n": 0}
    real_losses = PersonaExtractor.losses

    def crash_on_fifth_step(self, *args):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt("killed")
        return real_losses(self, *args)

    monkeypatch.setattr(PersonaExtractor, "losses", crash_on_fifth_step)
    with pytest.raises(KeyboardInterrupt):
        train_extractor(examples, config, settings, tmp_path / "b")
    assert load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")["step"] == 4
    monkeypatch.setattr(PersonaExtractor, "losses", real_losses)
    resumed = train_extractor(examples, config, settings, tmp_path / "b")
    assert resumed["resumed_from"] == 4 and resumed["steps_this_run"] == 2
    assert resumed["final"] == unbroken["final"]
    a, b = load_checkpoint(tmp_path / "a" / "model.pt")["model"], load_checkpoint(tmp_path / "b" / "model.pt")["model"]
    assert all(torch.equal(a[name], b[name]) for name in a)
