"""The two AMN memories (Chu et al. 2018, Sections 4-5):

KnowledgeStore: read-only keys = trope-description embeddings, learnable values, n hops (Eqs 5-9).
ReadWriteMemory: Kaiser et al. (ICLR 2017, "Learning to Remember Rare Events") keys/values/ages,
top-k cosine lookup, the margin ranking loss J_MR and the write rule, as in the reference
tensorflow/models research/learning_to_remember_rare_events/memory.py. Its state lives in
registered buffers, so state_dict() saves and restores it with the weights."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


class KnowledgeStore(nn.Module):
    """Eqs 5-9. The keys (description embeddings, [n_tropes, d_k]) are passed in at read time:
    the AMN holds them once as a buffer. Values have d_v = d_k so that Eq 8 type-checks."""

    def __init__(self, d_h: int, n_tropes: int, d_k: int, n_hops: int):
        super().__init__()
        self.n_hops = n_hops
        self.values = nn.Parameter(torch.randn(n_tropes, d_k) * 0.02)  # V_M: learnable trope embeddings
        self.to_key_space = nn.Linear(d_h, d_k)  # f_z (5)
        self.hop = nn.Linear(d_k, d_k)  # f_r (8)
        self.from_key_space = nn.Linear(d_k, d_h)  # f_out (9)

    def forward(self, z: torch.Tensor, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # z [B, d_h], keys [n_tropes, d_k] -> z_hat [B, d_h], attention of the last hop [B, n_tropes]
        z_m = self.to_key_space(z)  # [B, d_k]
        for _ in range(self.n_hops):
            match = torch.softmax(z_m @ keys.t().to(z_m.dtype), dim=-1)  # p_M (6), [B, n_tropes]
            read = match @ self.values.to(z_m.dtype)  # r_out (7), [B, d_k]
            z_m = self.hop(z_m) + read  # (8)
        return self.from_key_space(z_m), match


@dataclass
class MemoryRead:
    z_hat: torch.Tensor  # [B, d_in] softmax-weighted label embeddings of the top-k neighbours
    class_probs: torch.Tensor  # [B, n_classes] the neighbours' weighted vote, smoothed to sum to 1
    nearest: torch.Tensor  # [B] slot of the nearest neighbour
    rank_loss: torch.Tensor | None  # J_MR, scalar, when labels were given


class ReadWriteMemory(nn.Module):
    """Kaiser et al. memory: K [n_slots, d] unit keys, V [n_slots] labels (-1 = empty slot),
    A [n_slots] ages. Only the query projection and the label embeddings get gradients."""

    def __init__(
        self,
        d_in: int,
        n_classes: int,
        n_slots: int = 256,
        key_dim: int = 64,
        top_k: int = 16,
        margin: float = 0.1,
        age_noise: float = 8.0,
    ):
        super().__init__()
        self.n_classes, self.top_k, self.margin, self.age_noise = n_classes, min(top_k, n_slots), margin, age_noise
        # Kaiser's inverse temperature: a neighbour `margin` above k others gets ~20% of the mass.
        self.inverse_temperature = max(1.0, math.log(0.2 * self.top_k) / margin)
        self.query = nn.Linear(d_in, key_dim)  # W_q
        self.label_embed = nn.Embedding(n_classes, d_in)  # what a neighbour contributes to z_hat
        self.register_buffer("keys", torch.zeros(n_slots, key_dim))
        self.register_buffer("values", torch.full((n_slots,), -1, dtype=torch.long))
        self.register_buffer("ages", torch.zeros(n_slots))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> MemoryRead:
        # z [B, d_in], labels [B] or None. Writes (training mode, labels given) follow the read.
        with torch.autocast(z.device.type, enabled=False):  # float32: bf16 would blur the top-k ranking
            q = F.normalize(self.query(z.float()), dim=-1)  # [B, d]
            # A copy: the write below changes the keys in place, and backward needs them as read.
            sims = q @ self.keys.clone().t()  # [B, n_slots]; buffers, so no gradient reaches the keys
        top_sims, top_slots = sims.topk(self.top_k, dim=-1)  # [B, k], most similar first
        top_values = self.values[top_slots]  # [B, k]
        filled = top_values >= 0
        weights = torch.softmax(self.inverse_temperature * top_sims, dim=-1) * filled  # [B, k]
        label_vectors = self.label_embed(top_values.clamp_min(0)).float()  # [B, k, d_in]
        z_hat = (weights.unsqueeze(-1) * label_vectors).sum(1)  # [B, d_in]
        vote = torch.zeros(z.shape[0], self.n_classes, device=z.device).scatter_add(
            1, top_values.clamp_min(0), weights
        )  # [B, n_classes]; empty slots carry zero weight
        # Smoothing: an empty memory votes uniformly instead of giving log(0).
        class_probs = (vote + 1e-3) / (vote.sum(-1, keepdim=True) + 1e-3 * self.n_classes)
        rank_loss = None
        if labels is not None:
            rank_loss = self.rank_loss(top_sims, top_values, labels)
            if self.training:
                self.write(q.detach(), labels, top_slots[:, 0])
        return MemoryRead(z_hat.to(z.dtype), class_probs, top_slots[:, 0], rank_loss)

    def rank_loss(self, top_sims: torch.Tensor, top_values: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """J_MR: max(0, q.K[n_b] - q.K[n_p] + margin) within the top-k pool, where n_p is the most
        similar slot holding the label and n_b the most similar one that does not; a side with no
        slot counts as similarity 0 (Kaiser et al.)."""
        positive = top_values == labels.unsqueeze(1)  # [B, k]
        no_slot = torch.tensor(float("-inf"), device=top_sims.device)
        best_positive = torch.where(positive, top_sims, no_slot).max(1).values  # [B]
        best_negative = torch.where(~positive, top_sims, no_slot).max(1).values  # [B]
        best_positive = torch.where(positive.any(1), best_positive, torch.zeros_like(best_positive))
        best_negative = torch.where((~positive).any(1), best_negative, torch.zeros_like(best_negative))
        return F.relu(best_negative - best_positive + self.margin).mean()

    @torch.no_grad()
    def write(self, q: torch.Tensor, labels: torch.Tensor, nearest: torch.Tensor) -> None:
        """Kaiser et al.'s update after a query batch q [B, d] (unit rows) with labels [B]:
        every age grows by one; where the nearest slot already holds the label, that key moves
        to normalize(key + q) and its age resets; every other query overwrites one of the
        oldest slots (ages plus uniform noise, distinct slots) with (q, label, age 0)."""
        self.ages += 1
        correct = self.values[nearest] == labels  # [B]
        for slot, query in zip(nearest[correct].tolist(), q[correct]):
            self.keys[slot] = F.normalize(self.keys[slot] + query, dim=0)
            self.ages[slot] = 0
        n_new = int((~correct).sum())
        if n_new:
            noise = (torch.rand(self.ages.shape, device=self.ages.device) * 2 - 1) * self.age_noise
            oldest = (self.ages + noise).topk(n_new).indices  # [n_new]
            self.keys[oldest] = q[~correct]
            self.values[oldest] = labels[~correct]
            self.ages[oldest] = 0
