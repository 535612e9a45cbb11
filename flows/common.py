"""Small helpers shared by the Prefect shells."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from prefect.context import FlowRunContext, TaskRunContext

from tasks.contracts.runner import ContractResult


def in_flow() -> bool:
    return FlowRunContext.get() is not None


# A task that finds the warehouse busy (another process holds DuckDB's write lock past the
# warehouse's own bounded wait) is retried by Prefect with exponential backoff, saying who holds it.
BUSY_RETRIES = 4
BUSY_BACKOFF_S = 10.0


def retry_when_busy(task, task_run, state) -> bool:
    """Prefect `retry_condition_fn`: retry only a WarehouseBusyError, logging the holder."""
    from prefect.logging import get_logger

    from warehouse import WarehouseBusyError

    try:
        exc = state.result(raise_on_failure=False)
    except Exception:  # noqa: BLE001 - an unreadable state is not a busy warehouse
        return False
    if not isinstance(exc, WarehouseBusyError):
        return False
    attempt = getattr(task_run, "run_count", 1) or 1
    if attempt <= BUSY_RETRIES:
        delay = BUSY_BACKOFF_S * 2 ** (attempt - 1)
        get_logger("prefect.task_runs").warning(
            "task %s: %s — Prefect retry %d of %d in %.0f s", task.name, str(exc).splitlines()[0], attempt, BUSY_RETRIES, delay)
    return True


def with_busy_retry(task_obj: Any) -> Any:
    """The task with busy-warehouse retries, unless it already has its own retry policy."""
    if getattr(task_obj, "retries", 0) or getattr(task_obj, "retry_condition_fn", None) is not None:
        return task_obj
    from prefect.tasks import exponential_backoff

    return task_obj.with_options(retries=BUSY_RETRIES, retry_delay_seconds=exponential_backoff(BUSY_BACKOFF_S),
                                 retry_condition_fn=retry_when_busy)
def publish_artifact(results: Sequence[ContractResult], *, key: str | None = None) -> str | None:
    """A markdown artifact with every contract result, when called inside a Prefect flow or task run."""
    if not results or (FlowRunContext.get() is None and TaskRunContext.get() is None):
        return None
    from prefect.artifacts import create_markdown_artifact

    names = "-".join(dict.fromkeys(r.suite_name for r in results))
    art_key = key or re.sub(r"[^a-z0-9-]+", "-", f"dq-{names}".lower()).strip("-")[:100]
    failed = [r for r in results if not r.passed]
    description = f"{len(results)} contract(s), {len(failed)} blocking failure(s)"
    create_markdown_artifact(markdown="\n".join(r.to_markdown() for r in results), key=art_key, description=description)
    return art_key


def call_task(task_obj: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a Prefect task inside a flow run (a busy warehouse: retried with backoff), or its plain
    function outside one (CLI cores, tests)."""
    if in_flow():
        return with_busy_retry(task_obj)(*args, **kwargs)
    return task_obj.fn(*args, **kwargs)


def map_shards(task_obj: Any, shards: list[tuple], **kwargs: Any) -> list[Any]:
    """One task per shard. Inside a flow the shards are submitted to the flow's task runner, so
    they run concurrently (threads by default, a Ray cluster when a recipe sets `task_runner: ray`);
    results come back in shard order. Outside a flow they run one after another.
    Tasks write the warehouse themselves; DuckDB's single writer serialises those short commits."""
    if not in_flow():
        return [task_obj.fn(*shard, **kwargs) for shard in shards]
    retrying = with_busy_retry(task_obj)
    futures = [retrying.submit(*shard, **kwargs) for shard in shards]
    return [future.result() for future in futures]


def task_runner_for(kind: str | None, address: str | None = None):
    """The Prefect task runner a recipe asks for: None (the flow's own), or a RayTaskRunner."""
    if kind in (None, "", "default"):
        return None
    if kind != "ray":
        raise ValueError(f"task_runner {kind!r}: choose default or ray")
    try:
        from prefect_ray import RayTaskRunner
    except ImportError as exc:
        raise ImportError("task_runner: ray needs `pip install -e .[scale]` (ray, prefect-ray)") from exc
    return RayTaskRunner(address=address) if address else RayTaskRunner()
