"""Run records (`meta.runs`) and rejections (`raw.raw_rejections`): the bookkeeping every stage shares.

Every stage runs inside `stage_run`, which owns the run's life cycle and its counters:

>>> with stage_run(wh, "dedup", cfg) as run:            # doctest: +SKIP
...     run.n_in = 10
...     run.reject("dup_exact", "t-2", "exact duplicate of t-1")
...     run.n_out = 9
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

from tasks.common.ids import config_fingerprint, config_json
from warehouse.db import Warehouse, WarehouseError

MAX_PAYLOAD_BYTES = 1_000_000
REJECTION_KEY = ["stage", "source_ref", "reason_code", "payload_hash"]
RUN_REJECTION_KEY = ["run_id", *REJECTION_KEY]


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def new_run_id(stage: str) -> str:
    try:  # inside a Prefect flow run, reuse its id so the UI and the warehouse line up
        from prefect.runtime import flow_run

        flow_run_id = flow_run.id
    except Exception:  # noqa: BLE001 - prefect.runtime raises varied errors outside a run
        flow_run_id = None
    return f"{stage}-{flow_run_id or uuid.uuid4()}"


def _start_run(wh: Warehouse, *, flow_name: str, stage: str, config: Any = None, parent_run_id: str | None = None) -> str:
    """Insert a `running` row into meta.runs and return its run_id."""
    run_id = new_run_id(stage)
    row = {
        "run_id": run_id,
        "flow_name": flow_name,
        "stage": stage,
        "config_fingerprint": config_fingerprint(config) if config is not None else None,
        "config_json": config_json(config) if config is not None else None,
        "status": "running",
        "started_at": utcnow(),
        "parent_run_id": parent_run_id,
        "pid": os.getpid(),
        "host": socket.gethostname(),
    }
    wh.load("meta.runs", pl.DataFrame([row]), key=["run_id"], mode="replace")
    return run_id


def finish_run(
    wh: Warehouse,
    run_id: str,
    *,
    status: str = "completed",
    n_in: int | None = None,
    n_out: int | None = None,
    n_rejected: int | None = None,
    stats: Mapping[str, Any] | None = None,
    error_message: str | None = None,
) -> None:
    wh.execute(
        "update meta.runs set status = ?, finished_at = ?, n_in = ?, n_out = ?, n_rejected = ?,"
        " stats_json = ?, error_message = ? where run_id = ?",
        [status, utcnow(), n_in, n_out, n_rejected, json.dumps(stats or {}, default=str), error_message, run_id],
    )


def mark_abandoned(wh: Warehouse) -> list[str]:
    """Mark `running` runs of this host whose process is gone (or is a newer process with the same pid) `abandoned`.

    Runs of other hosts are left alone (their processes cannot be checked from here). Returns the run ids marked.
    """
    import psutil

    host = socket.gethostname()
    rows = wh.query(
        "select run_id, pid, started_at from meta.runs where status = 'running' and host = ? and pid is not null", [host]
    ).to_dicts()
    gone = []
    for row in rows:
        try:
            created = datetime.fromtimestamp(psutil.Process(row["pid"]).create_time(), UTC).replace(tzinfo=None)
            alive = created <= row["started_at"]  # a process started after the run is a reused pid
        except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
            alive = False
        if not alive:
            gone.append(row)
    now = utcnow()
    for row in gone:
        wh.execute(
            "update meta.runs set status = 'abandoned', finished_at = ?, error_message = ? where run_id = ? and status = 'running'",
            [now, f"abandoned: process {row['pid']} on {host} ended without finishing the run (found {now:%Y-%m-%d %H:%M:%S} UTC)",
             row["run_id"]],
        )
    return [row["run_id"] for row in gone]


def payload_text(raw: bytes | str | None) -> tuple[str | None, str]:
    """(payload kept, sha256 of the full payload); payloads over 1 MB are truncated, saying so."""
    if raw is None:
        return None, hashlib.sha256(b"").hexdigest()
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogateescape")
    digest = hashlib.sha256(data).hexdigest()
    if len(data) > MAX_PAYLOAD_BYTES:
        head = data[:MAX_PAYLOAD_BYTES].decode("utf-8", "replace")
        return f"{head}\n[truncated: payload was {len(data)} bytes, first {MAX_PAYLOAD_BYTES} kept]", digest
    return data.decode("utf-8", "replace"), digest


def rejection_rows(
    run_id: str, stage: str, items: Iterable[tuple[str, str, str, bytes | str | None]]
) -> pl.DataFrame:
    """Rows for raw.raw_rejections from (source_ref, reason_code, detail, payload) tuples."""
    now = utcnow()
    rows = []
    for source_ref, reason_code, detail, payload in items:
        kept, digest = payload_text(payload)
        rows.append(
            {
                "run_id": run_id,
                "stage": stage,
                "source_ref": source_ref,
                "reason_code": reason_code,
                "detail": detail,
                "payload": kept,
                "payload_hash": digest,
                "rejected_at": now,
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "run_id": pl.String, "stage": pl.String, "source_ref": pl.String, "reason_code": pl.String,
            "detail": pl.String, "payload": pl.String, "payload_hash": pl.String, "rejected_at": pl.Datetime("us"),
        },
    )


def record_rejections(wh: Warehouse, df: pl.DataFrame, con=None) -> int:
    """Idempotent: the same row rejected for the same reason by a re-run is not stored twice in
    raw.raw_rejections; meta.run_rejections keeps each run's own keys (reports count reasons per run
    there). Returns the rows new to raw.raw_rejections."""
    if con is None:
        with wh.transaction() as own:
            return record_rejections(wh, df, con=own)
    wh.load("meta.run_rejections", df.select(RUN_REJECTION_KEY), key=RUN_REJECTION_KEY, mode="ignore", con=con)
    return wh.load("raw.raw_rejections", df, key=REJECTION_KEY, mode="ignore", con=con)


Rejection = tuple[str, str, str, "bytes | str | None"]  # (source_ref, reason_code, detail, payload)


@dataclass
class StageRun:
    """One stage run's counters, rejections and stats; `stage_run` writes them to meta.runs.

    Set `n_in` / `n_out` / `n_rejected` and `stats` as the stage goes; they are stored whether the
    run completes or fails. Rejections are counted by reason (`reasons`) wherever they are recorded.
    """

    wh: Warehouse
    run_id: str
    stage: str
    n_in: int | None = None
    n_out: int | None = None
    n_rejected: int | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    reasons: Counter = field(default_factory=Counter)
    error_message: str | None = None
    _pending: list[Rejection] = field(default_factory=list, repr=False)

    def reject(self, reason_code: str, source_ref: str, detail: str = "", payload: bytes | str | None = None) -> None:
        """Reject one row; stored (with the run id and reason) when the run ends, or at the next `rejections(con=...)`."""
        self._pending.append((source_ref, reason_code, detail, payload))

    def rejection_rows(self, items: Iterable[Rejection], stage: str | None = None) -> pl.DataFrame:
        """Rows for raw.raw_rejections from (source_ref, reason_code, detail, payload), counted by reason.

        For a stage that commits its rejections in its own transaction (`record_rejections(wh, rows, con)`).
        """
        rows = rejection_rows(self.run_id, stage or self.stage, items)
        self.reasons.update(rows["reason_code"].to_list())
        return rows

    def record(self, items: Iterable[Rejection], con=None, stage: str | None = None) -> int:
        """Store rejections now (inside `con`'s transaction when given); returns rows stored."""
        return record_rejections(self.wh, self.rejection_rows(items, stage), con=con)

    def count(self, reasons: Mapping[str, int]) -> None:
        """Add rejection counts recorded elsewhere (a shard task in another process)."""
        self.reasons.update({code: n for code, n in reasons.items() if n})

    def flush(self, con=None) -> int:
        pending, self._pending = self._pending, []
        return self.record(pending, con=con) if pending else 0

    def _stats(self) -> dict[str, Any]:
        stats = dict(self.stats)
        if self.reasons:
            stats.setdefault("reasons", dict(sorted(self.reasons.items())))
        return stats


@contextmanager
def stage_run(
    wh: Warehouse,
    stage: str,
    config: Any = None,
    *,
    flow_name: str | None = None,
    parent_run_id: str | None = None,
) -> Iterator[StageRun]:
    """A `meta.runs` row for the block: `running` on entry, `completed` on exit, `failed` (with the
    error and the counters so far) when the block raises anything, a KeyboardInterrupt included.

    `config` (a config dataclass, a pydantic model or a dict) gives the run's fingerprint.
    """
    run = StageRun(wh, _start_run(wh, flow_name=flow_name or stage, stage=stage, config=config,
                                  parent_run_id=parent_run_id), stage)
    try:
        yield run
        run.flush()
    except BaseException as exc:
        try:
            run.flush()
        except WarehouseError as lost:  # e.g. disk full: the stage's own error is the one to raise
            exc.add_note(f"rejections of run {run.run_id} not stored: {lost}")
        message = run.error_message or f"{type(exc).__name__}: {exc}"
        finish_run(wh, run.run_id, status="failed", n_in=run.n_in, n_out=run.n_out, n_rejected=run.n_rejected,
                   stats=run._stats(), error_message=message[:2000])
        raise
    finish_run(wh, run.run_id, n_in=run.n_in, n_out=run.n_out, n_rejected=run.n_rejected, stats=run._stats())
