import io
import itertools

import pytest
import torch

from flows.lib.config import load_params
from flows.lib.amn_training import variant_options
from models.amn import (AMN, ENCODERS, INPUTS, MEMORIES, STREAMS, TRIPLETS, AMNConfig, AttentionPool,
                        SequenceEncoder, triplet_loss)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on one thread (conftest)

TINY = dict(vocab_size=40, n_tropes=5, desc_dim=12, embed_dim=10, hidden=8, attn_dim=4, proj_dim=6,
            rw_slots=16, rw_top_k=4, dropout=0.0)
SWITCH_GRID = list(itertools.product(ENCODERS, INPUTS, TRIPLETS, MEMORIES))


def tiny_model(seed: int = 0, **switches) -> AMN:
    torch.manual_seed(seed)
    model = AMN(AMNConfig(**{**TINY, **switches}))
    with torch.no_grad():
        model.descriptions.copy_(torch.nn.functional.normalize(torch.randn(5, 12), dim=-1))
    return model


def tiny_batch(batch: int = 3, n_diag: int = 4, steps: int = 7, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    tokens = {s: torch.randint(1, 40, (batch, n_diag, steps), generator=generator) for s in STREAMS}
    tokens["D"][:, :, 5:] = 0  # right padding
    tokens["E"][0] = 0  # a character without any context lines
    mask = torch.ones(batch, n_diag, dtype=torch.bool)
    mask[1, 2:] = False  # a character with only two snippets
    return tokens, mask, torch.tensor([0, 3, 4])[:batch]


@pytest.mark.parametrize("name", list(load_params()["amn"]["variants"]))
def test_every_table2_preset_builds_and_gives_shapes(name):
    _, options = variant_options(load_params(), name)
    switches = {k: options[k] for k in ("encoder", "inputs", "triplet", "memory", "n_diag")}
    model = tiny_model(**switches).train()
    tokens, mask, labels = tiny_batch(n_diag=switches["n_diag"])
    out = model(tokens, mask, labels)
    assert out.logits.shape == (3, 5) and out.z.shape == (3, 8)
    assert set(out.losses) == set(model.config.loss_names) and torch.isfinite(out.loss)


@pytest.mark.parametrize("encoder,inputs,triplet,memory", SWITCH_GRID)
def test_switches_combine_freely(encoder, inputs, triplet, memory):
    model = tiny_model(encoder=encoder, inputs=inputs, triplet=triplet, memory=memory)
    tokens, mask, labels = tiny_batch()
    out = model(tokens, mask, labels)
    out.loss.backward()
    assert out.logits.shape == (3, 5) and torch.isfinite(out.loss)
    assert model.classifier.weight.grad.abs().sum() > 0
    assert model.eval()(tokens, mask).loss is None  # no labels, no loss
    # beta: one weight per loss of this variant only, summing to 1
    expected = ["ce"] + ["triplet"] * (triplet != "none") + ["mem_rank", "mem_ce"] * (memory == "rw")
    assert list(model.config.loss_names) == expected == list(out.losses)
    assert model.beta.shape == (len(expected),)
    torch.testing.assert_close(model.beta.sum(), torch.tensor(1.0))


def test_beta_keeps_its_floor_and_sum():
    model = tiny_model(triplet="tropetrip", memory="rw")
    with torch.no_grad():
        model.beta_logits.copy_(torch.tensor([30.0, -30.0, -30.0, -30.0]))
    assert model.beta.min() >= model.config.beta_floor - 1e-6
    torch.testing.assert_close(model.beta.sum(), torch.tensor(1.0))


def test_padding_gets_zero_attention_and_changes_nothing():
    torch.manual_seed(0)
    encoder = SequenceEncoder(d_in=6, d_h=8, d_a=4)
    x = torch.randn(3, 5, 6)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], dtype=torch.bool)
    summary, alpha = encoder(x, mask)
    assert (alpha[~mask] == 0).all()
    torch.testing.assert_close(alpha.sum(1), torch.tensor([1.0, 1.0, 0.0]))
    assert (summary[2] == 0).all()  # nothing but padding
    noisy = x.clone()
    noisy[~mask] = 100.0  # whatever sits in padded steps is ignored, in both GRU directions
    torch.testing.assert_close(encoder(noisy, mask)[0], summary)
    trimmed, _ = encoder(x[:1, :3], mask[:1, :3])
    torch.testing.assert_close(trimmed, summary[:1])


