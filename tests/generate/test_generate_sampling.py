"""The seeded sampler: deterministic per (seed, step), batch-independent, and distributed as softmax(logits/T)."""

from __future__ import annotations

import math

import pytest
import torch

from tasks.generate.sampling import sample_tokens, uniform_noise


def test_noise_is_a_function_of_seed_step_and_token():
    a = uniform_noise(torch.tensor([1, 2, 3]), step=5, vocab_size=50)
    b = uniform_noise(torch.tensor([3, 1]), step=5, vocab_size=50)
    assert torch.equal(a[0], b[1]) and torch.equal(a[2], b[0])
    assert not torch.equal(a[0], uniform_noise(torch.tensor([1]), step=6, vocab_size=50)[0])
    assert float(a.min()) > 0 and float(a.max()) < 1


def test_greedy_rows_take_the_argmax():
    logits = torch.tensor([[0.0, 3.0, 1.0], [2.0, 0.0, 1.0]])
    out = sample_tokens(logits, torch.tensor([0.0, 0.0]), torch.tensor([1.0, 1.0]), torch.tensor([1, 2]), 0)
    assert out.tolist() == [1, 0]


def test_tiny_top_p_keeps_only_the_top_token():
    logits = torch.tensor([[0.0, 0.5, 0.2]]).repeat(64, 1)
    out = sample_tokens(logits, torch.ones(64), torch.full((64,), 1e-3), torch.arange(64), 0)
    assert set(out.tolist()) == {1}


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_samples_follow_softmax_of_scaled_logits(temperature):
    n = 20000
    logits = torch.tensor([[1.0, 0.0, -1.0, 0.5]]).repeat(n, 1)
    out = sample_tokens(logits, torch.full((n,), temperature), torch.ones(n), torch.arange(n), step=3)
    freq = torch.bincount(out, minlength=4).double() / n
    expected = torch.softmax(logits[0].double() / temperature, -1)
    tol = 4 * math.sqrt(0.25 / n)  # 4 standard errors of a proportion
    assert torch.allclose(freq, expected, atol=tol), (freq, expected)


def test_top_p_restricts_to_the_nucleus():
    n = 4000
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).repeat(n, 1)
    out = sample_tokens(logits, torch.ones(n), torch.full((n,), 0.7), torch.arange(n), 0)
    counts = torch.bincount(out, minlength=4)
    assert counts[2] == 0 and counts[3] == 0
    assert abs(counts[0].item() / n - 0.625) < 0.04  # 0.5 / (0.5 + 0.3)


def test_consecutive_steps_draw_independently():
    n = 20000
    logits = torch.zeros((n, 4))
    a = sample_tokens(logits, torch.ones(n), torch.ones(n), torch.arange(n), step=3)
    b = sample_tokens(logits, torch.ones(n), torch.ones(n), torch.arange(n), step=4)
    c = sample_tokens(logits, torch.ones(n), torch.ones(n), torch.arange(n) + 1, step=3)
    assert abs((a == b).double().mean().item() - 0.25) < 0.02
    assert abs((a == c).double().mean().item() - 0.25) < 0.02  # neighbouring seeds too
