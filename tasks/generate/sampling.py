"""Seeded, batch-independent token sampling (torch only).

Each row draws with the Gumbel-max trick from noise that is a pure function of
(row seed, step, token id), computed with 32-bit integer hashing on the device. So a request
samples the same tokens whatever batch it lands in, on CPU or CUDA, and a resumed run
reproduces an interrupted one exactly (up to float differences between devices).
"""

from __future__ import annotations

import torch

_MASK32 = 0xFFFFFFFF
_MIX = 0x45D9F3B  # < 2**31, so (x < 2**32) * _MIX fits in a signed int64
_STEP = 0x27D4EB2D & 0x7FFFFFFF
_SPREAD = 0x9E3779B1  # golden-ratio multiplier; token ids < 2**31, so the product fits in int64


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash on int64 tensors holding values in [0, 2**32)."""
    x = ((x >> 16) ^ x) * _MIX & _MASK32
    x = ((x >> 16) ^ x) * _MIX & _MASK32
    return (x >> 16) ^ x


def uniform_noise(seeds: torch.Tensor, step: int, vocab_size: int) -> torch.Tensor:
    """U(0,1) noise of shape (B, V): a pure function of (seed[b], step, token id), float64."""
    seeds = seeds.to(torch.int64) & _MASK32
    row = _mix32(_mix32(seeds) ^ ((step * _STEP) & _MASK32))  # (B,)
    idx = torch.arange(vocab_size, device=seeds.device, dtype=torch.int64) * _SPREAD & _MASK32  # (V,), spread bits
    x = _mix32(row[:, None] ^ idx[None, :])
    return (x.to(torch.float64) + 0.5) / 4294967296.0


def sample_tokens(
    logits: torch.Tensor,
    temperatures: torch.Tensor,
    top_ps: torch.Tensor,
    seeds: torch.Tensor,
    step: int,
    *,
    nucleus: bool | None = None,
) -> torch.Tensor:
    """One token per row from fp32 logits (B, V); temperature 0 rows are greedy.

    Nucleus: tokens outside the smallest set with mass >= top_p are excluded. Pass `nucleus`
    (any top_p < 1) when known, to spare a device sync per step.
    """
    greedy = temperatures <= 0
    scaled = logits / torch.where(greedy, torch.ones_like(temperatures), temperatures)[:, None]
    if nucleus if nucleus is not None else bool((top_ps < 1).any()):
        sorted_logits, order = scaled.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        before = probs.cumsum(dim=-1) - probs  # mass strictly before each token
        drop_sorted = before >= top_ps[:, None]
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        scaled = scaled.masked_fill(drop, float("-inf"))
    gumbel = -torch.log(-torch.log(uniform_noise(seeds, step, logits.shape[-1]))).to(scaled.dtype)
    sampled = (scaled + gumbel).argmax(dim=-1)
    return torch.where(greedy, logits.argmax(dim=-1), sampled)
