"""Small helpers shared by the Prefect shells."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from prefect.context import FlowRunContext, TaskRunContext

from tasks.contracts.runner import ContractResult


def in_flow() -> bool:
    return FlowRunContext.get() is not None


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
    """Run a Prefect task inside a flow run, or its plain function outside one (CLI cores, tests)."""
    if in_flow():
        return task_obj(*args, **kwargs)
    return task_obj.fn(*args, **kwargs)


def map_shards(task_obj: Any, shards: list[tuple], **kwargs: Any) -> list[Any]:
    """One task per shard. Inside a flow the shards are submitted to the flow's task runner, so
    they run concurrently (threads by default, a Ray cluster when a recipe sets `task_runner: ray`);
    results come back in shard order. Outside a flow they run one after another.
    Tasks write the warehouse themselves; DuckDB's single writer serialises those short commits."""
    if not in_flow():
        return [task_obj.fn(*shard, **kwargs) for shard in shards]
    futures = [task_obj.submit(*shard, **kwargs) for shard in shards]
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
