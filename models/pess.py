"""PESS: Persona Extraction through Semantic Similarity (Han, Park, Kim, Ro; ICASSP 2024).

A seq2seq extractor reads one speaker's dialogue history and writes that speaker's persona as
a few short sentences. Besides the usual NLL on the gold persona it is trained with two losses
built from a sentence-level similarity matrix between what it generated and the gold persona.
The paper's method section could not be read (see shared/papers/PESS-notes.md): the verbal
description is followed; every formula below is this project's reconstruction.

Notation. For one example: gold persona sentences p_1..p_m, generated sentences g_1..g_k (the
decoded output split by `persona_sentences`), E(.) the frozen MiniLM sentence encoder,

    S[i, j] = cos(E(p_i), E(g_j))                          S in R^{m x k}

At a threshold tau:

    consistent   C = { j : max_i S[i, j] >= tau }           generated sentences that state a gold fact
    inconsistent I = { j : max_i S[i, j] <  tau }           the rest of the generated sentences
    missing      M = { i : max_j S[i, j] <  tau }           gold facts nothing generated states (all i if k = 0)
    best match   b(i) = argmax_j S[i, j]   for i not in M   (then b(i) is in C)

Completeness loss. The new target keeps one sentence per gold fact, in gold order:

    P_new = dedup_first( [ g_b(i) if i not in M else p_i   for i = 1..m ] )
    L_comp = - (1/|y|) sum_t log p_theta(y_t | y_<t, x)      y = tokens of P_new, x = history

dedup_first drops a sentence whose normalised text (lower case, spaces collapsed, end
punctuation stripped) already occurs earlier: a generated sentence that is the best match of
two gold facts appears once, at the first. Consistent sentences that are no gold sentence's
best match are paraphrases of a fact that is already represented and are left out. So P_new
rewards the model's own wording where it was right and re-teaches only what it missed.

Consistency loss (InfoNCE), in the extractor's own representation so that gradients reach it:
h(s) = mean over the tokens of s of the last decoder layer's states when s is teacher-forced
as the decoder input for the example's history x (the start token is not pooled). For every
gold sentence i not in M (the anchors A), with temperature T:

    a_i = h(p_i),  h+_i = h(g_b(i)),  negatives N = { h(g_j) : j in I }
    L_cons = - (1/|A|) sum_{i in A} log [ exp(cos(a_i, h+_i)/T)
                                          / ( exp(cos(a_i, h+_i)/T) + sum_{n in N} exp(cos(a_i, n)/T) ) ]

An example with no anchor or no negative adds nothing (the term is log 1 = 0 without
negatives). Anchors and negatives come from the same example only. The similarity matrix
only labels pairs; it is computed without gradient.

Total:  L = L_nll(gold) + lambda_comp * L_comp + lambda_cons * L_cons.

Refresh trade-off. C, I and M need a decoding pass of the current model (greedy, then the
sentence encoder): about as costly as a training step. They are recomputed for the batch in
hand every `refresh_every` steps and kept per example; a later step reuses the kept sets of
the examples it holds. refresh_every = 1 gives fresh sets for every batch at roughly twice the
step time; larger values save that time, but within one epoch only 1/refresh_every of the
batches carry sets (the auxiliary losses act on fewer steps, so lambda is effectively scaled
down), and sets reused from an earlier epoch describe an older model: the completeness target
then re-teaches older wording, and the contrast pushes on sentences it may no longer produce.
"""
from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Sequence, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from flows.lib.errors import PipelineInputError
from models import trainer
from models.backbone import BackboneConfig, BackboneModule, build_backbone, right_padded
from models.runtime import SENTENCE_MODEL, load_sentence_model

T = TypeVar("T")


@dataclass
class PessConfig(BackboneConfig):
    """The backbone (models/backbone.py: max_source_len counts history tokens, max_target_len
    persona tokens, also the decoding budget) and the PESS objective."""

    max_sentence_len: int = 16  # tokens of one persona sentence in the consistency loss
    tau: float = 0.7
    lambda_completeness: float = 1.0
    lambda_consistency: float = 0.5
    temperature: float = 0.1
    refresh_every: int = 4
    decoder_token_dropout: float = 0.0  # share of teacher-forced decoder inputs masked in training (see nll)
    num_beams: int = 1

    @property
    def needs_similarity_sets(self) -> bool:
        return self.lambda_completeness > 0 or self.lambda_consistency > 0


# ---------------------------------------------------------------------------------------------
# Sentences and the similarity sets (pure functions, no model)

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def normalise_sentence(sentence: str) -> str:
    return " ".join(sentence.lower().split()).rstrip(" .!?")


