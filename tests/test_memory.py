import io

import pytest
import torch

from models.memory import KnowledgeStore, ReadWriteMemory

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on one thread (conftest)


def hand_memory() -> ReadWriteMemory:
    """4 slots of 2-d keys, labels 0, 1, 2 and one empty slot; the query projection is the identity."""
    memory = ReadWriteMemory(d_in=2, n_classes=3, n_slots=4, key_dim=2, top_k=2, margin=0.1, age_noise=0.0)
    with torch.no_grad():
        memory.query.weight.copy_(torch.eye(2))
        memory.query.bias.zero_()
        memory.keys.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]))
        memory.values.copy_(torch.tensor([0, 1, 2, -1]))
        memory.ages.copy_(torch.tensor([3.0, 1.0, 5.0, 2.0]))
    return memory


def test_read_write_memory_hand_worked_example():
    memory = hand_memory().train()
    # Query 1, label 0: similarities (.8, .6, -.8, -.6); pool = slots 0 (label 0) and 1 (label 1).
    #   J_MR = max(0, .6 - .8 + .1) = 0; top-1 is right, so key 0 <- normalize((1, 0) + (.8, .6)).
    # Query 2, label 2: similarities (-.6, .8, .6, -.8); pool = slots 1 (label 1) and 2 (label 2).
    #   J_MR = max(0, .8 - .6 + .1) = .3; top-1 is wrong, so the oldest slot (2: age 5 + 1) is
    #   overwritten with (q, 2, age 0). Every other age grows by one.
    read = memory(torch.tensor([[0.8, 0.6], [-0.6, 0.8]]), torch.tensor([0, 2]))
    assert read.nearest.tolist() == [0, 1]
    assert read.rank_loss.item() == pytest.approx((0.0 + 0.3) / 2)
    expected_keys = torch.tensor([[1.8, 0.6], [0.0, 1.0], [-0.6, 0.8], [0.0, -1.0]])
    expected_keys[0] /= expected_keys[0].norm()
    torch.testing.assert_close(memory.keys, expected_keys)
    assert memory.values.tolist() == [0, 1, 2, -1]
    assert memory.ages.tolist() == [0.0, 2.0, 0.0, 3.0]


def test_read_weights_the_neighbours_labels():
    memory = hand_memory().eval()
    read = memory(torch.tensor([[0.8, 0.6]]), torch.tensor([0]))
    # softmax(t * (.8, .6)) over labels 0 and 1, with t = max(1, ln(0.2 * 2) / 0.1) = 1
    weights = torch.softmax(torch.tensor([0.8, 0.6]), 0)
    smoothed = (torch.tensor([weights[0], weights[1], 0.0]) + 1e-3) / (1 + 3e-3)
    torch.testing.assert_close(read.class_probs[0], smoothed)
    expected = weights[0] * memory.label_embed.weight[0] + weights[1] * memory.label_embed.weight[1]
    torch.testing.assert_close(read.z_hat[0], expected)


def test_eval_mode_and_missing_labels_never_write():
    memory = hand_memory().eval()
    before = {k: v.clone() for k, v in memory.state_dict().items()}
    memory(torch.tensor([[-0.6, 0.8]]), torch.tensor([2]))
    memory.train()(torch.tensor([[-0.6, 0.8]]))
    for name, tensor in memory.state_dict().items():
        assert torch.equal(tensor, before[name]), name


def test_rank_loss_trains_the_query_not_the_keys():
    memory = hand_memory().train()
    z = torch.tensor([[-0.6, 0.8]], requires_grad=True)
    memory(z, torch.tensor([2])).rank_loss.backward()
    assert memory.query.weight.grad.abs().sum() > 0 and z.grad.abs().sum() > 0
    assert not memory.keys.requires_grad


def test_state_dict_round_trip_keeps_keys_values_ages():
    torch.manual_seed(0)
    memory = ReadWriteMemory(d_in=6, n_classes=3, n_slots=8, key_dim=4, top_k=3).train()
    for _ in range(3):
        memory(torch.randn(5, 6), torch.randint(0, 3, (5,)))
    buffer = io.BytesIO()
    torch.save(memory.state_dict(), buffer)
    buffer.seek(0)
    restored = ReadWriteMemory(d_in=6, n_classes=3, n_slots=8, key_dim=4, top_k=3)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert {"keys", "values", "ages"} <= set(restored.state_dict())
    assert (restored.values >= 0).any()
    for name, tensor in memory.state_dict().items():
        assert torch.equal(restored.state_dict()[name], tensor), name
    query = torch.randn(2, 6)
    torch.testing.assert_close(restored.eval()(query).z_hat, memory.eval()(query).z_hat)


def test_knowledge_store_hops_read_from_the_keys():
    torch.manual_seed(0)
    store = KnowledgeStore(d_h=8, n_tropes=5, d_k=12, n_hops=3)
    keys = torch.nn.functional.normalize(torch.randn(5, 12), dim=-1)
    z_hat, match = store(torch.randn(4, 8), keys)
    assert z_hat.shape == (4, 8) and match.shape == (4, 5)
    torch.testing.assert_close(match.sum(-1), torch.ones(4))
    z = torch.randn(4, 8)
    assert not torch.allclose(store(z, keys)[0], store(z, keys.roll(1, 0))[0])
