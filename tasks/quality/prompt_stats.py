"""Per-prompt difficulty: pass rate per model, coefficient of variation of verify scores, difficulty band.

A trace's verdict combines its verifiers (docs/methods.md#redi: a positive is correct under all
verifiers, a negative fails any): `incorrect` if any verifier says incorrect, `correct` if all
say correct, otherwise undecided. Undecided traces ("can't tell") are left out of the pass
rate's denominator, never counted as wrong.

>>> traces = pl.DataFrame({"trace_id": ["a", "b", "c"], "prompt_id": ["p"] * 3, "model_id": ["m"] * 3})
>>> verdicts = pl.DataFrame({"trace_id": ["a", "b", "c"], "verifier": ["math"] * 3,
...                          "verdict_status": ["correct", "incorrect", "timeout"], "score": [1.0, 0.0, None]})
>>> prompt_stats(traces, verdicts).select("n_verified", "pass_rate", "difficulty_band").row(0)
(2, 0.5, 'medium')
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from tasks.common.ids import config_fingerprint
from tasks.quality.signals import QualityError

PROMPT_STATS_SCHEMA = {
    "prompt_id": pl.String,
    "model_id": pl.String,
    "n_traces": pl.Int64,
    "n_verified": pl.Int64,
    "n_correct": pl.Int64,
    "pass_rate": pl.Float64,
    "score_mean": pl.Float64,
    "score_std": pl.Float64,
    "score_cv": pl.Float64,
    "difficulty_band": pl.String,
}


@dataclass(frozen=True)
class PromptStatsConfig:
    """Difficulty-band edges over the pass rate."""

    hard_below: float = field(default=0.2, metadata={"help": "pass rate below this is 'hard' (Open-R1 keeps 20-80%)"})
    easy_above: float = field(default=0.8, metadata={"help": "pass rate above this is 'easy' (Open-R1 keeps 20-80%)"})

    def __post_init__(self) -> None:
        if not 0.0 <= self.hard_below <= self.easy_above <= 1.0:
            raise QualityError(f"PromptStatsConfig: need 0 <= hard_below <= easy_above <= 1, got {self.hard_below}, {self.easy_above}")

    def __str__(self) -> str:
        return f"prompt-stats-{config_fingerprint(self)}"


def trace_verdicts(verdicts: pl.DataFrame) -> pl.DataFrame:
    """One row per trace: trace_status (correct | incorrect | undecided) and mean verify score."""
    for col in ("trace_id", "verdict_status", "score"):
        if col not in verdicts.columns:
            raise QualityError(f"trace_verdicts: input has no column {col!r} (columns: {verdicts.columns})")
    return verdicts.group_by("trace_id").agg(
        pl.when((pl.col("verdict_status") == "incorrect").any())
        .then(pl.lit("incorrect"))
        .when((pl.col("verdict_status") == "correct").all())
        .then(pl.lit("correct"))
        .otherwise(pl.lit("undecided"))
        .alias("trace_status"),
        pl.col("score").cast(pl.Float64).mean().alias("verify_score"),
    )


def prompt_stats(traces: pl.DataFrame, verdicts: pl.DataFrame, cfg: PromptStatsConfig | None = None) -> pl.DataFrame:
    """PROMPT_STATS_SCHEMA rows, one per (prompt_id, model_id) of `traces`.

    Args:
        traces: trace_id, prompt_id, model_id.
        verdicts: trace_id, verifier, verdict_status, score (latest per trace and verifier).
    """
    cfg = cfg or PromptStatsConfig()
    per_trace = traces.select("trace_id", "prompt_id", "model_id").join(trace_verdicts(verdicts), on="trace_id", how="left")
    stats = per_trace.group_by("prompt_id", "model_id").agg(
        pl.len().cast(pl.Int64).alias("n_traces"),
        pl.col("trace_status").is_in(["correct", "incorrect"]).sum().cast(pl.Int64).alias("n_verified"),
        (pl.col("trace_status") == "correct").sum().cast(pl.Int64).alias("n_correct"),
        pl.col("verify_score").mean().alias("score_mean"),
        pl.col("verify_score").std(ddof=0).alias("score_std"),
    )
    pass_rate = pl.when(pl.col("n_verified") > 0).then(pl.col("n_correct") / pl.col("n_verified")).otherwise(None)
    stats = stats.with_columns(
        pass_rate.alias("pass_rate"),
        pl.when(pl.col("score_mean") > 0).then(pl.col("score_std") / pl.col("score_mean")).otherwise(None).alias("score_cv"),
    ).with_columns(
        pl.when(pl.col("pass_rate").is_null())
        .then(pl.lit("unknown"))
        .when(pl.col("pass_rate") == 0.0)
        .then(pl.lit("unsolved"))
        .when(pl.col("pass_rate") < cfg.hard_below)
        .then(pl.lit("hard"))
        .when(pl.col("pass_rate") <= cfg.easy_above)
        .then(pl.lit("medium"))
        .when(pl.col("pass_rate") < 1.0)
        .then(pl.lit("easy"))
        .otherwise(pl.lit("solved"))
        .alias("difficulty_band")
    )
    return stats.select(list(PROMPT_STATS_SCHEMA)).cast(PROMPT_STATS_SCHEMA).sort("prompt_id", "model_id")