def persona_sentences(text: str) -> list[str]:
    """Split a persona into sentences (after . ! ? or a newline), dropping empty ones and
    repeats of an earlier sentence (normalised text): generation often repeats itself, and a
    repeat must not count twice as consistent."""
    seen: set[str] = set()
    sentences = []
    for piece in _SENTENCE_END.split(text):
        sentence = " ".join(piece.split())
        key = normalise_sentence(sentence)
        if key and key not in seen:
            seen.add(key)
            sentences.append(sentence)
    return sentences


def persona_text(sentences: list[str]) -> str:
    """The serialised target: sentences joined by a space, each closed by end punctuation,
    so that persona_sentences(persona_text(s)) == s for sentences without inner stops."""
    closed = [s if s.rstrip()[-1:] in ".!?" else s.rstrip() + "." for s in sentences if s.strip()]
    return " ".join(closed)


@dataclass
class SimilaritySets:
    """The sets of one example at one tau (indices into gold / generated sentence lists)."""

    consistent: list[int]  # j: generated sentences whose best gold match >= tau
    inconsistent: list[int]  # j: the other generated sentences
    missing: list[int]  # i: gold sentences with no generated match >= tau
    best_match: list[int]  # per gold i: argmax_j S[i, j], or -1 when i is missing


def similarity_sets(similarity: np.ndarray, tau: float) -> SimilaritySets:
    """similarity: [m gold, k generated] cosine matrix."""
    m, k = similarity.shape
    if k == 0:
        return SimilaritySets([], [], list(range(m)), [-1] * m)
    if m == 0:
        return SimilaritySets([], list(range(k)), [], [])
    best_gold_score = similarity.max(axis=0)  # [k]
    best_generated = similarity.argmax(axis=1)  # [m]
    covered = similarity.max(axis=1) >= tau  # [m]
    return SimilaritySets(
        consistent=[j for j in range(k) if best_gold_score[j] >= tau],
        inconsistent=[j for j in range(k) if best_gold_score[j] < tau],
        missing=[i for i in range(m) if not covered[i]],
        best_match=[int(best_generated[i]) if covered[i] else -1 for i in range(m)],
    )


def completeness_target(gold: list[str], generated: list[str], sets: SimilaritySets) -> list[str]:
    """P_new: per gold fact in gold order, the generated sentence that states it, else the
    gold sentence; a sentence already present (normalised text) is not repeated."""
    target, seen = [], set()
    for i, gold_sentence in enumerate(gold):
        sentence = generated[sets.best_match[i]] if sets.best_match[i] >= 0 else gold_sentence
        key = normalise_sentence(sentence)
        if key not in seen:
            seen.add(key)
            target.append(sentence)
    return target


def info_nce(
    anchors: torch.Tensor,  # [A, d]
    positives: torch.Tensor,  # [A, d]
    negatives: torch.Tensor,  # [A, N, d]
    negative_mask: torch.Tensor,  # [A, N] bool: True where a real negative sits
    temperature: float,
) -> torch.Tensor:
    """Mean over anchors of -log softmax(positive) among {positive} + that anchor's negatives."""
    positive_logit = F.cosine_similarity(anchors, positives, dim=-1) / temperature  # [A]
    negative_logits = F.cosine_similarity(anchors.unsqueeze(1), negatives, dim=-1) / temperature  # [A, N]
    negative_logits = negative_logits.masked_fill(~negative_mask, float("-inf"))
    logits = torch.cat([positive_logit.unsqueeze(1), negative_logits], dim=1)  # [A, 1 + N]
    return -(logits.log_softmax(dim=1)[:, 0]).mean()


def rotated_by_half(items: Sequence[T]) -> list[T]:
    """items[n // 2:] + items[:n // 2]: each position gets the item half the list away, for
    "someone else's" input in the reliance diagnostics (a neighbour is often the same
    conversation's other speaker)."""
    half = len(items) // 2
    return [*items[half:], *items[:half]]


class SentenceScorer:
    """The frozen sentence encoder that labels pairs: cosine matrices between sentence lists."""

    def __init__(self, model_name: str = SENTENCE_MODEL, device: str | torch.device = "cpu"):
        self.encoder = load_sentence_model(model_name, device=device)

    def embed(self, sentences: list[str]) -> np.ndarray:
        if not sentences:
            return np.zeros((0, self.encoder.get_embedding_dimension()), dtype=np.float32)
        return self.encoder.encode(sentences, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)

    def matrices(self, pairs: list[tuple[list[str], list[str]]]) -> list[np.ndarray]:
        """One [m, k] cosine matrix per (gold, generated) pair; every sentence encoded once."""
        unique = sorted({s for gold, generated in pairs for s in (*gold, *generated)})
        index = {s: n for n, s in enumerate(unique)}
        vectors = self.embed(unique)
        return [
            vectors[[index[s] for s in gold]] @ vectors[[index[s] for s in generated]].T
            if gold and generated
            else np.zeros((len(gold), len(generated)), dtype=np.float32)
            for gold, generated in pairs
        ]


