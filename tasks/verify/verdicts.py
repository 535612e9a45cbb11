"""The verifier contract: a five-way verdict with a snake_case reason; "can't tell" is never "wrong"."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import polars as pl

from tasks.verify.statuses import CORRECT, DECISIVE, ERROR, INCORRECT, STATUSES, TIMEOUT, UNVERIFIABLE

__all__ = ["CORRECT", "DECISIVE", "ERROR", "INCORRECT", "STATUSES", "TIMEOUT", "UNVERIFIABLE", "Verdict", "VerifyError"]

MATH_VERIFIER, CODE_VERIFIER, MAJORITY_VERIFIER, NO_VERIFIER = "math_verify", "code_sandbox", "majority_vote", "none"


class VerifyError(RuntimeError):
    """Verification could not run (bad input table, sandbox missing); the message says what to fix."""


@dataclass(frozen=True)
class Verdict:
    """One verifier's judgement of one trace.

    `score` is in [0, 1] (1.0 correct; code: fraction of tests passed; vote: answer's agreement),
    None when nothing could be judged. `verdict_reason` is a snake_case code (`answer_missing`,
    `tests_failed`, `deadline_exceeded`, ...); `detail` is for humans (stderr excerpt, protections).
    """

    verdict_status: str
    verdict_reason: str
    score: float | None = None
    extracted_answer: str | None = None
    detail: str = ""
    n_tests: int | None = None
    n_tests_passed: int | None = None

    def __post_init__(self) -> None:
        if self.verdict_status not in STATUSES:
            raise ValueError(f"verdict_status must be one of {STATUSES}, not {self.verdict_status!r}")

    def as_row(self) -> dict:
        return asdict(self)


VERDICT_SCHEMA = {
    "trace_id": pl.String,
    "prompt_id": pl.String,
    "verifier": pl.String,
    "verifier_version": pl.String,
    "input_hash": pl.String,
    "verdict_status": pl.String,
    "verdict_reason": pl.String,
    "score": pl.Float64,
    "extracted_answer": pl.String,
    "detail": pl.String,
    "n_tests": pl.Int32,
    "n_tests_passed": pl.Int32,
    "elapsed_ms": pl.Float64,
}
