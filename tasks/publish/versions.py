"""Immutable, content-addressed dataset versions.

A version is the ordered set of (trace_id, rank, stage) a selection policy chose. Its
`content_hash` covers each row and the text it trains on (prompt and completion), so identical
content published again returns the existing version, and a stored version can be re-hashed to
prove it never changed (`verify_version`).

Publishing: draft row → data contracts on the selection and on the upstream rows of its traces →
`published` (rows, status and the per-dataset views in one transaction) or `failed` (with the
blocking expectation in `status_reason`, and `ContractViolation` raised).

Publishing and resolving versions in the warehouse is `warehouse.datasets`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

from tasks.publish.sql import NEGATIVE_STAGES, POSITIVE_STAGES, check_name

DEFAULT_STAGE = "main"


class PublishError(RuntimeError):
    """Bad publish input or an unknown dataset/version; the message says which."""


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class DatasetVersion:
    dataset_name: str
    version: int
    policy: str
    params: dict[str, Any]
    config_fingerprint: str | None
    source_run_ids: tuple[str, ...]
    n_rows: int
    n_tokens: int
    content_hash: str
    status: str
    created_at: datetime
    published_at: datetime | None = None
    status_reason: str | None = None
    is_new: bool = field(default=False, compare=False)  # False: an existing version was returned

    @property
    def spec(self) -> str:
        return f"{self.dataset_name}@{self.version}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset_name": self.dataset_name, "version": self.version, "spec": self.spec, "policy": self.policy,
            "params": self.params, "config_fingerprint": self.config_fingerprint,
            "source_run_ids": list(self.source_run_ids), "n_rows": self.n_rows, "n_tokens": self.n_tokens,
            "content_hash": self.content_hash, "status": self.status, "is_new": self.is_new,
            "created_at": self.created_at.isoformat(),
            "published_at": self.published_at.isoformat() if self.published_at else None,
        }


# -- pure helpers --------------------------------------------------------------------------------
def parse_spec(spec: str) -> tuple[str, int | None]:
    """`name`, `name@latest` → (name, None); `name@3` → (name, 3).

    >>> parse_spec("toy@2"), parse_spec("toy")
    (('toy', 2), ('toy', None))
    """
    name, _, version = spec.partition("@")
    check_name(name)
    if version in ("", "latest"):
        return name, None
    if not version.isdigit() or int(version) < 1:
        raise PublishError(f"dataset spec {spec!r}: version must be a positive integer or 'latest'")
    return name, int(version)


def normalise_selection(selection: pl.DataFrame) -> pl.DataFrame:
    """(trace_id, rank, stage) with types fixed; rank defaults to row order, stage to 'main'.

    Null or duplicate trace ids are kept: the `dataset_rows` contract reports them by row.
    """
    if "trace_id" not in selection.columns:
        raise PublishError(f"selection has no 'trace_id' column (columns: {selection.columns})")
    df = selection
    if "rank" not in df.columns:
        df = df.with_row_index("rank")
    if "stage" not in df.columns:
        df = df.with_columns(stage=pl.lit(DEFAULT_STAGE))
    try:
        return df.select(
            pl.col("trace_id").cast(pl.String), pl.col("rank").cast(pl.Int32), pl.col("stage").cast(pl.String)
        )
    except pl.exceptions.PolarsError as exc:
        raise PublishError(f"selection: column 'rank' must be an integer: {exc}") from exc


def content_hash(rows: pl.DataFrame) -> str:
    """sha256 over rows sorted by (rank, trace_id): rank, trace_id, stage, prompt and completion hashes.

    >>> content_hash(pl.DataFrame({"trace_id": ["t"], "rank": [0], "stage": ["main"],
    ...     "prompt_sha256": ["a"], "completion_sha256": ["b"]}))[:12]
    'c65b0d9c9e27'
    """
    digest = hashlib.sha256(b"potstill-dataset-v1\n")
    ordered = rows.sort(["rank", "trace_id"], nulls_last=True)
    for rank, trace_id, stage, p_sha, c_sha in ordered.select(
        "rank", "trace_id", "stage", "prompt_sha256", "completion_sha256"
    ).iter_rows():
        digest.update(f"{rank}\t{trace_id}\t{stage}\t{p_sha}\t{c_sha}\n".encode())
    return digest.hexdigest()


def has_pairs(rows: pl.DataFrame) -> bool:
    stages = set(rows["stage"].drop_nulls().to_list())
    return bool(stages & set(POSITIVE_STAGES)) and bool(stages & set(NEGATIVE_STAGES))


def row_to_version(row: dict[str, Any], *, is_new: bool = False) -> DatasetVersion:
    return DatasetVersion(
        dataset_name=row["dataset_name"], version=int(row["version"]), policy=row["policy"],
        params=json.loads(row["params_json"]) if row["params_json"] else {},
        config_fingerprint=row["config_fingerprint"], source_run_ids=tuple(row["source_run_ids"] or ()),
        n_rows=int(row["n_rows"]), n_tokens=int(row["n_tokens"]), content_hash=row["content_hash"],
        status=row["status"], created_at=row["created_at"], published_at=row["published_at"],
        status_reason=row["status_reason"], is_new=is_new,
    )


__all__ = [
    "DatasetVersion", "PublishError", "content_hash", "has_pairs", "normalise_selection", "parse_spec", "row_to_version",
]
