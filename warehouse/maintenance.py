"""Lake upkeep: merge small Parquet files, expire snapshots nobody needs, report sizes.

Every stage commit adds a snapshot and at least one small Parquet file per table it wrote. The
maintenance flow (`flows/maintain.py`, deployment `lake-maintenance`) keeps the lake fast and
bounded:

- write rows that small commits kept inline in the catalog to Parquet (`ducklake_flush_inlined_data`)
  and merge adjacent small files per table (`ducklake_merge_adjacent_files`);
- expire snapshots older than `keep_days` except the newest and every snapshot a published
  dataset version records (`curated.cur_dataset_snapshots`, so `potstill sql --at` keeps working),
  then delete the files no remaining snapshot reads (`ducklake_cleanup_old_files`);
- report files and bytes per table, and snapshots, before and after.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import polars as pl

from warehouse.db import Warehouse, WarehouseError
from warehouse.lake import CATALOG_ALIAS

_SIZES = f"""
select m.schema_name || '.' || t.table_name as "table", t.file_count as files, t.file_size_bytes as bytes,
       t.delete_file_count as delete_files
from ducklake_table_info('{CATALOG_ALIAS}') t
join __ducklake_metadata_{CATALOG_ALIAS}.ducklake_schema m on m.schema_id = t.schema_id and m.end_snapshot is null
order by "table"
"""


@dataclass
class MaintenanceReport:
    files_before: int
    bytes_before: int
    files_after: int
    bytes_after: int
    snapshots_before: int
    snapshots_after: int
    expired: list[int] = field(default_factory=list)
    kept_for_datasets: list[int] = field(default_factory=list)
    tables: pl.DataFrame | None = None

    def summary(self) -> dict:
        return {"files_before": self.files_before, "files_after": self.files_after,
                "bytes_before": self.bytes_before, "bytes_after": self.bytes_after,
                "snapshots_before": self.snapshots_before, "snapshots_after": self.snapshots_after,
                "expired_snapshots": len(self.expired), "kept_for_datasets": self.kept_for_datasets}


def lake_sizes(wh: Warehouse) -> pl.DataFrame:
    """Files, bytes and delete files per table of the lake."""
    _need_lake(wh)
    return wh.query(_SIZES)


def _snapshots(wh: Warehouse) -> pl.DataFrame:
    return wh.query(f"select snapshot_id, snapshot_time from ducklake_snapshots('{CATALOG_ALIAS}') order by snapshot_id")


def maintain(wh: Warehouse, *, keep_days: float = 7.0, now: datetime | None = None) -> MaintenanceReport:
    """Merge small files, expire unreferenced snapshots older than `keep_days`, delete unread files."""
    _need_lake(wh)
    wh.ensure()
    before = lake_sizes(wh)
    snaps = _snapshots(wh)
    referenced = sorted(int(s) for s in wh.query(
        "select distinct snapshot_id from curated.cur_dataset_snapshots")["snapshot_id"].to_list())
    cutoff = (now or datetime.now(UTC)) - timedelta(days=keep_days)
    newest = int(snaps["snapshot_id"].max()) if snaps.height else None
    expire = [int(r["snapshot_id"]) for r in snaps.iter_rows(named=True)
              if int(r["snapshot_id"]) not in referenced and int(r["snapshot_id"]) != newest
              and r["snapshot_time"] is not None and _aware(r["snapshot_time"]) < cutoff]

    with wh._writer_turn():  # maintenance is a writer: it takes its turn
        # each in its own transaction: DuckLake 1.5.5 refuses to commit one that flushes inlined rows
        # and merges files ("can either make changes OR perform compaction"), e.g. after a delete
        wh.execute(f"call ducklake_flush_inlined_data('{CATALOG_ALIAS}')")  # rows small commits kept in the catalog
        wh.execute(f"call ducklake_merge_adjacent_files('{CATALOG_ALIAS}')")
        with wh.connect() as con:
            if expire:
                con.execute(f"call ducklake_expire_snapshots('{CATALOG_ALIAS}', versions => ?)", [expire])
            con.execute(f"call ducklake_cleanup_old_files('{CATALOG_ALIAS}', cleanup_all => true)")
    after = lake_sizes(wh)
    return MaintenanceReport(
        files_before=int(before["files"].sum()), bytes_before=int(before["bytes"].sum()),
        files_after=int(after["files"].sum()), bytes_after=int(after["bytes"].sum()),
        snapshots_before=snaps.height, snapshots_after=_snapshots(wh).height,
        expired=expire, kept_for_datasets=referenced,
        tables=before.join(after, on="table", how="full", suffix="_after", coalesce=True),
    )


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _need_lake(wh: Warehouse) -> None:
    if not wh.is_lake:
        raise WarehouseError(f"{wh.path} is a single DuckDB file; maintenance applies to lakes "
                             "(potstill migrate-warehouse copies it into one)")


__all__ = ["MaintenanceReport", "lake_sizes", "maintain"]
