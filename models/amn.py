"""Attentive Memory Network (Chu, Vijayaraghavan, Roy, EMNLP 2018): predict a character's trope
from N_diag dialogue snippets S = (D own lines, E context, O other characters' lines).

    words --GloVe--> BiGRU + attention per stream (Eqs 2-4) --gamma mix (Eq 1)--> snippet vectors
      (snippet_encoder 'sentence': frozen sentence embeddings of the snippets --FC--> snippet vectors)
    snippet vectors --BiGRU + attention (inter-snippet; 'pool': attention only, 'baseline': masked mean)--> z
    z (+ memory read z_hat) --f_P--> trope logits (Eq 11), J_CE (12)
    optional: trope-description triplet loss J_T (13-14) or, with a memory, J_MT (15-17);
    Knowledge-Store memory (5-9) or Read-Write memory with J_MR and J_MCE (models/memory.py);
    total loss = sum of beta_i J_i, beta = softmax over the variant's own losses (18).

Departures, each because the paper leaves it open or the task asks for it: the three streams
are mixed per snippet, before the inter-snippet encoder (the paper mixes the three inter-snippet
summaries); each stream has its own BiGRU and attention; the memory read is added to z before
f_P; the triplet negative is the hardest other trope; margins and beta have small floors,
since a free hinge margin is always pushed to 0 and free loss weights drift to the smallest loss.

For characters never seen in training: the 'sentence' snippet encoder reads cached, frozen
sentence embeddings (the paper's skip-thought cache, with MiniLM), the 'pool' encoder attends
over any number of snippets without an order, and `description_logits` adds to each trope's
logit the scaled cosine of R^P (Eq 13) with that trope's description, so that what the model
learns about one trope's description carries over to the others, and a trope it never trained
on can still be scored from its description alone (`score_descriptions`)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.memory import KnowledgeStore, ReadWriteMemory
from models.vocab import PAD_ID

STREAMS = ("D", "E", "O")
ENCODERS = ("baseline", "attn", "pool")
SNIPPET_ENCODERS = ("words", "sentence")
INPUTS = ("char", "3")
TRIPLETS = ("none", "tropetrip", "tropetrip500")
MEMORIES = ("none", "ks", "rw")


@dataclass
class AMNConfig:
    vocab_size: int
    n_tropes: int
    desc_dim: int = 384  # MiniLM description embeddings (the paper: 4800-d skip-thought)
    embed_dim: int = 50  # GloVe 6B 50d
    hidden: int = 64  # d_h, BiGRU output width (hidden // 2 per direction)
    attn_dim: int = 32  # d_a of the two-layer attention scorer
    dropout: float = 0.2
    # the switches that name a Table 2 row
    encoder: str = "attn"  # baseline | attn | pool (attention over snippets, no recurrence)
    snippet_encoder: str = "words"  # words (GloVe + BiGRU) | sentence (frozen sentence embeddings in)
    sentence_dim: int = 384  # width of the sentence embeddings read by snippet_encoder 'sentence'
    description_logits: bool = False  # add scale * cos(R^P, R^D) to the logits (needs a triplet)
    inputs: str = "3"  # char (D only) | 3 (D, E, O)
    triplet: str = "none"  # none | tropetrip | tropetrip500
    memory: str = "none"  # none | ks | rw
    n_diag: int = 8  # snippets per example
    proj_dim: int = 500  # tropetrip500: descriptions are projected to this width
    n_hops: int = 2  # Knowledge-Store hops
    rw_slots: int = 256  # Read-Write memory size N_M
    rw_top_k: int = 16
    rw_margin: float = 0.1
    rw_age_noise: float = 8.0
    margin_init: float = 0.2  # triplet margin alpha at the start
    margin_floor: float = 0.05
    beta_floor: float = 0.05  # each loss weight stays >= this

    def __post_init__(self):
        for name, allowed in (("encoder", ENCODERS), ("inputs", INPUTS), ("triplet", TRIPLETS), ("memory", MEMORIES),
                              ("snippet_encoder", SNIPPET_ENCODERS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"AMNConfig.{name}={getattr(self, name)!r}; valid: {', '.join(allowed)}")
        if self.n_diag < 1 or self.hidden % 2:
            raise ValueError("AMNConfig needs n_diag >= 1 and an even hidden size")
        if self.description_logits and self.triplet == "none":
            raise ValueError("AMNConfig.description_logits needs a triplet (tropetrip or tropetrip500): it scores R^P")

    @property
    def streams(self) -> tuple[str, ...]:
        return STREAMS if self.inputs == "3" else ("D",)

    @property
    def loss_names(self) -> tuple[str, ...]:
        """The losses this variant optimises; beta is a softmax over exactly these."""
        names = ["ce"]
        if self.triplet != "none":
            names.append("triplet")  # J_T, or J_MT when a memory is present
        if self.memory == "rw":
            names += ["mem_rank", "mem_ce"]
        return tuple(names)

    def to_dict(self) -> dict:
        return asdict(self)


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis where mask is True; masked entries get exactly 0 and a row
    with nothing unmasked gets all zeros (not NaN)."""
    scores = scores.float().masked_fill(~mask, torch.finfo(torch.float32).min)
    return torch.softmax(scores, dim=-1) * mask


