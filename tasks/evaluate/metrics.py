"""pass@k and the per-domain summary of evaluation samples.

Samples table (one row per completion): problem_id, domain, mode ('greedy' | 'sampled'),
sample_index, n_completion_tokens, is_truncated, verdict_status.
"""

from __future__ import annotations

from math import comb

import polars as pl


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al. 2021, HumanEval): 1 - C(n-c,k)/C(n,k).

    >>> pass_at_k(4, 0, 4), pass_at_k(4, 1, 4), pass_at_k(4, 2, 1)
    (0.0, 1.0, 0.5)
    """
    if not 0 <= c <= n or k > n or k < 1:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


METRIC_SCHEMA = {
    "domain": pl.String, "n_problems": pl.Int64, "pass_at_1": pl.Float64, "pass_at_k": pl.Float64,
    "k": pl.Int64, "n_samples": pl.Int64, "mean_completion_tokens": pl.Float64, "truncation_rate": pl.Float64,
}


def summarize(samples: pl.DataFrame, k: int) -> pl.DataFrame:
    """One row per domain plus 'all': pass@1 (greedy), pass@k (sampled, unbiased), and over the
    greedy completions the mean completion tokens and the truncation rate."""
    correct = pl.col("verdict_status") == "correct"
    greedy = (
        samples.filter(pl.col("mode") == "greedy")
        .group_by("problem_id", "domain")
        .agg(correct.any().alias("g_ok"), pl.col("n_completion_tokens").mean().alias("tok"),
             pl.col("is_truncated").any().alias("trunc"))
    )
    sampled = (
        samples.filter(pl.col("mode") == "sampled")
        .group_by("problem_id")
        .agg(pl.len().alias("n"), correct.sum().alias("c"))
    )
    per_problem = greedy.join(sampled, on="problem_id", how="full", coalesce=True).sort("problem_id")
    if per_problem.filter(pl.col("n").is_null() | pl.col("g_ok").is_null()).height:
        raise ValueError("every problem needs its greedy sample and its sampled completions")
    per_problem = per_problem.with_columns(
        pl.struct("n", "c").map_elements(lambda s: pass_at_k(s["n"], s["c"], k), return_dtype=pl.Float64).alias("pk")
    )

    def agg(frame: pl.DataFrame, domain: str) -> dict:
        return {
            "domain": domain,
            "n_problems": frame.height,
            "pass_at_1": float(frame["g_ok"].cast(pl.Float64).mean()),
            "pass_at_k": float(frame["pk"].mean()),
            "k": k,
            "n_samples": int(frame["n"].max()),
            "mean_completion_tokens": float(frame["tok"].mean()),
            "truncation_rate": float(frame["trunc"].cast(pl.Float64).mean()),
        }

    rows = [agg(per_problem, "all")]
    for domain in sorted(per_problem["domain"].unique().to_list()):
        rows.append(agg(per_problem.filter(pl.col("domain") == domain), domain))
    return pl.DataFrame(rows, schema=METRIC_SCHEMA)
