"""Statistics of the selection ablation: per-arm intervals and paired differences against a reference arm.

Input is one row per (arm, seed, problem) with `correct` (greedy pass@1 of that problem, 0 or 1).
Both intervals come from a two-level bootstrap that resamples problems *and* seeds with replacement
(seeds carry the training run's randomness, problems the eval set's), so neither source of noise
is ignored; with one seed only problems are resampled. The difference of an arm against the
reference is paired: both arms are compared on the same (problem, seed), which removes the
problem-difficulty variance that an unpaired comparison would carry.

>>> import polars as pl
>>> rows = [{"arm": a, "seed": 0, "problem_id": f"p{i}", "correct": int(i % 3 != 0 or a == "good")}
...         for a in ("random", "good") for i in range(300)]
>>> compare_arms(pl.DataFrame(rows), reference="random").filter(pl.col("arm") == "good")["verdict"][0]
'better'
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

BETTER, WORSE, NO_DIFFERENCE = "better", "worse", "no detectable difference"
REFERENCE_ARM = "random"
OUTCOME_COLUMNS = ("arm", "seed", "problem_id", "correct")


class StatsError(ValueError):
    """The outcomes cannot be compared as asked; the message names the arm, seed or problem."""


@dataclass(frozen=True)
class StatsConfig:
    confidence: float = field(default=0.95, metadata={"help": "coverage of every interval"})
    n_bootstrap: int = field(default=10_000, metadata={"help": "bootstrap resamples per interval"})
    seed: int = field(default=0, metadata={"help": "seed of the bootstrap resampling (the numbers are reproducible)"})

    def __post_init__(self) -> None:
        if not 0.5 <= self.confidence < 1:
            raise StatsError(f"confidence must be in [0.5, 1), not {self.confidence}")
        if self.n_bootstrap < 100:
            raise StatsError(f"n_bootstrap must be >= 100, not {self.n_bootstrap}")


def outcome_matrix(outcomes: pl.DataFrame, arm: str) -> tuple[np.ndarray, list, list[str]]:
    """(seeds x problems matrix of 0/1, seeds, problem ids) of one arm; every (seed, problem) exactly once."""
    missing = [c for c in OUTCOME_COLUMNS if c not in outcomes.columns]
    if missing:
        raise StatsError(f"outcomes lack column(s) {missing} (have {outcomes.columns})")
    rows = outcomes.filter(pl.col("arm") == arm)
    if rows.height == 0:
        raise StatsError(f"no outcomes for arm {arm!r} (arms: {sorted(outcomes['arm'].unique().to_list())})")
    dup = rows.group_by("seed", "problem_id").len().filter(pl.col("len") > 1)
    if dup.height:
        r = dup.row(0, named=True)
        raise StatsError(f"arm {arm!r}: seed {r['seed']} problem {r['problem_id']!r} has {r['len']} outcomes, expected one")
    wide = rows.pivot(on="problem_id", index="seed", values="correct").sort("seed")
    seeds = wide["seed"].to_list()
    problems = sorted(c for c in wide.columns if c != "seed")
    matrix = wide.select(problems).to_numpy().astype(float)
    if np.isnan(matrix).any():
        s, p = np.argwhere(np.isnan(matrix))[0]
        raise StatsError(f"arm {arm!r}: seed {seeds[s]} has no outcome for problem {problems[p]!r}; every seed needs every problem")
    return matrix, seeds, problems


def bootstrap_means(matrix: np.ndarray, cfg: StatsConfig) -> np.ndarray:
    """Bootstrap distribution of the grand mean of a seeds x problems matrix (seeds and problems resampled)."""
    n_seeds, n_problems = matrix.shape
    rng = np.random.default_rng(cfg.seed)
    w_problems = rng.multinomial(n_problems, np.full(n_problems, 1 / n_problems), size=cfg.n_bootstrap)
    if n_seeds > 1:
        w_seeds = rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=cfg.n_bootstrap)
    else:
        w_seeds = np.ones((cfg.n_bootstrap, 1))
    return np.einsum("bs,sp,bp->b", w_seeds, matrix, w_problems, optimize=True) / (n_seeds * n_problems)


def interval(matrix: np.ndarray, cfg: StatsConfig) -> tuple[float, float, float]:
    """(mean, low, high): the grand mean and its percentile bootstrap interval."""
    draws = bootstrap_means(matrix, cfg)
    alpha = (1 - cfg.confidence) / 2
    low, high = np.quantile(draws, [alpha, 1 - alpha])
    return float(matrix.mean()), float(low), float(high)


def verdict(low: float, high: float) -> str:
    """`better` / `worse` when the interval of the difference excludes 0, else `no detectable difference`.

    >>> verdict(0.01, 0.05), verdict(-0.05, -0.01), verdict(-0.01, 0.02)
    ('better', 'worse', 'no detectable difference')
    """
    if low > 0:
        return BETTER
    if high < 0:
        return WORSE
    return NO_DIFFERENCE


COMPARISON_SCHEMA = {
    "arm": pl.String, "n_seeds": pl.Int64, "n_problems": pl.Int64, "pass_at_1": pl.Float64,
    "pass_at_1_low": pl.Float64, "pass_at_1_high": pl.Float64, "reference_arm": pl.String,
    "diff_vs_reference": pl.Float64, "diff_low": pl.Float64, "diff_high": pl.Float64, "verdict": pl.String,
}


def compare_arms(outcomes: pl.DataFrame, reference: str = REFERENCE_ARM, cfg: StatsConfig = StatsConfig()) -> pl.DataFrame:
    """One row per arm: mean pass@1 with its interval over problems x seeds, and (for arms other than the
    reference) the paired difference against `reference` with its interval and verdict.

    Pairs are (seed, problem): both arms must have been evaluated on the same problems under the same seeds.
    """
    arms = list(dict.fromkeys(outcomes["arm"].to_list())) if "arm" in outcomes.columns else []
    if reference not in arms:
        raise StatsError(f"the reference arm {reference!r} has no outcomes (arms: {arms})")
    ref, ref_seeds, ref_problems = outcome_matrix(outcomes, reference)
    alpha = (1 - cfg.confidence) / 2
    rows = []
    for arm in [reference] + [a for a in arms if a != reference]:
        matrix, seeds, problems = outcome_matrix(outcomes, arm)
        mean, low, high = interval(matrix, cfg)
        row = {"arm": arm, "n_seeds": len(seeds), "n_problems": len(problems), "pass_at_1": mean, "pass_at_1_low": low,
               "pass_at_1_high": high, "reference_arm": reference, "diff_vs_reference": None, "diff_low": None,
               "diff_high": None, "verdict": None}
        if arm != reference:
            if seeds != ref_seeds:
                raise StatsError(f"arm {arm!r} ran seeds {seeds}, the reference {reference!r} ran {ref_seeds}: not paired")
            if problems != ref_problems:
                only = sorted(set(problems) ^ set(ref_problems))[:3]
                raise StatsError(f"arm {arm!r} and the reference {reference!r} were evaluated on different problems (e.g. {only})")
            diff = matrix - ref
            draws = bootstrap_means(diff, cfg)  # same resampling seed: problems and seeds drawn jointly for both arms
            d_low, d_high = (float(x) for x in np.quantile(draws, [alpha, 1 - alpha]))
            row.update(diff_vs_reference=float(diff.mean()), diff_low=d_low, diff_high=d_high, verdict=verdict(d_low, d_high))
        rows.append(row)
    return pl.DataFrame(rows, schema=COMPARISON_SCHEMA)


def compare_by_domain(outcomes: pl.DataFrame, reference: str = REFERENCE_ARM, cfg: StatsConfig = StatsConfig()) -> pl.DataFrame:
    """`compare_arms` within each domain of the problems (column `domain`, e.g. math and code), one
    row per domain and arm; empty when the outcomes have no `domain` column or only one domain (the
    overall comparison then says it all). A mix of domains can hide where a difference comes from:
    fine-tuning on math that costs code accuracy, or an effect confined to one kind of problem.

    >>> rows = [{"arm": a, "seed": 0, "problem_id": f"{d}{i}", "domain": d, "correct": int(a == "random" or d == "math")}
    ...         for a in ("random", "b") for d in ("math", "code") for i in range(40)]
    >>> by = compare_by_domain(pl.DataFrame(rows))
    >>> by.filter(pl.col("arm") == "b").select("domain", "verdict").rows()
    [('code', 'worse'), ('math', 'no detectable difference')]
    """
    if "domain" not in outcomes.columns:
        return pl.DataFrame(schema={"domain": pl.String, **COMPARISON_SCHEMA})
    domains = sorted(d for d in outcomes["domain"].unique().to_list() if d is not None)
    if len(domains) < 2:
        return pl.DataFrame(schema={"domain": pl.String, **COMPARISON_SCHEMA})
    return pl.concat([compare_arms(outcomes.filter(pl.col("domain") == d), reference, cfg).select(pl.lit(d).alias("domain"), pl.all())
                      for d in domains])