def test_attention_pool_masks_before_softmax():
    pool = AttentionPool(4, 3)
    h = torch.randn(2, 6, 4)
    mask = torch.tensor([[1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    _, alpha = pool(h, mask)
    assert (alpha[0, 2:] == 0).all()
    torch.testing.assert_close(alpha.sum(1), torch.ones(2))


def test_padded_snippets_do_not_change_the_persona():
    model = tiny_model().eval()
    tokens, mask, _ = tiny_batch()
    z = model(tokens, mask).z
    extra = {s: torch.cat([t, torch.randint(1, 40, (3, 2, 7))], dim=1) for s, t in tokens.items()}
    extended = model(extra, torch.cat([mask, torch.zeros(3, 2, dtype=torch.bool)], dim=1)).z
    torch.testing.assert_close(extended, z)


def test_char_mode_uses_own_lines_only():
    model = tiny_model(inputs="char").eval()
    assert model.gamma.tolist() == [1.0, 0.0, 0.0]
    assert set(model.snippet_encoders) == {"D"}
    tokens, mask, _ = tiny_batch()
    changed = {**tokens, "E": torch.randint(1, 40, tokens["E"].shape), "O": torch.zeros_like(tokens["O"])}
    torch.testing.assert_close(model(changed, mask).logits, model(tokens, mask).logits)
    three = tiny_model(inputs="3")
    torch.testing.assert_close(three.gamma.sum(), torch.tensor(1.0))
    assert (three.gamma > 0).all()


def test_triplet_loss_hinges_on_the_hardest_negative():
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    anchor = torch.tensor([[1.0, 1.0]])  # cos: .707 to trope 0 and to trope 1, -.707 to trope 2
    assert triplet_loss(anchor, targets, torch.tensor([0]), torch.tensor(0.2)).item() == pytest.approx(0.2)
    assert triplet_loss(anchor, targets, torch.tensor([2]), torch.tensor(0.2)).item() == pytest.approx(1.614, abs=1e-3)


def test_margin_is_learnable_but_floored():
    model = tiny_model(triplet="tropetrip500", memory="ks")
    assert model.margin.item() == pytest.approx(model.config.margin_init)
    with torch.no_grad():
        model.margin_raw.fill_(-50.0)
    assert model.margin.item() >= model.config.margin_floor


def test_state_dict_round_trip_with_read_write_memory():
    model = tiny_model(triplet="tropetrip", memory="rw").train()
    tokens, mask, labels = tiny_batch()
    for _ in range(3):
        model(tokens, mask, labels)  # training reads write to the memory
    assert (model.memory.values >= 0).any()
    buffer = io.BytesIO()
    torch.save({"config": model.config.to_dict(), "model": model.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    restored = AMN(AMNConfig(**saved["config"]))
    restored.load_state_dict(saved["model"])
    for name, tensor in model.state_dict().items():
        assert torch.equal(restored.state_dict()[name], tensor), name
    torch.testing.assert_close(restored.eval()(tokens, mask).logits, model.eval()(tokens, mask).logits)


@pytest.mark.parametrize("memory", MEMORIES)
def test_a_few_steps_lower_the_loss(memory):
    model = tiny_model(triplet="tropetrip500", memory=memory).train()
    tokens, mask, labels = tiny_batch()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.02)
    losses = []
    for _ in range(25):
        out = model(tokens, mask, labels)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(out.losses["ce"].item())
    assert losses[-1] < 0.5 * losses[0]


def test_bad_switch_is_rejected():
    with pytest.raises(ValueError, match="memory='lstm'; valid: none, ks, rw"):
        AMNConfig(vocab_size=5, n_tropes=2, memory="lstm")
