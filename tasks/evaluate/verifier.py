"""Verdicts for evaluation samples: `verify_samples(rows) -> rows + verdict_status, score`.

`verify_samples` runs the verification stage's own verifiers (`tasks.verify`: math-verify in
hard-killable workers, the code sandbox), so evaluation and curation judge answers identically.
Verdicts: correct | incorrect | unverifiable | timeout | error.
"""

from __future__ import annotations

import polars as pl


def verify_samples(rows: pl.DataFrame, *, pool=None, workers: int = 2, cfg=None) -> pl.DataFrame:
    """Add verdict_status, score, verdict_detail using `tasks.verify.verify_traces` (the verify stage).

    Args:
        rows: domain, completion_text, is_truncated, reference_answer, tests_json (one row per completion).
        pool: a started math `DeadlinePool` to reuse; default: one is started and closed here.
    """
    from contextlib import nullcontext

    from tasks.verify.core import VerifyConfig, verify_traces
    from tasks.verify.math import math_pool
    from tasks.verify.verdicts import CODE_VERIFIER, MATH_VERIFIER, NO_VERIFIER

    cfg = cfg or VerifyConfig()
    n = rows.height
    domains, refs, tests = rows["domain"].to_list(), rows["reference_answer"].to_list(), rows["tests_json"].to_list()
    verifier, reason = [], []
    for d, ref, t in zip(domains, refs, tests):
        if d == "math" and ref is not None:
            verifier.append(MATH_VERIFIER); reason.append(None)
        elif d == "code" and t:
            verifier.append(CODE_VERIFIER); reason.append(None)
        else:
            verifier.append(NO_VERIFIER); reason.append("unsupported_domain")
    ids = [f"s{i}" for i in range(n)]
    items = pl.DataFrame({
        "trace_id": ids, "prompt_id": rows["problem_id"].to_list() if "problem_id" in rows.columns else ids,
        "verifier": verifier, "input_hash": ids, "route_reason": reason,
        "completion_text": rows["completion_text"].to_list(),
        "is_truncated": rows["is_truncated"].to_list() if "is_truncated" in rows.columns else [False] * n,
        "reference_answer": refs, "tests_json": tests,
    }, schema_overrides={"route_reason": pl.String, "reference_answer": pl.String, "tests_json": pl.String})
    needs_pool = MATH_VERIFIER in verifier
    with (nullcontext(pool) if pool is not None or not needs_pool else math_pool(cfg.math, workers)) as active:
        verdicts = verify_traces(items, cfg, active, workers)
    by_id = {r["trace_id"]: r for r in verdicts.select("trace_id", "verdict_status", "score", "verdict_reason", "detail").to_dicts()}
    got = [by_id[i] for i in ids]
    return rows.with_columns(
        pl.Series("verdict_status", [g["verdict_status"] for g in got], dtype=pl.String),
        pl.Series("score", [float(g["score"] or 0.0) for g in got], dtype=pl.Float64),
        pl.Series("verdict_detail", [f"{g['verdict_reason']}: {g['detail']}" if g["detail"] else g["verdict_reason"] for g in got], dtype=pl.String),
    )
