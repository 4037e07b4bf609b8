"""PESS-GEN response generator: a PAL-style supporter that predicts a strategy, then responds.

Source (encoder input), persona first so that left-truncation of a long context never cuts it:

    [CLS] <persona> p_1 <persona> p_2 … <context> <seeker> u_1 <supporter> [Strategy] s_1 … [SEP]

with at most `max_persona_len` persona tokens; the context keeps its most recent tokens.
A conversation without an inferred persona yet (or the no-persona variant) has no <persona>
part. Target (decoder output), after the backbone's decoder start token:

    [Strategy] response tokens [SEP]

so the first decoded token is the strategy (one of the 8 added special tokens), as in PAL,
and the response is conditioned on it. Training is the token-mean NLL over the whole target,
so strategy prediction is part of the LM loss. At inference the strategy is the argmax over
the 8 strategy logits at the first step (or the gold one, forced, in the oracle variant); the
response is then decoded after the prefix [start, strategy] with the strategy and marker
tokens banned. The backbone is the PESS one (models/backbone.py): MiniLM bert2bert warm start
offline, a hub seq2seq id where a hub is reachable, or a tiny random BART for tests.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Protocol, Sequence

import torch
from torch import nn

from flows.lib.errors import PipelineInputError
from models import trainer
from models.backbone import BackboneConfig, BackboneModule, backbone_tokenizer, build_backbone, right_padded
from models.runtime import load_checkpoint

SEEKER, SUPPORTER = "seeker", "supporter"
PERSONA_MARK, CONTEXT_MARK = "<persona>", "<context>"
SPEAKER_MARKS = {SEEKER: "<seeker>", SUPPORTER: "<supporter>"}
MARKERS = (PERSONA_MARK, CONTEXT_MARK, *SPEAKER_MARKS.values())


@dataclass(frozen=True)
class Turn:
    speaker: str  # SEEKER | SUPPORTER
    text: str
    strategy: str = ""  # the strategy token, e.g. "[Question]"; supporter turns only


class SupportCase(Protocol):
    """What the generator reads of an example (flows.lib.esconv_examples.SupportExample)."""

    persona: Sequence[str]  # seeker persona sentences inferred so far (empty: none)
    context: Sequence[Turn]  # the turns before the supporter turn, oldest first
    strategy: str  # gold strategy token (training and scoring only)
    response: str  # gold response (training and scoring only)


@dataclass
class GeneratorConfig(BackboneConfig):
    """The backbone (models/backbone.py; max_source_len: persona + context tokens, start/end
    included; max_target_len: strategy + response + end) and the generator's own settings."""

    max_target_len: int = 40
    strategies: list[str] = field(default_factory=list)  # strategy tokens in strategy.json order
    max_persona_len: int = 48  # the persona's share of the source


@dataclass
class Decoding:
    method: str = "beam"  # beam | nucleus
    num_beams: int = 4  # beam only
    top_p: float = 0.9  # nucleus only
    top_k: int = 0  # nucleus only; 0 = no top-k cut
    temperature: float = 0.7  # nucleus only
    num_return_sequences: int = 1
    max_new_tokens: int = 38  # response tokens after the strategy
    min_new_tokens: int = 3
    no_repeat_ngram_size: int = 3
    repetition_penalty: float = 1.0

    def __post_init__(self):
        if self.method not in ("beam", "nucleus"):
            raise PipelineInputError(f"params.yaml: param 'gen.decoding.method' is {self.method!r}; valid: beam, nucleus")


def _resize_vocabulary(model: nn.Module, size: int) -> None:
    """Grow the embeddings (and tied output layer) to the tokenizer with the added tokens. A
    bert2bert EncoderDecoderModel resizes its two halves; a model rebuilt from a checkpoint's
    config already has the size."""
    from transformers import EncoderDecoderModel

    parts = [model.encoder, model.decoder] if isinstance(model, EncoderDecoderModel) else [model]
    for part in parts:
        if part.get_input_embeddings().num_embeddings != size:
            part.resize_token_embeddings(size)


def add_generator_tokens(tokenizer: Any, config: GeneratorConfig) -> Any:
    """The backbone's tokenizer with the markers and strategy tokens added; the order is fixed,
    so a checkpoint's token ids mean the same after a rebuild."""
    tokenizer.add_special_tokens({"additional_special_tokens": [*MARKERS, *config.strategies]})
    return tokenizer


def decoded_text(tokenizer: Any, ids: Sequence[int]) -> str:
    """Token ids as the generator writes them: special tokens dropped, spaces collapsed."""
    return " ".join(tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=True).split())


def check_strategies(strategies: Sequence[str], model: str) -> None:
    """A model's strategy tokens must be distinct and non-empty: each is one output class."""
    if not strategies or len(set(strategies)) != len(strategies):
        raise PipelineInputError(f"{model} config: strategies must be distinct and non-empty, got {list(strategies)}")