class AttentionPool(nn.Module):
    """Eqs 2-4: a_t = f_attn(h_t) (d_h -> d_a -> 1), alpha = softmax_t(a), s = sum_t alpha_t h_t."""

    def __init__(self, d_h: int, d_a: int):
        super().__init__()
        self.score = nn.Sequential(nn.Linear(d_h, d_a), nn.Tanh(), nn.Linear(d_a, 1))

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # h [S, T, d_h], mask [S, T] bool -> summary [S, d_h], alpha [S, T]
        alpha = masked_softmax(self.score(h).squeeze(-1), mask)
        return (alpha.unsqueeze(-1) * h.float()).sum(1), alpha


class SequenceEncoder(nn.Module):
    """BiGRU over right-padded sequences, then attention pooling. The backward direction reads
    each row's real steps reversed, so padding never reaches a real step's state (as with packed
    sequences, which are about twice as slow to train on CPU); padding gets zero attention, and
    an all-padding row summarises to zeros."""

    def __init__(self, d_in: int, d_h: int, d_a: int):
        super().__init__()
        self.forward_gru = nn.GRU(d_in, d_h // 2, batch_first=True)
        self.backward_gru = nn.GRU(d_in, d_h // 2, batch_first=True)
        self.pool = AttentionPool(d_h, d_a)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # x [S, T, d_in], mask [S, T] bool (True = real step, padding at the end) -> summary [S, d_h], alpha [S, T]
        n_rows, n_steps = mask.shape
        summary = torch.zeros(n_rows, 2 * self.forward_gru.hidden_size, device=x.device)
        alpha = torch.zeros(n_rows, n_steps, device=x.device)
        rows = mask.any(1).nonzero().squeeze(1)  # empty rows (no context lines, padded snippets) are skipped
        if rows.numel():
            x, mask = x[rows], mask[rows]
            lengths = mask.sum(1, keepdim=True)  # [R, 1]
            steps = torch.arange(n_steps, device=x.device)
            reverse = torch.where(steps < lengths, lengths - 1 - steps, steps)  # [R, T], its own inverse
            h_forward = self.forward_gru(x)[0]  # [R, T, d_h/2]
            h_backward = self.backward_gru(x.gather(1, reverse.unsqueeze(-1).expand_as(x)))[0]
            h_backward = h_backward.gather(1, reverse.unsqueeze(-1).expand_as(h_backward))
            pooled, weights = self.pool(torch.cat([h_forward, h_backward], dim=-1), mask)  # [R, d_h], [R, T]
            summary = summary.index_copy(0, rows, pooled)
            alpha = alpha.index_copy(0, rows, weights)
        return summary, alpha


def triplet_loss(anchor: torch.Tensor, targets: torch.Tensor, labels: torch.Tensor, margin: torch.Tensor) -> torch.Tensor:
    """Eq 14/17 with cosine similarity: max(0, s(a, R_n) - s(a, R_p) + margin), R_n the most
    similar wrong trope. anchor [B, D'], targets [n_tropes, D'], labels [B]."""
    sims = _cosines(anchor, targets)  # [B, n_tropes]
    positive = sims.gather(1, labels.unsqueeze(1)).squeeze(1)  # [B]
    hardest_negative = sims.masked_fill(F.one_hot(labels, sims.shape[1]).bool(), -2.0).max(1).values  # [B]
    return F.relu(hardest_negative - positive + margin).mean()


@dataclass
class AMNOutput:
    logits: torch.Tensor  # [B, n_tropes]
    z: torch.Tensor  # [B, d_h] persona representation
    losses: dict[str, torch.Tensor]  # each of config.loss_names, when labels were given
    loss: torch.Tensor | None  # sum_i beta_i J_i


class AMN(nn.Module):
    def __init__(self, config: AMNConfig):
        super().__init__()
        self.config = c = config
        self.dropout = nn.Dropout(c.dropout)
        if c.snippet_encoder == "words":
            self.embed = nn.Embedding(c.vocab_size, c.embed_dim, padding_idx=PAD_ID)
            self.snippet_encoders = nn.ModuleDict({s: SequenceEncoder(c.embed_dim, c.hidden, c.attn_dim) for s in c.streams})
        else:
            self.snippet_encoders = nn.ModuleDict(
                {s: nn.Sequential(nn.Linear(c.sentence_dim, c.hidden), nn.Tanh()) for s in c.streams}
            )
            # Subtracted from every sentence embedding: sentence embeddings share a large common
            # direction that says nothing about a trope; the trainer sets it to the training mean.
            self.register_buffer("snippet_center", torch.zeros(c.sentence_dim))
        self.gamma_logits = nn.Parameter(torch.zeros(len(c.streams)))  # gamma = softmax: sums to 1 (Eq 1)
        self.inter_snippet = {"attn": SequenceEncoder(c.hidden, c.hidden, c.attn_dim),
                              "pool": AttentionPool(c.hidden, c.attn_dim)}.get(c.encoder)
        self.classifier = nn.Linear(c.hidden, c.n_tropes)  # f_P (11)
        # R^D, one row per trope in class order; filled by the trainer, saved with the weights.
        self.register_buffer("descriptions", torch.zeros(c.n_tropes, c.desc_dim))
        if c.triplet != "none":
            target_dim = c.proj_dim if c.triplet == "tropetrip500" else c.desc_dim
            self.description_proj = nn.Linear(c.desc_dim, c.proj_dim) if c.triplet == "tropetrip500" else None
            self.to_description = nn.Linear(c.hidden, target_dim)  # f_D (13)
            self.margin_raw = nn.Parameter(torch.tensor(_softplus_inverse(c.margin_init - c.margin_floor)))
            if c.memory != "none":
                self.memory_to_description = nn.Linear(c.hidden, target_dim)  # f_DM (15)
                self.mix_logit = nn.Parameter(torch.zeros(()))  # gamma of Eq 16, sigmoid keeps it in [0, 1]
            if c.description_logits:
                self.description_scale = nn.Parameter(torch.tensor(10.0))  # cosines are in [-1, 1]
        if c.memory == "ks":
            self.memory = KnowledgeStore(c.hidden, c.n_tropes, c.desc_dim, c.n_hops)
        elif c.memory == "rw":
            self.memory = ReadWriteMemory(
                c.hidden, c.n_tropes, c.rw_slots, c.hidden, c.rw_top_k, c.rw_margin, c.rw_age_noise
            )
        self.beta_logits = nn.Parameter(torch.zeros(len(c.loss_names)))

    # --- learned mixing weights, as plain numbers for logs and tests -------------------------
    @property
    def gamma(self) -> torch.Tensor:
        """(gamma_D, gamma_E, gamma_O); in 'char' mode exactly (1, 0, 0)."""
        active = torch.softmax(self.gamma_logits, dim=0)
        return torch.cat([active, active.new_zeros(len(STREAMS) - len(active))])

    @property
    def beta(self) -> torch.Tensor:
        """Eq 18 weights over config.loss_names: floor + (1 - n floor) softmax, sums to 1."""
        n = len(self.beta_logits)
        return self.config.beta_floor + (1 - n * self.config.beta_floor) * torch.softmax(self.beta_logits, dim=0)

    @property
    def margin(self) -> torch.Tensor:
        return self.config.margin_floor + F.softplus(self.margin_raw)

    # --- forward ------------------------------------------------------------------------------
    def encode(self, tokens: dict[str, torch.Tensor], snippet_mask: torch.Tensor) -> torch.Tensor:
        # tokens[s] [B, N, T] word ids (0 = padding), or for snippet_encoder 'sentence' [B, N, sentence_dim]
        # sentence embeddings; snippet_mask [B, N] bool -> z [B, d_h]
        batch, n_snippets = snippet_mask.shape
        summaries = []
        for stream in self.config.streams:
            if self.config.snippet_encoder == "sentence":
                x = self.dropout(tokens[stream].reshape(batch * n_snippets, -1).float() - self.snippet_center)  # [B*N, sentence_dim]
                summaries.append(self.snippet_encoders[stream](x))  # [B*N, d_h]
                continue
            words = tokens[stream].reshape(batch * n_snippets, -1)  # [B*N, T]
            word_mask = (words != PAD_ID) & snippet_mask.reshape(-1, 1)  # [B*N, T]
            x = self.dropout(self.embed(words))  # [B*N, T, E]
            summaries.append(self.snippet_encoders[stream](x, word_mask)[0])  # [B*N, d_h]
        gamma = torch.softmax(self.gamma_logits, dim=0)  # [n_streams]
        snippets = (torch.stack(summaries, dim=-1) * gamma).sum(-1)  # Eq 1 per snippet, [B*N, d_h]
        snippets = snippets.view(batch, n_snippets, -1)  # [B, N, d_h]
        if self.inter_snippet is not None:
            return self.inter_snippet(snippets, snippet_mask)[0]  # [B, d_h]
        weights = snippet_mask.float() / snippet_mask.sum(1, keepdim=True).clamp_min(1)  # [B, N]
        return (weights.unsqueeze(-1) * snippets).sum(1)  # baseline: no inter-snippet encoder

    @torch.no_grad()
    def attention(self, tokens: dict[str, torch.Tensor], snippet_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """The paper's Fig 4 weights, read off one `encode` pass (call in eval mode):
        'z' [B, d_h]; 'snippets' [B, N] inter-snippet attention (the masked mean for 'baseline');
        'words_<s>' [B, N, T] word attention inside each snippet, per stream s of config.streams
        (snippet_encoder 'words' only)."""
        batch, n_snippets = snippet_mask.shape
        captured: dict[str, torch.Tensor] = {}
        watched = ({f"words_{s}": encoder for s, encoder in self.snippet_encoders.items()}
                   if self.config.snippet_encoder == "words" else {})
        if self.inter_snippet is not None:
            watched["snippets"] = self.inter_snippet
        hooks = [
            module.register_forward_hook(lambda _module, _inputs, output, name=name: captured.update({name: output[1]}))
            for name, module in watched.items()
        ]
        try:
            z = self.encode(tokens, snippet_mask)
        finally:
            for hook in hooks:
                hook.remove()
        weights = {name: alpha.view(batch, n_snippets, -1) for name, alpha in captured.items() if name != "snippets"}
        weights["snippets"] = captured.get(
            "snippets", snippet_mask.float() / snippet_mask.sum(1, keepdim=True).clamp_min(1)
        )
        return {"z": z, **weights}

    def forward(
        self, tokens: dict[str, torch.Tensor], snippet_mask: torch.Tensor, labels: torch.Tensor | None = None
    ) -> AMNOutput:
        c = self.config
        z = self.dropout(self.encode(tokens, snippet_mask))  # [B, d_h]
        memory_read = z_hat = None
        if c.memory == "ks":
            z_hat = self.memory(z, self.descriptions)[0]  # [B, d_h]
        elif c.memory == "rw":
            memory_read = self.memory(z, labels)  # writes to memory when training with labels
            z_hat = memory_read.z_hat
        logits = self.classifier(z if z_hat is None else z + z_hat)  # [B, n_tropes]
        if c.triplet != "none":
            anchor, targets = self.description_anchor(z, z_hat), self.description_targets(self.descriptions)
            if c.description_logits:
                logits = logits + self.description_scale * _cosines(anchor, targets)
        if labels is None:
            return AMNOutput(logits, z, {}, None)

        losses = {"ce": F.cross_entropy(logits.float(), labels)}
        if c.triplet != "none":
            losses["triplet"] = triplet_loss(anchor, targets, labels, self.margin)
        if memory_read is not None:
            losses["mem_rank"] = memory_read.rank_loss
            losses["mem_ce"] = F.nll_loss(memory_read.class_probs.log(), labels)
        beta = self.beta
        loss = sum(beta[i] * losses[name] for i, name in enumerate(c.loss_names))
        return AMNOutput(logits, z, losses, loss)

    def description_targets(self, descriptions: torch.Tensor) -> torch.Tensor:
        """R^D: description embeddings [n, desc_dim], projected for tropetrip500."""
        return descriptions if self.description_proj is None else self.description_proj(descriptions)

    def description_anchor(self, z: torch.Tensor, z_hat: torch.Tensor | None) -> torch.Tensor:
        """R^P (Eq 13), or R-hat^P (Eq 16) with a memory read z_hat."""
        anchor = self.to_description(z)
        if z_hat is not None:
            mix = torch.sigmoid(self.mix_logit)
            anchor = mix * anchor + (1 - mix) * self.memory_to_description(z_hat)
        return anchor

    @torch.no_grad()
    def score_descriptions(
        self, tokens: dict[str, torch.Tensor], snippet_mask: torch.Tensor, descriptions: torch.Tensor
    ) -> torch.Tensor:
        """Cosines [B, n] of the characters' R^P with any description embeddings [n, desc_dim],
        also of tropes the model never trained on (call in eval mode; needs a triplet; the
        memory read is left out, since its values exist for the trained tropes only)."""
        if self.config.triplet == "none":
            raise ValueError("score_descriptions needs a model trained with a triplet loss")
        z = self.encode(tokens, snippet_mask)
        return _cosines(self.to_description(z), self.description_targets(descriptions))

    def learned_weights(self) -> dict[str, float]:
        """gamma, beta and margins as named floats, for dvclive and metrics."""
        with torch.no_grad():
            weights = {f"gamma_{s}": float(g) for s, g in zip(STREAMS, self.gamma)}
            weights.update({f"beta_{n}": float(b) for n, b in zip(self.config.loss_names, self.beta)})
            if self.config.triplet != "none":
                weights["margin"] = float(self.margin)
                if self.config.memory != "none":
                    weights["triplet_mix"] = float(torch.sigmoid(self.mix_logit))
                if self.config.description_logits:
                    weights["description_scale"] = float(self.description_scale)
        return weights


def _cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # a [B, D'], b [n, D'] -> [B, n]
    return F.normalize(a.float(), dim=-1) @ F.normalize(b.float(), dim=-1).t()


def _softplus_inverse(y: float) -> float:
    return math.log(math.expm1(max(y, 1e-6)))
