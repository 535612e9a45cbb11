"""Small helpers shared by the Prefect shells."""

from __future__ import annotations

from typing import Any

from prefect.context import FlowRunContext


def in_flow() -> bool:
    return FlowRunContext.get() is not None


def call_task(task_obj: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a Prefect task inside a flow run, or its plain function outside one (CLI cores, tests)."""
    if in_flow():
        return task_obj(*args, **kwargs)
    return task_obj.fn(*args, **kwargs)