def text_ids(tokenizer: Any, text: str) -> list[int]:
    """Token ids of `text` alone, without the backbone's own start and end tokens."""
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def as_decoded_text(tokenizer: Any, text: str) -> str:
    """`text` as the model would write it (an uncased WordPiece vocabulary lower-cases and
    strips accents): references pass through this before they are compared with outputs."""
    return decoded_text(tokenizer, text_ids(tokenizer, text))


def load_text_normaliser(path: str | os.PathLike) -> Callable[[str], str]:
    """`ResponseGenerator.as_decoded` of the generator saved at `path`, from its config's
    tokenizer alone: no model is built, and the weights are mapped, not read."""
    config = GeneratorConfig(**load_checkpoint(path, mmap=True)["config"])
    return partial(as_decoded_text, add_generator_tokens(backbone_tokenizer(config), config))


class ResponseGenerator(BackboneModule):
    config_class = GeneratorConfig

    def __init__(self, config: GeneratorConfig, model_config: dict[str, Any] | None = None):
        super().__init__()
        check_strategies(config.strategies, "generator")
        self.config = config
        self.model, tokenizer = build_backbone(config, model_config)
        self.tokenizer = add_generator_tokens(tokenizer, config)
        _resize_vocabulary(self.model, len(self.tokenizer))
        ids = self.tokenizer.convert_tokens_to_ids
        self.register_buffer("strategy_ids", torch.tensor(ids(list(config.strategies))), persistent=False)  # [K]
        self.marker_ids = {mark: ids(mark) for mark in MARKERS}
        self.start_id = self.model.config.decoder_start_token_id
        if self.start_id is None:
            self.start_id = self.tokenizer.cls_token_id
        self.model.config.decoder_start_token_id = self.start_id
        self.source_start, self.source_end = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        self.end_id = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else self.tokenizer.sep_token_id
        self.pad_id = self.tokenizer.pad_token_id

    # -- text -> ids
    def source_ids(self, persona: Sequence[str], context: Sequence[Turn]) -> list[int]:
        """The encoder input of one example (layout in the module docstring)."""
        persona_ids: list[int] = []
        for sentence in persona:
            persona_ids += [self.marker_ids[PERSONA_MARK], *text_ids(self.tokenizer, sentence)]
        persona_ids = persona_ids[: self.config.max_persona_len]
        context_ids: list[int] = []
        for turn in context:
            context_ids.append(self.marker_ids[SPEAKER_MARKS[turn.speaker]])
            if turn.strategy:
                context_ids.append(self.strategy_id(turn.strategy))
            context_ids += text_ids(self.tokenizer, turn.text)
        room = self.config.max_source_len - len(persona_ids) - 3  # start, <context>, end
        context_ids = context_ids[-room:] if room > 0 else []
        return [self.source_start, *persona_ids, self.marker_ids[CONTEXT_MARK], *context_ids, self.source_end]

    def strategy_id(self, strategy: str) -> int:
        if strategy not in self.config.strategies:
            raise PipelineInputError(f"unknown strategy {strategy!r}; valid: {', '.join(self.config.strategies)}")
        return self.tokenizer.convert_tokens_to_ids(strategy)

    def target_ids(self, strategy: str, response: str) -> list[int]:
        """[Strategy] response [end], cut to max_target_len with the end kept."""
        body = text_ids(self.tokenizer, response)[: self.config.max_target_len - 2]
        return [self.strategy_id(strategy), *body, self.end_id]

    def sources(self, examples: Sequence[SupportCase]) -> dict[str, torch.Tensor]:
        """input_ids and attention_mask [B, S], right-padded."""
        input_ids, mask = right_padded([self.source_ids(e.persona, e.context) for e in examples], self.pad_id, self.device)
        return {"input_ids": input_ids, "attention_mask": mask}

    def labels(self, examples: Sequence[SupportCase]) -> torch.Tensor:
        """[B, T] targets; padding is -100 (ignored by the NLL)."""
        return right_padded([self.target_ids(e.strategy, e.response) for e in examples], -100, self.device)[0]

    # -- training and scoring
    def loss(self, examples: Sequence[SupportCase]) -> torch.Tensor:
        """Token-mean NLL of [Strategy] response [end], teacher-forced."""
        return self.model(**self.sources(examples), labels=self.labels(examples)).loss

    @torch.no_grad()
    def score(self, examples: Sequence[SupportCase]) -> tuple[list[float], list[int], list[str]]:
        """One teacher-forced pass; per example: the summed NLL and count of its response tokens
        (end included) given the gold strategy (perplexity = exp(sum of sums / sum of counts);
        the strategy position is left out so that predicted and oracle-strategy variants are
        scored on the same tokens), and the predicted strategy: the argmax over the strategy
        logits at the first step, which sees only the decoder start (= strategy_logits)."""
        labels = self.labels(examples)  # [B, T]
        logits = self.model(**self.sources(examples), labels=labels).logits  # [B, T, V]
        response = labels[:, 1:]  # [B, T-1]
        nll = nn.functional.cross_entropy(logits[:, 1:].transpose(1, 2), response, ignore_index=-100, reduction="none")  # [B, T-1]
        predicted = logits[:, 0, self.strategy_ids].argmax(-1).tolist()  # [B]
        return nll.sum(1).tolist(), (response != -100).sum(1).tolist(), [self.config.strategies[k] for k in predicted]

    # -- inference
    @torch.no_grad()
    def strategy_logits(self, sources: dict[str, torch.Tensor]) -> torch.Tensor:
        """[B, K] logits of the K strategy tokens at the first decoding step."""
        start = torch.full((sources["input_ids"].shape[0], 1), self.start_id, device=self.device)  # [B, 1]
        logits = self.model(**sources, decoder_input_ids=start).logits[:, 0]  # [B, V]
        return logits[:, self.strategy_ids]

    @torch.no_grad()
    def decode_ids(
        self, examples: Sequence[SupportCase], decoding: Decoding, forced_strategies: Sequence[str] | None = None
    ) -> torch.Tensor:
        """[B * n, 2 + new] decoder sequences, n = decoding.num_return_sequences: the start
        token, the strategy (argmax over the strategy logits, or forced: the oracle), then
        the response, in which strategy and marker tokens are banned."""
        was_training = self.training
        self.eval()
        sources = self.sources(examples)
        if forced_strategies is None:
            strategy_ids = self.strategy_ids[self.strategy_logits(sources).argmax(-1)]  # [B]
        else:
            strategy_ids = torch.tensor([self.strategy_id(s) for s in forced_strategies], device=self.device)
        prefix = torch.stack([torch.full_like(strategy_ids, self.start_id), strategy_ids], dim=1)  # [B, 2]
        banned = [[token] for token in (*self.strategy_ids.tolist(), *self.marker_ids.values(), self.tokenizer.unk_token_id)]
        options: dict[str, Any] = {
            "max_new_tokens": decoding.max_new_tokens,
            "min_new_tokens": decoding.min_new_tokens,
            "no_repeat_ngram_size": decoding.no_repeat_ngram_size,
            "repetition_penalty": decoding.repetition_penalty,
            "num_return_sequences": decoding.num_return_sequences,
        }
        if decoding.method == "beam":
            options.update(num_beams=max(decoding.num_beams, decoding.num_return_sequences), do_sample=False)
        else:
            options.update(do_sample=True, top_p=decoding.top_p, top_k=decoding.top_k, temperature=decoding.temperature, num_beams=1)
        output = self.model.generate(
            **sources,
            decoder_input_ids=prefix,
            bad_words_ids=banned,
            decoder_start_token_id=self.start_id,
            eos_token_id=self.end_id,
            pad_token_id=self.pad_id,
            **options,
        )
        self.train(was_training)
        return output

    def respond(
        self, examples: Sequence[SupportCase], decoding: Decoding, forced_strategies: Sequence[str] | None = None
    ) -> tuple[list[str], list[list[str]]]:
        """Per example: its strategy and `decoding.num_return_sequences` response texts."""
        output = self.decode_ids(examples, decoding, forced_strategies).tolist()
        n = decoding.num_return_sequences
        strategies = [self.parse_strategy(output[b * n]) for b in range(len(examples))]
        texts = [decoded_text(self.tokenizer, row[2:]) for row in output]
        return strategies, [texts[b * n : (b + 1) * n] for b in range(len(examples))]

    def as_decoded(self, text: str) -> str:
        """`text` as the model would write it (as_decoded_text)."""
        return as_decoded_text(self.tokenizer, text)

    def parse_strategy(self, decoder_ids: Sequence[int]) -> str | None:
        """The strategy of a decoded sequence: the token right after the decoder start."""
        ids = list(decoder_ids)
        position = 1 if ids and ids[0] == self.start_id else 0
        if position >= len(ids):
            return None
        token = self.tokenizer.convert_ids_to_tokens(ids[position])
        return token if token in self.config.strategies else None


# ---------------------------------------------------------------------------------------------
# Training (the loop is models/trainer.py)


class GeneratorObjective(trainer.Objective):
    """The token-mean NLL of a batch; nothing of its own to checkpoint."""

    def __init__(self, generator: ResponseGenerator, device: torch.device):
        self.generator = generator

    def step_loss(self, batch: list[SupportCase], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        loss = self.generator.loss(batch)
        return loss, {"loss": loss.item()}


def train_generator(
    examples: list[Any],
    config: GeneratorConfig,
    settings: trainer.TrainSettings,
    run_dir: str | os.PathLike,
) -> dict[str, Any]:
    """Train on `examples` (dataclasses that are SupportCases) into run_dir
    (models.trainer.run_files; resumed when this run wrote its checkpoint) and return a summary
    with the loss history."""
    if not examples:
        raise PipelineInputError("gen_train: no training examples (check gen.conversations.train)")
    summary, _ = trainer.train(ResponseGenerator, config, GeneratorObjective, examples, settings, run_dir)
    return {**summary, "examples_with_persona": sum(1 for e in examples if e.persona),
            "final_loss": summary["final"].get("loss")}
