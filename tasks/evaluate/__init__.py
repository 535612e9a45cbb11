"""Evaluation of a student: pass@1 greedy, pass@k sampled, tokens and truncation, per domain."""

from tasks.evaluate.config import EvalConfig, EvalError
from tasks.evaluate.metrics import pass_at_k, summarize

__all__ = ["EvalConfig", "EvalError", "pass_at_k", "summarize"]
