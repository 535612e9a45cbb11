"""Shard sizing: enough work per orchestrated task that the orchestrator's per-task cost stays small.

A Prefect task costs a roughly fixed amount (state changes through the API, logging, futures:
~0.05-0.1 s here) on top of its work. With `item_cost_s` seconds of work per item, a shard of
`size` items spends `task_overhead_s / (size * item_cost_s)` of its wall time on orchestration,
so the smallest size that keeps that share at or below `max_overhead_share` is
`task_overhead_s / (max_overhead_share * item_cost_s)`. Shards are then evened out (no small tail
shard) and capped at `max_size` (memory: what one task holds at once).

>>> plan = plan_shards(100_000, item_cost_s=4e-4)
>>> plan.size, plan.n_shards, plan.overhead_share <= 0.02
(12500, 8, True)
>>> plan_shards(0, item_cost_s=4e-4).n_shards
0
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Measured per-item work of the sharded stages on this project's reference CPU (bench/bench_orchestration.py
# reports the score stage's; re-measure with it on other hardware). Used only to size shards.
ITEM_COST_S = {
    "score": 4e-4,  # signals + flags of one trace incl. warehouse I/O: 0.4-3 ms measured; the low end keeps the share in budget
    "dedup_sign": 1e-4,  # tokenise, shingle and sign one text
}
TASK_OVERHEAD_S = 0.1  # Prefect's cost per task run (bench_orchestration: 0.05-0.1 s on 2 shared cores)


class ShardingError(ValueError):
    """A shard-planning argument is out of range; the message names it."""


@dataclass(frozen=True)
class ShardPlan:
    size: int  # items per shard (the last shard may hold fewer)
    n_shards: int
    overhead_share: float  # estimated orchestration share of the stage's wall time

    def bounds(self, n_items: int) -> list[tuple[int, int]]:
        """(start, stop) of every shard over `n_items` items."""
        return [(lo, min(lo + self.size, n_items)) for lo in range(0, n_items, self.size)] if self.size else []


def plan_shards(
    n_items: int,
    *,
    item_cost_s: float,
    task_overhead_s: float = TASK_OVERHEAD_S,
    max_overhead_share: float = 0.02,
    min_size: int = 1,
    max_size: int = 50_000,
) -> ShardPlan:
    """Shards for `n_items` items so that orchestration is <= `max_overhead_share` of the work.

    Args:
        item_cost_s: seconds of work per item (see ITEM_COST_S).
        task_overhead_s: the orchestrator's fixed cost per task.
        max_overhead_share: the budget, e.g. 0.02 = 2 % of the stage's wall time.
        min_size, max_size: bounds on items per shard (max_size caps memory per task; when it
            binds, the estimated share may exceed the budget and `overhead_share` says so).
    """
    if n_items < 0:
        raise ShardingError(f"plan_shards: n_items must be >= 0, got {n_items}")
    if item_cost_s <= 0 or task_overhead_s < 0:
        raise ShardingError(f"plan_shards: item_cost_s must be > 0 and task_overhead_s >= 0, got {item_cost_s}, {task_overhead_s}")
    if not 0 < max_overhead_share < 1:
        raise ShardingError(f"plan_shards: max_overhead_share must be in (0, 1), got {max_overhead_share}")
    if not 1 <= min_size <= max_size:
        raise ShardingError(f"plan_shards: need 1 <= min_size <= max_size, got {min_size}, {max_size}")
    if n_items == 0:
        return ShardPlan(0, 0, 0.0)
    wanted = math.ceil(task_overhead_s / (max_overhead_share * item_cost_s))
    size = min(max(wanted, min_size), max_size, n_items)
    n_shards = math.ceil(n_items / size)
    size = math.ceil(n_items / n_shards)  # even shards: no small tail task
    share = n_shards * task_overhead_s / (n_shards * task_overhead_s + n_items * item_cost_s)
    return ShardPlan(size, n_shards, share)


def stage_shard_size(stage: str, n_items: int, requested: int | None = None, **kwargs) -> int:
    """The shard size a stage uses: `requested` when given (> 0), else planned from ITEM_COST_S[stage].

    >>> stage_shard_size("score", 100_000), stage_shard_size("score", 100_000, requested=1_000)
    (12500, 1000)
    """
    if requested:
        if requested < 1:
            raise ShardingError(f"shard_size must be >= 1, got {requested}")
        return requested
    if stage not in ITEM_COST_S:
        raise ShardingError(f"no item cost for stage {stage!r}; known: {sorted(ITEM_COST_S)}")
    return max(1, plan_shards(n_items, item_cost_s=ITEM_COST_S[stage], **kwargs).size)
