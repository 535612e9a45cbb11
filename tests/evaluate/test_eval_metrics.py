import polars as pl
import pytest

from tasks.evaluate.metrics import pass_at_k, summarize


@pytest.mark.parametrize(
    "n, c, k, expected",
    [(4, 0, 4, 0.0), (4, 4, 1, 1.0), (4, 1, 1, 0.25), (4, 1, 2, 0.5), (5, 2, 2, 0.7), (10, 3, 4, 1 - 35 / 210)],
)
def test_pass_at_k_unbiased_estimator(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


@pytest.mark.parametrize("n, c, k", [(4, 5, 1), (2, 1, 3), (4, 1, 0)])
def test_pass_at_k_rejects_impossible_counts(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def _rows(pid, domain, greedy_ok, sampled_ok, tokens=10, truncated=False):
    rows = [{"problem_id": pid, "domain": domain, "mode": "greedy", "sample_index": 0, "n_completion_tokens": tokens,
             "is_truncated": truncated, "verdict_status": "correct" if greedy_ok else "incorrect"}]
    for i, ok in enumerate(sampled_ok):
        rows.append({"problem_id": pid, "domain": domain, "mode": "sampled", "sample_index": i, "n_completion_tokens": 99,
                     "is_truncated": True, "verdict_status": "correct" if ok else "timeout"})
    return rows


def test_summarize_per_domain_and_all():
    samples = pl.DataFrame(
        _rows("m1", "math", True, [True, False])
        + _rows("m2", "math", False, [False, False], tokens=30, truncated=True)
        + _rows("c1", "code", False, [True, True])
    )
    out = {r["domain"]: r for r in summarize(samples, k=2).to_dicts()}
    assert out["all"]["n_problems"] == 3 and out["all"]["pass_at_1"] == pytest.approx(1 / 3)
    assert out["all"]["pass_at_k"] == pytest.approx(2 / 3)
    assert out["math"]["pass_at_1"] == 0.5 and out["math"]["pass_at_k"] == 0.5
    assert out["math"]["mean_completion_tokens"] == 20.0 and out["math"]["truncation_rate"] == 0.5
    assert out["code"]["pass_at_1"] == 0.0 and out["code"]["pass_at_k"] == 1.0 and out["code"]["n_samples"] == 2


def test_summarize_refuses_a_problem_without_samples():
    samples = pl.DataFrame(_rows("m1", "math", True, [True])).filter(pl.col("mode") == "greedy")
    with pytest.raises(ValueError, match="sampled"):
        summarize(samples, k=1)
