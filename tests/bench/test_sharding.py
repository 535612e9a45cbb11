"""Shard planning: orchestration overhead within budget, even shards, bounds respected."""

from __future__ import annotations

import itertools

import pytest

from tasks.common.sharding import ITEM_COST_S, ShardingError, plan_shards, stage_shard_size


@pytest.mark.parametrize("n", [1, 999, 4_000, 100_000, 1_000_000])
def test_overhead_share_within_budget_unless_capped(n):
    plan = plan_shards(n, item_cost_s=4e-4, task_overhead_s=0.1, max_overhead_share=0.02, max_size=10**9)
    assert plan.n_shards * plan.size >= n > (plan.n_shards - 1) * plan.size
    work = n * 4e-4
    assert plan.overhead_share == pytest.approx(plan.n_shards * 0.1 / (plan.n_shards * 0.1 + work))
    if plan.n_shards > 1:  # one shard is the fewest possible; more only when the budget allows
        assert plan.overhead_share <= 0.02 + 1e-9


def test_shards_are_even_and_cover_every_item():
    plan = plan_shards(100_001, item_cost_s=4e-4)
    bounds = plan.bounds(100_001)
    sizes = [hi - lo for lo, hi in bounds]
    assert bounds[0][0] == 0 and bounds[-1][1] == 100_001 and len(bounds) == plan.n_shards
    assert max(sizes) - min(sizes) <= plan.n_shards  # no tiny tail shard
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))


def test_max_size_caps_memory_and_reports_the_cost():
    plan = plan_shards(1_000_000, item_cost_s=1e-6, max_size=10_000)
    assert plan.size == 10_000 and plan.n_shards == 100
    assert plan.overhead_share > 0.02, "the cap binds: the estimate says the budget is exceeded"


def test_stage_sizes_and_explicit_requests():
    assert stage_shard_size("score", 100_000) == plan_shards(100_000, item_cost_s=ITEM_COST_S["score"]).size
    assert stage_shard_size("score", 100_000, requested=777) == 777
    assert stage_shard_size("score", 0) == 1
    with pytest.raises(ShardingError, match="no item cost for stage 'nope'"):
        stage_shard_size("nope", 10)
    with pytest.raises(ShardingError, match="max_overhead_share"):
        plan_shards(10, item_cost_s=1e-3, max_overhead_share=0)