# ---------------------------------------------------------------------------------------------
# The extractor


@dataclass
class ExampleSets:
    """What a refresh stores for one example: its decoded sentences and their sets."""

    gold: list[str]
    generated: list[str]
    sets: SimilaritySets

    def as_plain(self) -> dict[str, Any]:  # weights_only-safe checkpoint form
        return asdict(self)

    @classmethod
    def from_plain(cls, plain: dict[str, Any]) -> "ExampleSets":
        return cls(plain["gold"], plain["generated"], SimilaritySets(**plain["sets"]))


@dataclass
class PessLosses:
    total: torch.Tensor
    nll: torch.Tensor
    completeness: torch.Tensor
    consistency: torch.Tensor
    stats: dict[str, float] = field(default_factory=dict)


class PersonaExtractor(BackboneModule):
    """history text -> persona text, with the PESS losses."""

    config_class = PessConfig

    def __init__(self, config: PessConfig, model_config: dict[str, Any] | None = None):
        super().__init__()
        self.config = config
        self.model, self.tokenizer = build_backbone(config, model_config)
        special = self.model.config
        self.start_id = special.decoder_start_token_id
        if self.start_id is None:
            self.start_id = self.tokenizer.bos_token_id if self.tokenizer.bos_token_id is not None else self.tokenizer.cls_token_id
        self.eos_id = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else self.tokenizer.sep_token_id
        self.pad_id = self.tokenizer.pad_token_id
        self.mask_id = self.tokenizer.mask_token_id if self.tokenizer.mask_token_id is not None else self.tokenizer.unk_token_id

    # -- tensors
    def encode_sources(self, histories: list[str]) -> dict[str, torch.Tensor]:
        batch = self.tokenizer(
            histories, max_length=self.config.max_source_len, truncation=True, padding=True, return_tensors="pt"
        )
        return {"input_ids": batch["input_ids"].to(self.device), "attention_mask": batch["attention_mask"].to(self.device)}

    def _token_rows(self, texts: list[str], max_len: int) -> list[list[int]]:
        return [ids[:max_len] for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def labels(self, targets: list[str]) -> torch.Tensor:
        """[B, T] target tokens closed by eos; padding is -100 (ignored by the NLL)."""
        rows = [ids + [self.eos_id] for ids in self._token_rows(targets, self.config.max_target_len - 1)]
        return right_padded(rows, -100, self.device)[0]

    def encoder_states(self, sources: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model.get_encoder()(**sources).last_hidden_state  # [B, S, d_enc]

    def nll(self, encoded: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Token-mean NLL of labels [B, T] given encoder states [B, S, d]. In training, a share
        decoder_token_dropout of the teacher-forced decoder inputs (never the start token) is
        replaced by the mask token: persona sentences recur across speakers, and a decoder that
        sees every earlier target token can finish them from memory without reading the history
        (word dropout, Bowman et al. 2016)."""
        decoder_input_ids = None
        if self.training and self.config.decoder_token_dropout > 0:
            from transformers.models.encoder_decoder.modeling_encoder_decoder import shift_tokens_right

            decoder_input_ids = shift_tokens_right(labels, self.pad_id, self.start_id)  # [B, T], what HF feeds
            dropped = torch.rand(labels.shape, device=labels.device) < self.config.decoder_token_dropout
            dropped[:, 0] = False
            decoder_input_ids = decoder_input_ids.masked_fill(dropped & (decoder_input_ids != self.pad_id), self.mask_id)
        return self.model(encoder_outputs=(encoded,), attention_mask=attention_mask, decoder_input_ids=decoder_input_ids, labels=labels).loss

    def sentence_states(
        self, encoded: torch.Tensor, attention_mask: torch.Tensor, rows: torch.Tensor, sentences: list[str]
    ) -> torch.Tensor:
        """h(s): [n, d] mean of last decoder states over s's tokens, s teacher-forced after the
        start token for history rows[n] of the batch."""
        tokens = self._token_rows(sentences, self.config.max_sentence_len)
        width = 1 + max(len(t) for t in tokens)
        decoder_ids = torch.full((len(tokens), width), self.pad_id, device=self.device)
        pooled_mask = torch.zeros((len(tokens), width), device=self.device)
        for n, ids in enumerate(tokens):
            decoder_ids[n, 0] = self.start_id
            decoder_ids[n, 1 : 1 + len(ids)] = torch.tensor(ids, device=self.device)
            pooled_mask[n, 1 : 1 + len(ids)] = 1.0
        decoder_mask = pooled_mask.clone()
        decoder_mask[:, 0] = 1.0
        # the decoder without its LM head: the vocabulary projection is not needed here
        decoder = self.model.get_decoder()
        decoder = getattr(decoder, "base_model", decoder)
        states = decoder(
            input_ids=decoder_ids,
            attention_mask=decoder_mask.long(),
            encoder_hidden_states=encoded[rows],
            encoder_attention_mask=attention_mask[rows],
        ).last_hidden_state  # [n, width, d]
        return (states * pooled_mask.unsqueeze(-1)).sum(1) / pooled_mask.sum(1, keepdim=True).clamp(min=1.0)

    @torch.no_grad()
    def generate(self, histories: list[str], max_new_tokens: int | None = None) -> list[str]:
        was_training = self.training
        self.eval()
        sources = self.encode_sources(histories)
        output = self.model.generate(
            **sources,
            max_new_tokens=max_new_tokens or self.config.max_target_len,
            num_beams=self.config.num_beams,
            do_sample=False,
            decoder_start_token_id=self.start_id,
            eos_token_id=self.eos_id,
            pad_token_id=self.pad_id,
        )
        self.train(was_training)
        return [" ".join(t.split()) for t in self.tokenizer.batch_decode(output, skip_special_tokens=True)]

    @torch.no_grad()
    def history_reliance(self, histories: list[str], golds: list[str], batch_size: int) -> dict[str, float]:
        """Does the extractor read its input? The gold personas' NLL (nats per token, mean over
        batches weighted by their size) under their own histories and under other examples'
        histories: the list rotated by half its length, so that the other history comes from a
        distant conversation rather than the partner's side of the same one. The gain (other -
        own) is about 0 for an extractor that ignores its history and writes one persona for
        everybody; with one example there is no other history and the gain is 0."""
        was_training = self.training
        self.eval()
        others = rotated_by_half(histories)
        totals = {"own": 0.0, "other": 0.0}
        for start in range(0, len(golds), batch_size):
            labels = self.labels(golds[start : start + batch_size])
            for name, sources in (("own", histories), ("other", others)):
                batch = self.encode_sources(sources[start : start + batch_size])
                nll = self.nll(self.encoder_states(batch), batch["attention_mask"], labels)
                totals[name] += nll.item() * len(labels)
        self.train(was_training)
        own, other = totals["own"] / len(golds), totals["other"] / len(golds)
        return {"nll_own_history": own, "nll_other_history": other, "history_nll_gain": other - own}

    # -- the PESS objective
    def refresh_sets(self, histories: list[str], golds: list[str], scorer: SentenceScorer) -> list[ExampleSets]:
        """Decode the batch with the current weights and label its sentences at tau."""
        generated = [persona_sentences(text) for text in self.generate(histories)]
        gold = [persona_sentences(text) for text in golds]
        matrices = scorer.matrices(list(zip(gold, generated)))
        return [ExampleSets(g, k, similarity_sets(s, self.config.tau)) for g, k, s in zip(gold, generated, matrices)]

    def losses(self, histories: list[str], golds: list[str], kept: list[ExampleSets | None]) -> PessLosses:
        """L = L_nll + lambda_comp L_comp + lambda_cons L_cons for one batch; kept[b] holds
        example b's sets (None: no refresh has covered it yet, so only L_nll applies)."""
        sources = self.encode_sources(histories)
        encoded = self.encoder_states(sources)  # [B, S, d]
        mask = sources["attention_mask"]
        nll = self.nll(encoded, mask, self.labels(golds))
        zero = nll.new_zeros(())
        completeness, consistency, stats = zero, zero, {}
        with_sets = [b for b, sets in enumerate(kept) if sets is not None]
        if self.config.lambda_completeness > 0 and with_sets:
            rows = torch.tensor(with_sets, device=self.device)
            targets = [persona_text(completeness_target(kept[b].gold, kept[b].generated, kept[b].sets)) for b in with_sets]
            completeness = self.nll(encoded[rows], mask[rows], self.labels(targets))
        if self.config.lambda_consistency > 0 and with_sets:
            consistency, stats["contrast_anchors"] = self._consistency(encoded, mask, kept, with_sets)
        if with_sets:
            stats["consistent"] = float(np.mean([len(kept[b].sets.consistent) for b in with_sets]))
            stats["inconsistent"] = float(np.mean([len(kept[b].sets.inconsistent) for b in with_sets]))
            stats["missing"] = float(np.mean([len(kept[b].sets.missing) for b in with_sets]))
        total = nll + self.config.lambda_completeness * completeness + self.config.lambda_consistency * consistency
        return PessLosses(total, nll, completeness, consistency, stats)

    def _consistency(
        self, encoded: torch.Tensor, mask: torch.Tensor, kept: list[ExampleSets | None], with_sets: list[int]
    ) -> tuple[torch.Tensor, float]:
        # one flat list of sentences to teacher-force, and per anchor: (anchor, positive, negatives) positions
        sentences, rows, triples = [], [], []

        def add(text: str, row: int) -> int:
            sentences.append(text)
            rows.append(row)
            return len(sentences) - 1

        for b in with_sets:
            example = kept[b]
            if not example.sets.inconsistent:
                continue
            negatives = [add(example.generated[j], b) for j in example.sets.inconsistent]
            for i, j in enumerate(example.sets.best_match):
                if j >= 0:
                    triples.append((add(example.gold[i], b), add(example.generated[j], b), negatives))
        if not triples:
            return encoded.new_zeros(()), 0.0
        states = self.sentence_states(encoded, mask, torch.tensor(rows, device=self.device), sentences)  # [n, d]
        negative_index, negative_mask = right_padded([t[2] for t in triples], 0, self.device)
        loss = info_nce(
            states[[t[0] for t in triples]],
            states[[t[1] for t in triples]],
            states[negative_index],
            negative_mask.bool(),
            self.config.temperature,
        )
        return loss, float(len(triples))


# ---------------------------------------------------------------------------------------------
# Inference


def load_extractor(model_path: str | os.PathLike, num_beams: int | None = None, device: str = "auto") -> PersonaExtractor:
    """A trained extractor in eval mode, decoding with `num_beams` when given."""
    extractor = PersonaExtractor.load(model_path, device)
    if num_beams is not None:
        extractor.config = replace(extractor.config, num_beams=num_beams)
    return extractor


def generate_all(extractor: PersonaExtractor, histories: list[str], batch_size: int) -> list[str]:
    return [text for start in range(0, len(histories), batch_size) for text in extractor.generate(histories[start : start + batch_size])]


# ---------------------------------------------------------------------------------------------
# Training (the loop is models/trainer.py)


class PessObjective(trainer.Objective):
    """The PESS loss of a batch of examples (anything with example_id, history and persona:
    flows.lib.persona_data.PersonaExample). Every `refresh_every` steps the batch is decoded
    and its similarity sets are kept per example, so that a later step reuses them."""

    def __init__(self, extractor: PersonaExtractor, device: torch.device):
        config = extractor.config
        self.extractor = extractor
        self.kept: dict[str, ExampleSets] = {}
        self.scorer = SentenceScorer(config.sentence_model, device) if config.needs_similarity_sets else None

    def step_loss(self, batch: list[Any], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        histories, golds = [e.history for e in batch], [e.persona for e in batch]
        if self.scorer is not None and step % self.extractor.config.refresh_every == 0:
            for example, sets in zip(batch, self.extractor.refresh_sets(histories, golds, self.scorer)):
                self.kept[example.example_id] = sets
        losses = self.extractor.losses(histories, golds, [self.kept.get(e.example_id) for e in batch])
        scalars = {"loss": losses.total.item(), "nll": losses.nll.item(), "completeness": losses.completeness.item(),
                   "consistency": losses.consistency.item(), **losses.stats}
        return losses.total, scalars

    def state(self) -> dict[str, Any]:
        return {"kept_sets": {k: v.as_plain() for k, v in self.kept.items()}}

    def load_state(self, saved: dict[str, Any]) -> None:
        self.kept = {k: ExampleSets.from_plain(v) for k, v in saved["kept_sets"].items()}


def train_extractor(
    examples: list[Any],
    config: PessConfig,
    settings: trainer.TrainSettings,
    run_dir: str | os.PathLike,
    rows: trainer.RowLog | None = None,
) -> dict[str, Any]:
    """Train an extractor on `examples` into run_dir (models.trainer.run_files; resumed when
    this run wrote its checkpoint) and return a summary of the run."""
    if not examples:
        raise PipelineInputError("pess_train: no training examples (check pess.files and pess.split)")
    summary, objective = trainer.train(PersonaExtractor, config, PessObjective, examples, settings, run_dir, rows)
    summary.pop("history")  # the curves are in the rows' log
    return {**summary, "kept_sets": len(objective.kept), "config": asdict(config), "settings": asdict(settings)}
