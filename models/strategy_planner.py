"""A strategy planner for PESS-GEN: which of the 8 ESConv strategies the supporter uses next.

The generator's own first decoding step predicts the strategy too, but after a few hundred
steps it is little better than the majority (benchmarks/RESULTS.md, issue 17). This model is
the strategy half alone: the MiniLM sentence encoder, fine-tuned end to end with a linear head.

Input (one supporter turn), right-truncated from the left so that the latest turns stay:

    [CLS] <supporter-turn> n  <seeker> text  <supporter> [Strategy] text  ...  [SEP]

where n is the supporter's turn number in the conversation (1 for the first reply; strategies
follow the conversation's stage) and each past supporter turn carries its gold strategy token,
as in PAL's and the generator's context. Nothing at or after the turn to plan enters the input.

    h = mean over tokens of MiniLM(input)      [B, 384]
    logits = W h + b                           [B, 8]      trained with cross-entropy

The encoder learns at lr * encoder_lr_scale, the head at lr (models/trainer.build_optimizer).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from flows.lib.errors import PipelineInputError
from models import trainer
from models.backbone import BackboneModule, right_padded
from models.generator import SPEAKER_MARKS, SupportCase, check_strategies, text_ids
from models.runtime import SENTENCE_MODEL, quiet_model_load, sentence_model_path

TURN_MARK = "<supporter-turn>"


class PlannedCase(SupportCase, Protocol):
    """What the planner reads of an example (flows.lib.esconv_examples.SupportExample)."""

    turn_index: int  # turns before this one in the conversation
    seeker_turns: int  # seeker turns among them


@dataclass
class PlannerConfig:
    sentence_model: str = SENTENCE_MODEL
    strategies: list[str] = field(default_factory=list)  # strategy tokens in strategy.json order
    max_len: int = 160  # input tokens, start and end included


def supporter_turn_number(example: PlannedCase) -> int:
    """1 for the supporter's first reply, 2 for the second, ..."""
    return example.turn_index - example.seeker_turns + 1


class StrategyPlanner(BackboneModule):
    config_class = PlannerConfig

    def __init__(self, config: PlannerConfig, model_config: dict[str, Any] | None = None):
        super().__init__()
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        check_strategies(config.strategies, "planner")
        self.config = config
        path = sentence_model_path(config.sentence_model)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        # added in a fixed order, so a checkpoint's token ids mean the same after a rebuild
        self.tokenizer.add_special_tokens({"additional_special_tokens": [TURN_MARK, *SPEAKER_MARKS.values(), *config.strategies]})
        if model_config is None:
            with quiet_model_load():
                self.model = AutoModel.from_pretrained(path)
            self.model.resize_token_embeddings(len(self.tokenizer), mean_resizing=False)
        else:
            settings = {k: v for k, v in model_config.items() if k != "model_type"}
            self.model = AutoModel.from_config(AutoConfig.for_model(model_config["model_type"], **settings))
        self.head = nn.Linear(self.model.config.hidden_size, len(config.strategies))
        self.ids = self.tokenizer.convert_tokens_to_ids

    def encoder_weights(self) -> list[nn.Parameter]:
        return list(self.model.parameters())

    def input_ids(self, example: PlannedCase) -> list[int]:
        """The input of one example (layout in the module docstring)."""
        body = [self.ids(TURN_MARK), *text_ids(self.tokenizer, str(supporter_turn_number(example)))]
        for turn in example.context:
            body.append(self.ids(SPEAKER_MARKS[turn.speaker]))
            if turn.strategy:
                body.append(self.ids(turn.strategy))
            body += text_ids(self.tokenizer, turn.text)
        room = self.config.max_len - 2
        return [self.tokenizer.cls_token_id, *body[-room:], self.tokenizer.sep_token_id]

    def logits(self, rows: Sequence[list[int]]) -> torch.Tensor:
        """Strategy logits [B, K] of `input_ids` rows."""
        input_ids, mask = right_padded(rows, self.tokenizer.pad_token_id, self.device)
        hidden = self.model(input_ids=input_ids, attention_mask=mask).last_hidden_state  # [B, S, H]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return self.head((hidden * weights).sum(1) / weights.sum(1))

    def loss(self, examples: Sequence[PlannedCase]) -> torch.Tensor:
        targets = torch.tensor([self.config.strategies.index(e.strategy) for e in examples], device=self.device)
        return F.cross_entropy(self.logits([self.input_ids(e) for e in examples]), targets)

    @torch.no_grad()
    def probabilities(self, examples: Sequence[PlannedCase], batch_size: int = 64) -> np.ndarray:
        """p(strategy) of each example [n, K], rows in input order, columns in config.strategies
        order (batches of similar length)."""
        rows = [self.input_ids(e) for e in examples]
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        probabilities = np.zeros((len(rows), len(self.config.strategies)), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            probabilities[batch] = self.logits([rows[i] for i in batch]).softmax(-1).float().cpu().numpy()
        return probabilities

    def predict(self, examples: Sequence[PlannedCase], batch_size: int = 64) -> list[str]:
        """The most probable strategy of each example, in input order."""
        return [self.config.strategies[k] for k in self.probabilities(examples, batch_size).argmax(-1)]


class PlannerObjective(trainer.Objective):
    """Cross-entropy of the gold strategy; nothing of its own to checkpoint."""

    def __init__(self, planner: StrategyPlanner, device: torch.device):
        self.planner = planner

    def step_loss(self, batch: list[PlannedCase], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        loss = self.planner.loss(batch)
        return loss, {"loss": loss.item()}


def train_planner(examples: list[Any], config: PlannerConfig, settings: trainer.TrainSettings,
                  run_dir: str | os.PathLike) -> dict[str, Any]:
    """Train on `examples` (PlannedCases) into run_dir (models.trainer.run_files; resumed when
    this run wrote its checkpoint) and return a summary with the loss history."""
    if not examples:
        raise PipelineInputError("strategy_planner: no training examples (check gen.conversations.train)")
    summary, _ = trainer.train(StrategyPlanner, config, PlannerObjective, examples, settings, run_dir)
    return summary
