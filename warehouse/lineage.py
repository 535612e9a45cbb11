"""Lineage of one trace, from the one documented query `warehouse/queries/lineage.sql`.

>>> lineage(wh, "t_abc")["datasets"][0]["policy"]     # doctest: +SKIP
'provenance'
"""

from __future__ import annotations

from typing import Any


class LineageError(LookupError):
    """The trace id is not in the warehouse."""


def lineage(wh, trace_id: str) -> dict[str, Any]:
    """Prompt + ingest run, teacher + sampling, verdicts, dedup cluster, scores, dataset versions
    and training runs of `trace_id`, as one nested dict (JSON-serialisable with `default=str`)."""
    df = wh.run_file("lineage", {"trace_id": trace_id})
    if df.height == 0:
        raise LineageError(f"trace {trace_id!r} is not in warehouse {wh.path}")
    return df.to_dicts()[0]
