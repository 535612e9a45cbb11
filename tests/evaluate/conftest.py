"""A tiny random LlamaForCausalLM + char tokenizer with a chat template, built once per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory):
    from tasks.train.tiny import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm") / "model")
