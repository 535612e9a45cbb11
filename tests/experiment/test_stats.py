"""The ablation's statistics must both find a planted effect and not find one that is absent (A/A)."""

import numpy as np
import polars as pl
import pytest

from tasks.experiment.stats import (
    BETTER,
    NO_DIFFERENCE,
    WORSE,
    StatsConfig,
    StatsError,
    compare_arms,
    interval,
    verdict,
)

N_PROBLEMS, SEEDS = 250, (0, 1, 2)


def _outcomes(rng, arms: dict[str, float], n_problems: int = N_PROBLEMS, seeds=SEEDS) -> pl.DataFrame:
    """Per-problem difficulty shared by every arm (as on a real eval set); an arm's effect shifts its odds."""
    difficulty = rng.beta(1.2, 1.2, size=n_problems)
    rows = []
    for arm, shift in arms.items():
        p = np.clip(difficulty + shift, 0, 1)
        for seed in seeds:
            solved = rng.random(n_problems) < p
            rows += [{"arm": arm, "seed": seed, "problem_id": f"p{i:03d}", "correct": int(s)} for i, s in enumerate(solved)]
    return pl.DataFrame(rows)


def test_planted_effect_corrupted_answers_is_worse_with_an_interval_excluding_zero():
    # an arm trained on traces whose final answers were corrupted: simulated as 12 points fewer problems solved
    out = compare_arms(_outcomes(np.random.default_rng(1), {"random": 0.0, "corrupted_answers": -0.12}))
    row = out.filter(pl.col("arm") == "corrupted_answers").row(0, named=True)
    assert row["verdict"] == WORSE
    assert row["diff_high"] < 0 and row["diff_low"] < row["diff_vs_reference"] < row["diff_high"]
    assert row["diff_vs_reference"] == pytest.approx(-0.12, abs=0.04)


def test_planted_gain_is_better():
    out = compare_arms(_outcomes(np.random.default_rng(2), {"random": 0.0, "provenance": 0.10}))
    assert out.filter(pl.col("arm") == "provenance")["verdict"][0] == BETTER


def test_a_a_random_vs_random_with_another_seed_is_no_detectable_difference():
    out = compare_arms(_outcomes(np.random.default_rng(3), {"random": 0.0, "random_seed1": 0.0}))
    row = out.filter(pl.col("arm") == "random_seed1").row(0, named=True)
    assert row["verdict"] == NO_DIFFERENCE and row["diff_low"] < 0 < row["diff_high"]


def test_a_a_false_positive_rate_is_near_the_nominal_five_percent():
    cfg = StatsConfig(n_bootstrap=1000)
    rng = np.random.default_rng(4)
    found = sum(compare_arms(_outcomes(rng, {"random": 0.0, "b": 0.0}, n_problems=120), cfg=cfg)["verdict"][1] != NO_DIFFERENCE
                for _ in range(120))
    assert found / 120 <= 0.12  # nominal 0.05; a calibrated test rarely cries wolf


def test_power_small_effect_on_few_problems_is_not_detectable():
    # 3 points on 100 problems x 1 seed is within the noise (paired SE ~ 4-5 points): the verdict must say so
    out = compare_arms(_outcomes(np.random.default_rng(5), {"random": 0.0, "b": 0.03}, n_problems=100, seeds=(0,)))
    assert out["verdict"][1] == NO_DIFFERENCE


def test_interval_contains_the_mean_and_shrinks_with_more_problems():
    rng = np.random.default_rng(6)
    small = rng.integers(0, 2, size=(1, 50)).astype(float)
    large = rng.integers(0, 2, size=(3, 500)).astype(float)
    m, lo, hi = interval(small, StatsConfig())
    m2, lo2, hi2 = interval(large, StatsConfig())
    assert lo <= m <= hi and lo2 <= m2 <= hi2 and (hi2 - lo2) < (hi - lo) / 2


def test_reference_row_has_no_verdict_and_arms_keep_their_order():
    out = compare_arms(_outcomes(np.random.default_rng(7), {"longest": 0.0, "random": 0.0, "grape": 0.0}))
    assert out["arm"].to_list() == ["random", "longest", "grape"] and out["verdict"][0] is None


@pytest.mark.parametrize("drop, match", [
    (pl.col("seed") == 2, "ran seeds"),
    ((pl.col("problem_id") == "p001") & (pl.col("seed") == 0), "no outcome for problem"),
])
def test_unpaired_outcomes_are_refused(drop, match):
    df = _outcomes(np.random.default_rng(8), {"random": 0.0, "b": 0.0})
    with pytest.raises(StatsError, match=match):
        compare_arms(df.filter(~((pl.col("arm") == "b") & drop)))


def test_missing_reference_is_refused():
    with pytest.raises(StatsError, match="reference arm 'random'"):
        compare_arms(_outcomes(np.random.default_rng(9), {"longest": 0.0}))


def test_verdict_edges():
    assert verdict(0.0, 0.1) == NO_DIFFERENCE and verdict(-0.1, 0.0) == NO_DIFFERENCE
