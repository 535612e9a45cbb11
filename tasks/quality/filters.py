"""Named quality-filter presets: rules over the quality signals that *flag* traces with reason codes.

Nothing is deleted: a flagged trace gets one row per reason (trace_id, preset, reason_code,
metric, score, threshold, detail); selection decides what to do with flags.

Presets (thresholds are ours, see docs/methods.md#quality-signals; every one is a config field):
  none     no rule
  format   truncated, no_reasoning, no_final_answer
  default  format + repetitive (4-gram repeat share > 0.5 or >= 3 repeated paragraphs)
           + overthinking (> 3x the prompt's median length) + language_mixing (> 10% letters
           in a second script)
  strict   default with repetitive > 0.3 / >= 2 paragraphs, overthinking > 2x, hesitation
           markers > 40 per 1k tokens, language_mixing > 2%

>>> scores = pl.DataFrame({"trace_id": ["t1", "t1"], "metric": ["is_truncated", "has_final_answer"], "score": [1.0, 1.0]})
>>> apply_filters(scores, "format")["reason_code"].to_list()
['truncated']
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field, replace

import polars as pl

from tasks.common.ids import config_fingerprint
from tasks.quality.signals import QualityError

FLAG_SCHEMA = {
    "trace_id": pl.String,
    "preset": pl.String,
    "reason_code": pl.String,
    "metric": pl.String,
    "score": pl.Float64,
    "threshold": pl.Float64,
    "detail": pl.String,
}
_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq}


@dataclass(frozen=True)
class FilterRule:
    """Flag a trace with `reason_code` when `metric <op> threshold` (a missing metric never fires)."""

    reason_code: str = field(metadata={"help": "snake_case reason written with the flag"})
    metric: str = field(metadata={"help": "a metric of raw.raw_scores"})
    op: str = field(metadata={"help": "one of > >= < <= =="})
    threshold: float = field(metadata={"help": "the value compared against"})

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise QualityError(f"FilterRule {self.reason_code}: op must be one of {sorted(_OPS)}, got {self.op!r}")


@dataclass(frozen=True)
class FilterConfig:
    """A named set of rules; `str(cfg)` is its fingerprint."""

    name: str = field(default="default", metadata={"help": "preset name written with every flag"})
    rules: tuple[FilterRule, ...] = field(default=(), metadata={"help": "the rules; a trace may get several reasons"})

    def __str__(self) -> str:
        return f"filters-{self.name}-{config_fingerprint(self)}"


_FORMAT = (
    FilterRule("truncated", "is_truncated", "==", 1.0),
    FilterRule("no_reasoning", "has_reasoning", "==", 0.0),
    FilterRule("no_final_answer", "has_final_answer", "==", 0.0),
)
PRESETS: dict[str, FilterConfig] = {
    "none": FilterConfig("none", ()),
    "format": FilterConfig("format", _FORMAT),
    "default": FilterConfig(
        "default",
        _FORMAT
        + (
            FilterRule("repetitive", "repeated_4gram_fraction", ">", 0.5),
            FilterRule("repetitive", "repeated_paragraph_count", ">=", 3.0),
            FilterRule("overthinking", "length_ratio_to_prompt_median", ">", 3.0),
            FilterRule("language_mixing", "script_mixing_ratio", ">", 0.10),
        ),
    ),
    "strict": FilterConfig(
        "strict",
        _FORMAT
        + (
            FilterRule("repetitive", "repeated_4gram_fraction", ">", 0.3),
            FilterRule("repetitive", "repeated_paragraph_count", ">=", 2.0),
            FilterRule("overthinking", "length_ratio_to_prompt_median", ">", 2.0),
            FilterRule("overthinking", "hesitation_per_1k", ">", 40.0),
            FilterRule("language_mixing", "script_mixing_ratio", ">", 0.02),
        ),
    ),
}


def preset(name: str, **overrides: float) -> FilterConfig:
    """A preset by name, optionally with thresholds overridden by `reason_code__metric=value`.

    >>> preset("default", overthinking__length_ratio_to_prompt_median=5.0).rules[5].threshold
    5.0
    """
    if name not in PRESETS:
        raise QualityError(f"unknown filter preset {name!r}; choose one of {sorted(PRESETS)}")
    cfg = PRESETS[name]
    if not overrides:
        return cfg
    known = {f"{r.reason_code}__{r.metric}" for r in cfg.rules}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise QualityError(f"preset {name!r} has no rule {unknown}; rules: {sorted(known)}")
    rules = tuple(
        replace(r, threshold=float(overrides[f"{r.reason_code}__{r.metric}"])) if f"{r.reason_code}__{r.metric}" in overrides else r
        for r in cfg.rules
    )
    return replace(cfg, rules=rules)


def apply_filters(scores: pl.DataFrame, cfg: FilterConfig | str) -> pl.DataFrame:
    """Flags (FLAG_SCHEMA) for the long `scores(trace_id, metric, score)` table; one row per (trace, reason).

    When two rules give the same reason to a trace, the first rule that fires is kept.
    """
    if isinstance(cfg, str):
        cfg = preset(cfg)
    for col in ("trace_id", "metric", "score"):
        if col not in scores.columns:
            raise QualityError(f"apply_filters: input has no column {col!r} (columns: {scores.columns})")
    parts = []
    for order, rule in enumerate(cfg.rules):
        sel = scores.filter(pl.col("metric") == rule.metric, pl.col("score").is_not_null())
        if sel.is_empty():
            continue
        fired = sel.filter(_OPS[rule.op](pl.col("score"), rule.threshold))
        if fired.is_empty():
            continue
        parts.append(
            fired.select(
                "trace_id",
                pl.lit(cfg.name).alias("preset"),
                pl.lit(rule.reason_code).alias("reason_code"),
                pl.lit(rule.metric).alias("metric"),
                pl.col("score").cast(pl.Float64),
                pl.lit(float(rule.threshold)).alias("threshold"),
                pl.format("{} = {} {} {}", pl.lit(rule.metric), pl.col("score").round(4), pl.lit(rule.op), pl.lit(rule.threshold)).alias("detail"),
                pl.lit(order).alias("_order"),
            )
        )
    if not parts:
        return pl.DataFrame(schema=FLAG_SCHEMA)
    flags = pl.concat(parts).sort(["trace_id", "_order"]).unique(["trace_id", "reason_code"], keep="first", maintain_order=True)
    return flags.drop("_order").cast(FLAG_SCHEMA)
