"""The verify stage's pure core: route each trace to its verifier and collect one verdict per trace.

>>> cfg = VerifyConfig()
>>> sorted(cfg.versions())
['code_version', 'math_version', 'none_version', 'vote_version']
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import polars as pl

from tasks.common.ids import config_fingerprint
from tasks.verify.code import CodeConfig, verify_code
from tasks.verify.math import MathConfig, VoteConfig, majority_vote, verify_math
from tasks.verify.pool import DeadlinePool
from tasks.verify.verdicts import (
    CODE_VERIFIER,
    DECISIVE,
    MATH_VERIFIER,
    NO_VERIFIER,
    UNVERIFIABLE,
    VERDICT_SCHEMA,
    VerifyError,
)

NONE_VERSION = "none-r1"
ROUTE_DETAIL = {
    "prompt_missing": "the trace's prompt_id is not in staging.stg_prompts; ingest the prompt, then re-run verify",
    "unsupported_domain": "no verifier for this prompt's domain (math and code are supported)",
}


def check_settings(**settings: object) -> None:
    """Refuse NaN, inf, negative or zero verify settings with one line naming the key.

    Counts (`*_size`, `workers`, `min_vote_answers`, `limit`) must be integers >= 1 (`limit` >= 0);
    durations (`*_s`) finite numbers > 0. None means "default" and passes.

    >>> check_settings(code_shard_size=-1)
    Traceback (most recent call last):
    ...
    tasks.verify.verdicts.VerifyError: verify setting code_shard_size must be an integer >= 1, not -1
    """
    for key, value in settings.items():
        if value is None:
            continue
        if key.endswith("_s"):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
            if not ok:
                raise VerifyError(f"verify setting {key} must be a finite number of seconds > 0, not {value!r}")
            continue
        low = 0 if key == "limit" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise VerifyError(f"verify setting {key} must be an integer >= {low}, not {value!r}")


@dataclass(frozen=True)
class VerifyConfig:
    """Everything that decides a verdict (not how fast it is computed)."""

    math: MathConfig = field(default_factory=MathConfig, metadata={"help": "math-verify settings and per-item deadline"})
    code: CodeConfig = field(default_factory=CodeConfig, metadata={"help": "code sandbox limits"})
    vote: VoteConfig = field(default_factory=VoteConfig, metadata={"help": "majority vote for prompts without a reference"})

    def versions(self) -> dict[str, str]:
        """Query parameters naming each verifier's current version."""
        return {
            "math_version": self.math.version(),
            "code_version": self.code.version(),
            "vote_version": self.vote.version(self.math),
            "none_version": NONE_VERSION,
        }

    def __str__(self) -> str:
        return f"VerifyConfig({config_fingerprint(self)})"


def verify_traces(items: pl.DataFrame, cfg: VerifyConfig, pool: DeadlinePool, workers: int = 2) -> pl.DataFrame:
    """One verdict per row of `items`, routed by its `verifier` column (math_verify | code_sandbox | none).

    Args:
        items: trace_id, prompt_id, verifier, input_hash, route_reason, completion_text, is_truncated,
            reference_answer, tests_json.
    Returns:
        rows of `VERDICT_SCHEMA`.
    """
    unknown = set(items["verifier"].unique()) - {MATH_VERIFIER, CODE_VERIFIER, NO_VERIFIER}
    if unknown:
        raise VerifyError(f"verify_traces: unknown verifier(s) {sorted(unknown)}; majority votes go through majority_vote()")
    parts = []
    math_items = items.filter(pl.col("verifier") == MATH_VERIFIER)
    if math_items.height:
        parts.append(verify_math(math_items, cfg.math, pool))
    code_items = items.filter(pl.col("verifier") == CODE_VERIFIER)
    if code_items.height:
        parts.append(verify_code(code_items, cfg.code, workers))
    none_items = items.filter(pl.col("verifier") == NO_VERIFIER)
    if none_items.height:
        parts.append(_unrouted(none_items))
    if not parts:
        return pl.DataFrame(schema=VERDICT_SCHEMA)
    return pl.concat(parts, how="vertical")


def vote_traces(items: pl.DataFrame, cfg: VerifyConfig, pool: DeadlinePool) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Majority-vote verdicts and per-prompt agreement for traces of prompts without a reference answer."""
    return majority_vote(items, cfg.vote, cfg.math, pool)


def _unrouted(items: pl.DataFrame) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "trace_id": row["trace_id"],
                "prompt_id": row["prompt_id"],
                "verifier": NO_VERIFIER,
                "verifier_version": NONE_VERSION,
                "input_hash": row.get("input_hash"),
                "verdict_status": UNVERIFIABLE,
                "verdict_reason": row.get("route_reason") or "unsupported_domain",
                "score": None,
                "extracted_answer": None,
                "detail": ROUTE_DETAIL.get(row.get("route_reason") or "unsupported_domain", ""),
                "n_tests": None,
                "n_tests_passed": None,
                "elapsed_ms": 0.0,
            }
            for row in items.to_dicts()
        ],
        schema=VERDICT_SCHEMA,
    )


def summarize(verdicts: pl.DataFrame) -> dict:
    """Counts by verifier/status and by reason, for run stats and reports."""
    if verdicts.height == 0:
        return {"by_status": {}, "by_reason": {}, "n_decisive": 0}
    by_status = verdicts.group_by("verifier", "verdict_status").len().sort("verifier", "verdict_status")
    by_reason = verdicts.group_by("verdict_reason").len().sort("verdict_reason")
    return {
        "by_status": {f"{r['verifier']}:{r['verdict_status']}": r["len"] for r in by_status.to_dicts()},
        "by_reason": {r["verdict_reason"]: r["len"] for r in by_reason.to_dicts()},
        "n_decisive": int(verdicts.filter(pl.col("verdict_status").is_in(list(DECISIVE))).height),
    }
